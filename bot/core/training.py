"""Training inside a live service: one run at a time, recorded as it goes, followed by the admins.

A run is a `TrainingJob` (bot/core/training_job.py): the engine's own command line in a child
process, so TensorFlow's training never shares the service's process or its event loop. The job
runs in this process (TRAINING_BACKEND=local), or on a worker through Redis Queue (rq), which
this process then follows (bot/core/queued_training.py).

One run at a time holds in this process (a start is reserved before its first await) and across
processes (the database refuses a second active run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.leadership import STOP_SECONDS
from bot.core.progress import ProgressHub, RunProgress
from bot.core.queued_training import QueuedTraining
from bot.core.texts import say
from bot.core.training_job import TrainingJob
from db import repository
from db.models import RunStatus, RunTrigger
from db.repository import RunInProgressError
from db.views import RunSummary
from mnist_engine.settings import EngineSettings

logger = logging.getLogger(__name__)

QUEUED_FOR = timedelta(minutes=30)  # how long a queued run may wait for a worker to take it


class TrainingBusyError(Exception):
    """A run is already in progress: `run` here, or `summary` when another process runs it."""

    def __init__(self, run: RunProgress | None = None, summary: RunSummary | None = None) -> None:
        self.run = run
        self.summary = summary
        super().__init__(f"run #{self.run_id} is in progress")

    @property
    def run_id(self) -> int | None:
        """The id of the run in the way, when it is known."""
        if self.run is not None:
            return self.run.run_id
        return None if self.summary is None else self.summary.id


@dataclass(frozen=True)
class TrainingRequest:
    """What to train and why."""

    trigger: RunTrigger
    requested_by: str | None = None
    architecture: str | None = None
    epochs: int | None = None
    use_user_samples: bool = True


@dataclass(frozen=True)
class TrainingPlan:
    """How the service trains: the engine's settings and the service's choices of architecture."""

    engine: EngineSettings
    architecture: str
    epochs: int | None
    # A run whose heartbeat has been silent this long is dead (its process or machine died).
    heartbeat_timeout: timedelta = timedelta(seconds=60)
    # Recorded with the runs this process trains itself (INSTANCE_NAME).
    trainer_name: str | None = None


class TrainingUnavailableError(Exception):
    """The run could not be handed to a worker (the queue is unreachable); it is recorded as failed."""


class TrainingSupervisor:
    """Starts, watches, cancels and records training runs; at most one at a time."""

    def __init__(
        self,
        plan: TrainingPlan,
        sessions: sessionmaker[Session],
        admins: ProgressHub,
        queue: QueuedTraining | None = None,
    ) -> None:
        self.plan = plan
        self.sessions = sessions
        self.admins = admins
        self.queue = queue
        self._run: RunProgress | None = None
        self._job: TrainingJob | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = False
        self._announcements: asyncio.Task[None] | None = None
        self._followers: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> RunProgress | None:
        """The run in progress that this process runs or follows, or None."""
        return self._run if self._task is not None and not self._task.done() else None

    async def follow_other_instances(self) -> None:
        """With workers: follow the run in progress, and the runs other instances start from now on."""
        if self.queue is None:
            return
        self._announcements = asyncio.create_task(
            self.queue.announcements(self._adopt), name="run-announcements"
        )
        summary = await asyncio.to_thread(self._active_elsewhere)
        if summary is not None:
            await self._adopt(summary.id)

    async def start(self, request: TrainingRequest) -> RunProgress:
        """Record and launch a run; raise TrainingBusyError if one is in progress anywhere."""
        if self._starting or self.active is not None:
            raise TrainingBusyError(run=self.active)
        self._starting = True  # reserved before the first await: a second start is refused above
        try:
            architecture = request.architecture or self.plan.architecture
            epochs = request.epochs or self.plan.epochs  # None: the architecture's default
            status = RunStatus.QUEUED if self.queue is not None else RunStatus.RUNNING
            try:
                run_id = await asyncio.to_thread(self._record_start, request, architecture, epochs, status)
            except RunInProgressError:
                raise TrainingBusyError(summary=await asyncio.to_thread(self._active_elsewhere)) from None
            run = RunProgress(
                run_id=run_id,
                trigger=request.trigger,
                architecture=architecture,
                total_epochs=epochs or 0,
                requested_by=request.requested_by,
                status=status,
            )
            if self.queue is not None:
                await self._hand_to_worker(run, request)
            else:
                self._job = TrainingJob(
                    run,
                    self.plan.engine,
                    self.sessions,
                    use_user_samples=request.use_user_samples,
                    on_progress=self.admins.progress,
                    heartbeat_timeout=self.plan.heartbeat_timeout,
                )
                self._run = run
                self._task = asyncio.create_task(self._execute(self._job), name=f"training-run-{run_id}")
            return run
        finally:
            self._starting = False

    async def cancel(self) -> bool:
        """Ask the run in progress to stop at its next batch; return False if none is running."""
        run = self.active
        if run is None:
            return False
        if self.queue is not None:
            await self.queue.request_cancel(run.run_id, lambda: self.active is run)
        elif self._job is not None:
            self._job.request_cancel()
        return True

    async def wait(self) -> None:
        """Wait until the run in progress (if any) has ended and been recorded."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def shutdown(self) -> None:
        """Stop a run this process trains and record it as cancelled (the service is stopping).

        A run on a worker goes on: this instance only stops following it.
        """
        if self.queue is None:
            if await self.cancel():
                await self.wait()
            return
        tasks = [task for task in (self._announcements, *self._followers) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=STOP_SECONDS)
            if still_running:
                logger.warning("%d tasks following runs did not stop; leaving them", len(still_running))
        await self.queue.close()

    async def new_labelled_samples(self) -> int:
        """Labelled user samples that arrived since the newest successful run started."""
        return await asyncio.to_thread(self._new_labelled_samples)

    async def sweep_dead_runs(self) -> list[int]:
        """Mark interrupted the runs whose heartbeat ran out, and let the admins know.

        Any instance may sweep; the database lets one of them mark each run. With workers the end
        goes onto the run's stream, so every instance stops following it and the leader tells the
        admins; in this process alone, the admins are told here.
        """
        ended = await asyncio.to_thread(self._interrupt_stale)
        for summary in ended:
            run = progress_of(summary)
            if self.queue is not None:
                await self.queue.publish_end(run)
            else:
                await self.admins.finished(run, None)
        return [summary.id for summary in ended]

    @property
    def trainer_pid(self) -> int | None:
        """The training child process's id while this process runs one."""
        return None if self._job is None or self.active is None else self._job.trainer_pid

    async def _execute(self, job: TrainingJob) -> None:
        curves = await job.execute()
        await self.admins.finished(job.run, curves)

    async def _hand_to_worker(self, run: RunProgress, request: TrainingRequest) -> None:
        if self.queue is None:
            raise RuntimeError("no queue to hand the run to")
        try:
            await self.queue.enqueue(run.run_id, request.use_user_samples)
        except (RedisError, OSError) as error:
            run.status, run.error = RunStatus.FAILED, say("admin.queue_unreachable", error=error)
            await asyncio.to_thread(self._record_failure, run)
            raise TrainingUnavailableError(run.error) from error
        self._follow_in_background(run)

    async def _adopt(self, run_id: int) -> None:
        """Follow a run another instance handed to a worker (unless it is the one followed already)."""
        # A run this instance is starting is announced before its start returns: it follows it already.
        if self._starting or (self.active is not None and self.active.run_id == run_id):
            return
        summary = await asyncio.to_thread(self._summary, run_id)
        if summary is None or summary.finished_at is not None:
            return
        self._follow_in_background(progress_of(summary))

    def _follow_in_background(self, run: RunProgress) -> None:
        """Follow a run on its stream; every follower is kept, so that shutdown stops them all."""
        self._run = run
        self._task = asyncio.create_task(self._follow(run), name=f"following-run-{run.run_id}")
        self._followers.add(self._task)
        self._task.add_done_callback(self._followers.discard)

    async def _follow(self, run: RunProgress) -> None:
        if self.queue is None:
            raise RuntimeError("no queue to follow the run on")
        curves = await self.queue.follow(run)
        await self.admins.finished(run, curves, leading=self.queue.leadership.is_leader)

    def _interrupt_stale(self) -> list[RunSummary]:
        with self.sessions.begin() as session:
            run_ids = repository.interrupt_stale_runs(
                session, running_for=self.plan.heartbeat_timeout, queued_for=QUEUED_FOR
            )
            return [summary for run_id in run_ids if (summary := repository.get_run(session, run_id))]

    def _summary(self, run_id: int) -> RunSummary | None:
        with self.sessions() as session:
            return repository.get_run(session, run_id)

    def _record_failure(self, run: RunProgress) -> None:
        with self.sessions.begin() as session:
            repository.finish_run(session, run.run_id, status=run.status, error=run.error)

    def _record_start(
        self, request: TrainingRequest, architecture: str, epochs: int | None, status: RunStatus
    ) -> int:
        engine = self.plan.engine
        parameters: dict[str, Any] = {
            "epochs": epochs,
            "train_limit": engine.training_train_limit,
            "user_sample_weight": engine.user_sample_weight,
            "user_sample_share": engine.user_sample_share,
        }
        with self.sessions.begin() as session:
            return repository.start_run(
                session,
                trigger=request.trigger,
                requested_by=request.requested_by,
                architecture=architecture,
                parameters=parameters,
                status=status,
                trainer=None if status is RunStatus.QUEUED else self.plan.trainer_name,
            )

    def _active_elsewhere(self) -> RunSummary | None:
        with self.sessions() as session:
            return repository.active_run(session)

    def _new_labelled_samples(self) -> int:
        with self.sessions() as session:
            since = next(
                (
                    run.started_at or run.created_at
                    for run in repository.recent_runs(session, limit=50)
                    if run.status is RunStatus.SUCCEEDED
                ),
                None,
            )
            return repository.count_new_labelled_samples(session, since)


def progress_of(summary: RunSummary) -> RunProgress:
    """A recorded run as the admins follow it."""
    return RunProgress(
        run_id=summary.id,
        trigger=summary.trigger,
        architecture=summary.architecture,
        total_epochs=int(summary.parameters.get("epochs") or 0),
        requested_by=summary.requested_by,
        epoch=summary.epochs_done,
        status=summary.status,
        error=summary.error,
    )
