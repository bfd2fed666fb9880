"""Keras callbacks that report training progress to the caller and let it cancel a run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import keras

from mnist_engine.training.events import TrainingEvent

EventHandler = Callable[[TrainingEvent], None]


def current_learning_rate(model: keras.Model) -> float:
    """Read the optimizer's learning rate as a plain float."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


# Keras ships no type information, so its Callback is Any to mypy: subclassing it is deliberate.
class ProgressCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Reports per-epoch metrics, learning-rate changes and throttled in-epoch progress.

    `progress` runs from 0 to 1 over the whole run, so a caller can draw one progress bar.
    """

    def __init__(
        self,
        on_event: EventHandler,
        total_epochs: int,
        steps_per_epoch: int,
        batch_interval_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self.on_event = on_event
        self.total_epochs = total_epochs
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.batch_interval_seconds = batch_interval_seconds
        self._started_at = 0.0
        self._last_batch_event_at = 0.0
        self._epoch = 0
        self._learning_rate = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started_at = time.monotonic()
        self._learning_rate = current_learning_rate(self.model)
        self.on_event(
            TrainingEvent(
                kind="start",
                total_epochs=self.total_epochs,
                metrics={"learning_rate": self._learning_rate},
                message=f"Training {self.model.name}: {self.total_epochs} epochs",
            )
        )

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if now - self._last_batch_event_at < self.batch_interval_seconds:
            return
        self._last_batch_event_at = now
        progress = (self._epoch + (batch + 1) / self.steps_per_epoch) / self.total_epochs
        self.on_event(
            TrainingEvent(
                kind="batch",
                epoch=self._epoch + 1,
                total_epochs=self.total_epochs,
                progress=progress,
                elapsed_seconds=self._elapsed(),
                eta_seconds=self._eta(progress),
                metrics=_floats(logs),
            )
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Runs after ReduceLROnPlateau (see train.py), so the logs hold the rate this epoch
        # trained with and the optimizer already holds the next one.
        metrics = _floats(logs)
        progress = (epoch + 1) / self.total_epochs
        self.on_event(
            TrainingEvent(
                kind="epoch",
                epoch=epoch + 1,
                total_epochs=self.total_epochs,
                progress=progress,
                elapsed_seconds=self._elapsed(),
                eta_seconds=self._eta(progress),
                metrics=metrics,
            )
        )
        used_rate = metrics.get("learning_rate", self._learning_rate)
        next_rate = current_learning_rate(self.model)
        if next_rate < used_rate:
            self.on_event(
                TrainingEvent(
                    kind="lr_reduced",
                    epoch=epoch + 1,
                    total_epochs=self.total_epochs,
                    metrics={"learning_rate": next_rate, "previous_learning_rate": used_rate},
                    message=f"Learning rate reduced to {next_rate:.2g}",
                )
            )
        self._learning_rate = next_rate

    def _elapsed(self) -> float:
        return time.monotonic() - self._started_at

    def _eta(self, progress: float) -> float | None:
        if progress <= 0:
            return None
        return self._elapsed() * (1 - progress) / progress


class CancelCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Stops training at the next batch once `cancel_event` is set from another thread."""

    def __init__(self, cancel_event: threading.Event) -> None:
        super().__init__()
        self.cancel_event = cancel_event
        self.cancelled = False
        self.complete_epochs = 0  # epochs that ran to their end before any cancellation

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.cancelled:
            self.complete_epochs += 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancel_event.is_set():
            self.cancelled = True
            self.model.stop_training = True


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (logs or {}).items()}
