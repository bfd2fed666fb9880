"""Training inside a live service: one run at a time, in a separate process, recorded as it goes.

The run is the engine's own command line (`python -m mnist_engine train --json`), so TensorFlow's
training never shares the service's process or its event loop: the service keeps answering at
full speed. The child prints one typed event per line (mnist_engine.training.events); each one
updates the database and the admins' progress messages.

One run at a time holds in this process (a start is reserved before its first await) and across
processes (the database refuses a second active run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import ProgressHub, RunProgress
from bot.core.texts import say
from db import repository
from db.models import RunStatus, RunTrigger
from db.repository import RunInProgressError
from db.views import RunSummary
from mnist_engine.settings import EngineSettings
from mnist_engine.training.events import RunReport, TrainingEvent, decode_line

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 30
# Balanced per digit, so a flood of corrections of one digit cannot skew the model.
USER_SAMPLES_PER_DIGIT = 2000
# The trainer runs at a lower priority, so reading people's pictures keeps the CPU.
TRAINER_NICENESS = 10
# What the trainer may see of the service's environment: enough to run Python, find packages and
# a GPU; never the chat tokens, the database's password or the id-hashing secret.
CHILD_ENVIRONMENT_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LANG", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
CHILD_ENVIRONMENT_PREFIXES = ("LC_", "PIP_", "CUDA_", "NVIDIA_", "TF_", "XLA_", "OMP_")


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
        self._task: asyncio.Task[None] | None = None
        self._starting = False
        self._process: asyncio.subprocess.Process | None = None
        self._cancel_requested = False

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
            self._run, self._cancel_requested = run, False
            self._task = asyncio.create_task(self._execute(run, request), name=f"training-run-{run_id}")
            return run
        finally:
            self._starting = False

    async def cancel(self) -> bool:
        """Ask the run in progress to stop at its next batch; return False if none is running."""
        if self.active is None:
            return False
        self._cancel_requested = True
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
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

    async def _execute(self, run: RunProgress, request: TrainingRequest) -> None:
        curves: bytes | None = None
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        try:
            with tempfile.TemporaryDirectory(prefix="digitbot-train-") as scratch:
                extra_path = None
                if request.use_user_samples:
                    extra_path, run.user_samples = await asyncio.to_thread(
                        self._write_user_samples, Path(scratch)
                    )
                # A cancel (or a shutdown) that came while the samples were exported: no child at all.
                if self._cancel_requested:
                    run.status = RunStatus.CANCELLED
                    return
                command = self._command(run, extra_path)
                logger.info("Training run #%d: %s", run.run_id, " ".join(command[1:]))
                self._process = await asyncio.create_subprocess_exec(
                    *command,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=child_environment(self.plan.engine),
                )
                stderr_reader = asyncio.create_task(_collect(self._process.stderr, stderr_tail))
                await self._follow(run, self._process)
                return_code = await self._process.wait()
                await stderr_reader
            self._settle(run, return_code, stderr_tail)
            curves = await asyncio.to_thread(_curves, run)
        except Exception as error:  # the run must end recorded, whatever broke
            logger.exception("Training run #%d broke", run.run_id)
            run.status, run.error = RunStatus.FAILED, f"{error.__class__.__name__}: {error}"
        finally:
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
            self._process = None
            await asyncio.to_thread(self._record_finish, run)
            if run.report is not None and run.report.promoted:
                logger.info("Run #%d promoted %s", run.run_id, run.report.version)
            await self.admins.finished(run, curves)

    async def _follow(self, run: RunProgress, process: asyncio.subprocess.Process) -> None:
        if process.stdout is None:
            raise RuntimeError("the training process has no stdout pipe")
        async for raw_line in process.stdout:
            message = decode_line(raw_line.decode("utf-8", errors="replace").strip())
            if message is None:
                logger.debug("training output: %s", raw_line.decode("utf-8", errors="replace").rstrip())
                continue
            if isinstance(message, RunReport):
                run.report = message
                continue
            run.apply(message)
            if message.kind == "epoch":
                logger.info(
                    "Run #%d epoch %d/%d: %s",
                    run.run_id,
                    run.epoch,
                    run.total_epochs,
                    ", ".join(f"{name} {value:.4g}" for name, value in message.metrics.items()),
                )
                await asyncio.to_thread(self._record_epoch, run.run_id, message)
            await self.admins.progress(run)

    def _settle(self, run: RunProgress, return_code: int, stderr_tail: deque[str]) -> None:
        report = run.report
        # A run that completed counts as succeeded even if a cancel arrived after its last epoch:
        # its model is stored and may already be serving.
        if (
            return_code == 0
            and report is not None
            and not report.cancelled
            and report.test_accuracy is not None
        ):
            run.status = RunStatus.SUCCEEDED
        elif self._cancel_requested or (report is not None and report.cancelled):
            run.status = RunStatus.CANCELLED
        else:
            run.status = RunStatus.FAILED
            run.error = _error_from(stderr_tail, return_code)

    def _command(self, run: RunProgress, extra_path: Path | None) -> list[str]:
        engine = self.plan.engine
        command = [
            sys.executable,
            "-m",
            "mnist_engine",
            "train",
            "--json",
            "--niceness",
            str(TRAINER_NICENESS),
            "--arch",
            run.architecture,
            "--tolerance",
            str(engine.promotion_tolerance),
            "--validation-size",
            str(engine.training_validation_size),
        ]
        if run.total_epochs:
            command += ["--epochs", str(run.total_epochs)]
        if engine.training_train_limit:
            command += ["--train-limit", str(engine.training_train_limit)]
        if engine.training_test_limit:
            command += ["--test-limit", str(engine.training_test_limit)]
        if extra_path is not None:
            command += ["--extra", str(extra_path), "--extra-weight", str(engine.user_sample_weight)]
        return command

    def _write_user_samples(self, folder: Path) -> tuple[Path | None, int]:
        with self.sessions() as session:
            samples = repository.labelled_samples(session, per_digit_limit=USER_SAMPLES_PER_DIGIT)
        if not samples:
            return None, 0
        images = np.frombuffer(b"".join(sample.pixels for sample in samples), dtype=np.uint8).reshape(
            -1, 28, 28
        )
        labels = np.array([sample.label for sample in samples], dtype=np.uint8)
        ids = np.array([sample.sample_id for sample in samples], dtype=np.int64)
        path = folder / "user_samples.npz"
        np.savez(path, images=images, labels=labels, ids=ids)
        return path, len(labels)

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

    def _record_epoch(self, run_id: int, event: TrainingEvent) -> None:
        metrics = event.metrics
        with self.sessions.begin() as session:
            repository.record_epoch(
                session,
                run_id,
                epoch=event.epoch,
                loss=metrics.get("loss", float("nan")),
                accuracy=metrics.get("accuracy", float("nan")),
                val_loss=metrics.get("val_loss"),
                val_accuracy=metrics.get("val_accuracy"),
                learning_rate=metrics.get("learning_rate"),
                seconds=event.elapsed_seconds,
            )

    def _record_finish(self, run: RunProgress) -> None:
        report = run.report if run.status is RunStatus.SUCCEEDED else None
        with self.sessions.begin() as session:
            repository.finish_run(
                session,
                run.run_id,
                status=run.status,
                epochs_done=report.epochs_done if report is not None else run.epoch,
                best_val_accuracy=None if report is None else report.best_val_accuracy,
                test_accuracy=None if report is None else report.test_accuracy,
                test_loss=None if report is None else report.test_loss,
                model_version=None if report is None else report.version,
                promoted=False if report is None else report.promoted,
                promotion_reason=None if report is None else report.promotion_reason,
                error=run.error,
                user_samples=run.user_samples,
                users_accuracy=None if report is None else report.users_accuracy,
                serving_version=None if report is None else report.current_version,
                serving_test_accuracy=None if report is None else report.current_test_accuracy,
                serving_users_accuracy=None if report is None else report.current_users_accuracy,
            )

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


def child_environment(engine: EngineSettings) -> dict[str, str]:
    """The trainer's environment: what it needs to run, and where the data and models are."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name in CHILD_ENVIRONMENT_NAMES or name.startswith(CHILD_ENVIRONMENT_PREFIXES)
    }
    return {
        **inherited,
        "MNIST_MODEL_DIR": str(engine.model_dir.resolve()),
        "MNIST_DATA_DIR": str(engine.data_dir.resolve()),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }


def _curves(run: RunProgress) -> bytes | None:
    """The finished run's curves picture, from its stored version."""
    if run.status is not RunStatus.SUCCEEDED or run.report is None or not run.report.model_path:
        return None
    curves = Path(run.report.model_path) / "curves.png"
    return curves.read_bytes() if curves.exists() else None


async def _collect(stream: asyncio.StreamReader | None, tail: deque[str]) -> None:
    if stream is None:
        return
    async for raw_line in stream:
        line = raw_line.decode("utf-8", errors="replace").rstrip()
        if line:
            tail.append(line)
            logger.debug("training stderr: %s", line)


def _error_from(stderr_tail: deque[str], return_code: int) -> str:
    """The most telling line of a failed run's output."""
    lines = list(stderr_tail)
    for line in reversed(lines):
        if line.startswith("error:") or "Error" in line:
            return f"{line} (exit code {return_code})"
    ending = f": {lines[-1]}" if lines else ""
    return say("summary.process_failed", code=return_code) + ending
