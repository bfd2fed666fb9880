"""Training inside a live service: one run at a time, recorded as it goes, followed by the admins.

A run is a `TrainingJob` (bot/core/training_job.py): the engine's own command line in a child
process, so TensorFlow's training never shares the service's process or its event loop.

One run at a time holds in this process (a start is reserved before its first await) and across
processes (the database refuses a second active run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import ProgressHub, RunProgress
from bot.core.training_job import TrainingJob
from db import repository
from db.models import RunStatus, RunTrigger
from db.repository import RunInProgressError
from db.views import RunSummary
from mnist_engine.settings import EngineSettings

logger = logging.getLogger(__name__)


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


class TrainingSupervisor:
    """Starts, watches, cancels and records training runs; at most one at a time."""

    def __init__(self, plan: TrainingPlan, sessions: sessionmaker[Session], admins: ProgressHub) -> None:
        self.plan = plan
        self.sessions = sessions
        self.admins = admins
        self._run: RunProgress | None = None
        self._job: TrainingJob | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = False

    @property
    def active(self) -> RunProgress | None:
        """The run this process is running, or None."""
        return self._run if self._task is not None and not self._task.done() else None

    async def start(self, request: TrainingRequest) -> RunProgress:
        """Record and launch a run; raise TrainingBusyError if one is in progress anywhere."""
        if self._starting or self.active is not None:
            raise TrainingBusyError(run=self.active)
        self._starting = True  # reserved before the first await: a second start is refused above
        try:
            architecture = request.architecture or self.plan.architecture
            epochs = request.epochs or self.plan.epochs  # None: the architecture's default
            try:
                run_id = await asyncio.to_thread(self._record_start, request, architecture, epochs)
            except RunInProgressError:
                raise TrainingBusyError(summary=await asyncio.to_thread(self._active_elsewhere)) from None
            run = RunProgress(
                run_id=run_id,
                trigger=request.trigger,
                architecture=architecture,
                total_epochs=epochs or 0,
                requested_by=request.requested_by,
            )
            self._run = run
            self._job = TrainingJob(
                run,
                self.plan.engine,
                self.sessions,
                use_user_samples=request.use_user_samples,
                on_progress=self.admins.progress,
            )
            self._task = asyncio.create_task(self._execute(self._job), name=f"training-run-{run_id}")
            return run
        finally:
            self._starting = False

    async def cancel(self) -> bool:
        """Ask the run in progress to stop at its next batch; return False if none is running."""
        if self.active is None or self._job is None:
            return False
        self._job.request_cancel()
        return True

    async def wait(self) -> None:
        """Wait until the run in progress (if any) has ended and been recorded."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def shutdown(self) -> None:
        """Stop a run in progress and record it as cancelled (the service is stopping)."""
        if await self.cancel():
            await self.wait()

    async def new_labelled_samples(self) -> int:
        """Labelled user samples that arrived since the newest successful run started."""
        return await asyncio.to_thread(self._new_labelled_samples)

    @property
    def trainer_pid(self) -> int | None:
        """The training child process's id while this process runs one."""
        return None if self._job is None or self.active is None else self._job.trainer_pid

    async def _execute(self, job: TrainingJob) -> None:
        curves = await job.execute()
        await self.admins.finished(job.run, curves)

    def _record_start(self, request: TrainingRequest, architecture: str, epochs: int | None) -> int:
        engine = self.plan.engine
        parameters: dict[str, Any] = {
            "epochs": epochs,
            "train_limit": engine.training_train_limit,
            "user_sample_weight": engine.user_sample_weight,
        }
        with self.sessions.begin() as session:
            return repository.start_run(
                session,
                trigger=request.trigger,
                requested_by=request.requested_by,
                architecture=architecture,
                parameters=parameters,
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
