"""Training inside a live service: one run at a time, in a separate process, recorded as it goes.

The run is the engine's own command line (`python -m mnist_engine train --json`), so TensorFlow's
training never shares the bot's process or its event loop: the bot keeps answering photos at
full speed. Each JSON event the child prints updates the database and the progress message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import RunProgress
from bot.settings import BotSettings
from db import repository
from db.models import RunStatus

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 30
# Balanced per digit, so a flood of corrections of one digit cannot skew the model.
USER_SAMPLES_PER_DIGIT = 2000


class ProgressSink(Protocol):
    """Where a run's progress goes (the chat layer posts it to the admins)."""

    async def progress(self, run: RunProgress) -> None: ...

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None: ...


class TrainingBusyError(Exception):
    """A run is already in progress; `run` says how far it is."""

    def __init__(self, run: RunProgress) -> None:
        super().__init__(f"run #{run.run_id} is in progress ({run.progress:.0%})")
        self.run = run


@dataclass(frozen=True)
class TrainingRequest:
    """What to train and why."""

    trigger: str  # manual, scheduled or first_run
    requested_by: str | None = None
    architecture: str | None = None
    epochs: int | None = None
    use_user_samples: bool = True


class TrainingManager:
    """Starts, watches, cancels and records training runs; at most one at a time."""

    def __init__(self, settings: BotSettings, sessions: sessionmaker[Session], sink: ProgressSink) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sink = sink
        self._run: RunProgress | None = None
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._cancel_requested = False

    @property
    def active(self) -> RunProgress | None:
        """The run in progress, or None."""
        return self._run if self._task is not None and not self._task.done() else None

    async def start(self, request: TrainingRequest) -> RunProgress:
        """Record and launch a run; raise TrainingBusyError if one is in progress."""
        if self.active is not None:
            raise TrainingBusyError(self.active)
        architecture = request.architecture or self.settings.retrain_architecture
        epochs = request.epochs or self.settings.retrain_epochs  # None: the architecture's default
        parameters = {
            "epochs": epochs,
            "train_limit": self.settings.training_train_limit,
            "user_sample_weight": self.settings.user_sample_weight,
        }
        run_id = await asyncio.to_thread(self._record_start, request, architecture, parameters)
        self._run = RunProgress(
            run_id=run_id,
            trigger=request.trigger,
            architecture=architecture,
            total_epochs=epochs or 0,
            requested_by=request.requested_by,
        )
        self._cancel_requested = False
        self._task = asyncio.create_task(self._execute(self._run, request), name=f"training-run-{run_id}")
        return self._run

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
        """Stop a run in progress and record it as cancelled (service shutdown)."""
        if await self.cancel():
            await self.wait()

    async def _execute(self, run: RunProgress, request: TrainingRequest) -> None:
        curves: bytes | None = None
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        try:
            with tempfile.TemporaryDirectory(prefix="digitbot-train-") as scratch:
                extra_path, user_samples = None, 0
                if request.use_user_samples:
                    extra_path, user_samples = await asyncio.to_thread(
                        self._write_user_samples, Path(scratch)
                    )
                run.result["user_samples"] = user_samples
                command = self._command(run, request, extra_path)
                logger.info("Training run #%d: %s", run.run_id, " ".join(command[1:]))
                self._process = await asyncio.create_subprocess_exec(
                    *command,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=self._environment(),
                    # A lower priority keeps the bot's own inference ahead of training on a small machine.
                    preexec_fn=lambda: os.nice(10),
                )
                stderr_reader = asyncio.create_task(_collect(self._process.stderr, stderr_tail))
                await self._follow(run, self._process)
                return_code = await self._process.wait()
                await stderr_reader
            self._settle(run, return_code, stderr_tail)
            curves = await asyncio.to_thread(self._curves, run)
        except Exception as error:  # the run must end recorded, whatever broke
            logger.exception("Training run #%d broke", run.run_id)
            run.status, run.result["error"] = "failed", f"{error.__class__.__name__}: {error}"
        finally:
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
            self._process = None
            run.finished = True
            await asyncio.to_thread(self._record_finish, run)
            if run.status == "succeeded" and run.result.get("promoted"):
                logger.info("Run #%d promoted %s", run.run_id, run.result.get("version"))
            await self.sink.finished(run, curves)

    async def _follow(self, run: RunProgress, process: asyncio.subprocess.Process) -> None:
        if process.stdout is None:
            raise RuntimeError("the training process has no stdout pipe")
        async for raw_line in process.stdout:
            line = raw_line.decode("utf-8", errors="replace").strip()
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                logger.debug("training output: %s", line)
                continue
            run.apply(event)
            if event.get("event") == "epoch":
                logger.info(
                    "Run #%d epoch %d/%d: %s",
                    run.run_id,
                    run.epoch,
                    run.total_epochs,
                    ", ".join(f"{name} {value:.4g}" for name, value in run.metrics.items()),
                )
                await asyncio.to_thread(self._record_epoch, run.run_id, event)
            elif event.get("event") == "result":
                run.result.update(event)
            await self.sink.progress(run)

    def _settle(self, run: RunProgress, return_code: int, stderr_tail: deque[str]) -> None:
        # A run that completed counts as succeeded even if a cancel arrived after its last epoch:
        # its model is stored and may already be serving.
        completed = return_code == 0 and "test_accuracy" in run.result and not run.result.get("cancelled")
        if completed:
            run.status = "succeeded"
        elif self._cancel_requested or run.result.get("cancelled"):
            run.status = "cancelled"
        else:
            run.status = "failed"
            run.result["error"] = _error_from(stderr_tail, return_code)

    def _command(self, run: RunProgress, request: TrainingRequest, extra_path: Path | None) -> list[str]:
        settings = self.settings
        command = [
            sys.executable,
            "-m",
            "mnist_engine",
            "train",
            "--json",
            "--arch",
            run.architecture,
            "--tolerance",
            str(settings.promotion_tolerance),
            "--validation-size",
            str(settings.training_validation_size),
        ]
        if run.total_epochs:
            command += ["--epochs", str(run.total_epochs)]
        if settings.training_train_limit:
            command += ["--train-limit", str(settings.training_train_limit)]
        if settings.training_test_limit:
            command += ["--test-limit", str(settings.training_test_limit)]
        if extra_path is not None:
            command += ["--extra", str(extra_path), "--extra-weight", str(settings.user_sample_weight)]
        return command

    def _environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "MNIST_MODEL_DIR": str(self.settings.model_dir.resolve()),
            "MNIST_DATA_DIR": str(self.settings.data_dir.resolve()),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }

    def _curves(self, run: RunProgress) -> bytes | None:
        path = run.result.get("model_path")
        if run.status != "succeeded" or not path:
            return None
        curves = Path(path) / "curves.png"
        return curves.read_bytes() if curves.exists() else None

    def _write_user_samples(self, folder: Path) -> tuple[Path | None, int]:
        with self.sessions() as session:
            samples = repository.labelled_samples(session, per_digit_limit=USER_SAMPLES_PER_DIGIT)
        if not samples:
            return None, 0
        images = np.frombuffer(b"".join(pixels for pixels, _ in samples), dtype=np.uint8).reshape(-1, 28, 28)
        labels = np.array([label for _, label in samples], dtype=np.uint8)
        path = folder / "user_samples.npz"
        np.savez(path, images=images, labels=labels)
        return path, len(labels)

    def _record_start(self, request: TrainingRequest, architecture: str, parameters: dict[str, Any]) -> int:
        with self.sessions.begin() as session:
            return repository.start_run(
                session,
                trigger=request.trigger,
                requested_by=request.requested_by,
                architecture=architecture,
                parameters=parameters,
            )

    def _record_epoch(self, run_id: int, event: dict[str, Any]) -> None:
        metrics = event.get("metrics", {})
        with self.sessions.begin() as session:
            repository.record_epoch(
                session,
                run_id,
                epoch=event["epoch"],
                loss=metrics.get("loss", float("nan")),
                accuracy=metrics.get("accuracy", float("nan")),
                val_loss=metrics.get("val_loss"),
                val_accuracy=metrics.get("val_accuracy"),
                learning_rate=metrics.get("learning_rate"),
                seconds=event.get("elapsed_seconds", 0.0),
            )

    def _record_finish(self, run: RunProgress) -> None:
        result = run.result
        with self.sessions.begin() as session:
            repository.finish_run(
                session,
                run.run_id,
                status=RunStatus(run.status),
                epochs_done=result.get("epochs_done", run.epoch),
                best_val_accuracy=result.get("best_val_accuracy"),
                test_accuracy=result.get("test_accuracy"),
                test_loss=result.get("test_loss"),
                model_version=result.get("version"),
                promoted=result.get("promoted") if run.status == "succeeded" else False,
                promotion_reason=result.get("promotion_reason"),
                error=result.get("error"),
                user_samples=result.get("user_samples"),
            )

    def new_labelled_samples(self) -> int:
        """Labelled user samples that arrived since the newest successful run started."""
        with self.sessions() as session:
            since = next(
                (
                    run.started_at or run.created_at
                    for run in repository.recent_runs(session, limit=50)
                    if run.status == RunStatus.SUCCEEDED
                ),
                None,
            )
            return repository.count_new_labelled_samples(session, since)


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
    return f"the training process exited with code {return_code}" + (f": {lines[-1]}" if lines else "")
