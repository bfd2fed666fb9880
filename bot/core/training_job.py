"""One training run from start to end, wherever it runs: in the service (TRAINING_BACKEND=local) or
on a worker (rq).

The users' labelled digits are exported, the engine's own command line trains in a child process
(`python -m mnist_engine train --json`), each typed event it prints is folded into the run's
progress and its epochs recorded, the run's heartbeat is kept fresh while it lives, and its end is
recorded, whatever happened.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import RunProgress
from bot.core.texts import say
from db import repository
from db.models import RunStatus, RunTrigger
from mnist_engine.settings import EngineSettings
from mnist_engine.training.events import EventMessage, RunReport, TrainingEvent, decode_line

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 30
# Balanced per digit, so a flood of corrections of one digit cannot skew the model.
USER_SAMPLES_PER_DIGIT = 2000
# The trainer runs at a lower priority, so reading people's pictures keeps the CPU.
TRAINER_NICENESS = 10
# A live run refreshes its heartbeat this many times within the time after which a silent one is dead.
HEARTBEATS_PER_TIMEOUT = 6
# What the trainer may see of the service's environment: enough to run Python, find packages and
# a GPU; never the chat tokens, the database's password or the id-hashing secret.
CHILD_ENVIRONMENT_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LANG", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
CHILD_ENVIRONMENT_PREFIXES = ("LC_", "PIP_", "CUDA_", "NVIDIA_", "TF_", "XLA_", "OMP_")

ProgressCallback = Callable[[RunProgress], Awaitable[None]]
MessageCallback = Callable[[EventMessage], Awaitable[None]]


class TrainingJob:
    """Runs one recorded training run to its recorded end."""

    def __init__(
        self,
        run: RunProgress,
        engine: EngineSettings,
        sessions: sessionmaker[Session],
        *,
        use_user_samples: bool,
        on_progress: ProgressCallback,
        on_message: MessageCallback | None = None,
        heartbeat_timeout: timedelta = timedelta(seconds=60),
    ) -> None:
        self.run = run
        self.engine = engine
        self.sessions = sessions
        self.use_user_samples = use_user_samples
        self.on_progress = on_progress
        # Every event as the engine printed it, for a worker to pass on to the service (run_stream).
        self.on_message = on_message
        self.heartbeat_seconds = heartbeat_timeout.total_seconds() / HEARTBEATS_PER_TIMEOUT
        self._process: asyncio.subprocess.Process | None = None
        self._cancel_requested = False

    @property
    def trainer_pid(self) -> int | None:
        """The child process's id while it runs."""
        return None if self._process is None else self._process.pid

    def request_cancel(self) -> None:
        """Stop at the next batch (the child gets SIGTERM), or before the child starts at all."""
        self._cancel_requested = True
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)

    async def execute(self) -> bytes | None:
        """Run to the end and record it; return the curves picture of a run that made a model."""
        heartbeat = asyncio.create_task(self._keep_alive(), name=f"heartbeat-run-{self.run.run_id}")
        try:
            return await self._train()
        finally:
            heartbeat.cancel()

    async def _train(self) -> bytes | None:
        run = self.run
        curves: bytes | None = None
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        try:
            with tempfile.TemporaryDirectory(prefix="digitbot-train-") as scratch:
                extra_path = None
                if self.use_user_samples:
                    extra_path, run.user_samples = await asyncio.to_thread(
                        self._write_user_samples, Path(scratch)
                    )
                # A cancel (or a shutdown) that came while the samples were exported: no child at all.
                if self._cancel_requested:
                    run.status = RunStatus.CANCELLED
                    return None
                command = self._command(run, extra_path)
                logger.info("Training run #%d: %s", run.run_id, " ".join(command[1:]))
                self._process = await asyncio.create_subprocess_exec(
                    *command,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=child_environment(self.engine),
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
        return curves

    async def _follow(self, run: RunProgress, process: asyncio.subprocess.Process) -> None:
        if process.stdout is None:
            raise RuntimeError("the training process has no stdout pipe")
        async for raw_line in process.stdout:
            message = decode_line(raw_line.decode("utf-8", errors="replace").strip())
            if message is None:
                logger.debug("training output: %s", raw_line.decode("utf-8", errors="replace").rstrip())
                continue
            if self.on_message is not None:
                await self.on_message(message)
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
            await self.on_progress(run)

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
        engine = self.engine
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
            "--photo-crops",
            str(engine.training_photo_crops),
        ]
        if run.trigger == RunTrigger.SCHEDULED and engine.retrain_fine_tune:
            command.append("--fine-tune")
        if run.total_epochs:
            command += ["--epochs", str(run.total_epochs)]
        if engine.training_train_limit:
            command += ["--train-limit", str(engine.training_train_limit)]
        if engine.training_test_limit:
            command += ["--test-limit", str(engine.training_test_limit)]
        if extra_path is not None:
            command += ["--extra", str(extra_path), "--extra-weight", str(engine.user_sample_weight)]
            command += ["--extra-share", str(engine.user_sample_share)]
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

    async def _keep_alive(self) -> None:
        """Refresh the run's heartbeat while it lives: a run whose heartbeat stops is known dead."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await asyncio.to_thread(self._touch)

    def _touch(self) -> None:
        with self.sessions.begin() as session:
            repository.touch_run(session, self.run.run_id)

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
