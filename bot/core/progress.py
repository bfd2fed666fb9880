"""Training progress as one message edited in place: its text, and how often it may change."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.replies import format_duration

BAR_WIDTH = 16


@dataclass
class RunProgress:
    """What is known of a run so far, built from the engine's JSON events."""

    run_id: int
    trigger: str
    architecture: str
    total_epochs: int
    requested_by: str | None = None
    epoch: int = 0
    progress: float = 0.0
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    finished: bool = False
    status: str = "running"
    result: dict[str, Any] = field(default_factory=dict)

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one engine event into the snapshot."""
        kind = event.get("event")
        if kind in ("start", "batch", "epoch", "end"):
            self.total_epochs = event.get("total_epochs") or self.total_epochs
            self.epoch = event.get("epoch", self.epoch)
            self.progress = event.get("progress", self.progress)
            self.eta_seconds = event.get("eta_seconds")
            self.elapsed_seconds = event.get("elapsed_seconds", self.elapsed_seconds)
        if kind in ("batch", "epoch"):
            self.metrics.update(event.get("metrics", {}))
        if kind in ("lr_reduced", "early_stopped", "cancelled") and event.get("message"):
            self.notes.append(f"epoch {event.get('epoch')}: {event['message']}")


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A text bar: ▓▓▓▓░░░░ 50%."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "▓" * filled + "░" * (width - filled) + f" {fraction:.0%}"


def progress_text(run: RunProgress) -> str:
    """The live progress message."""
    who = f" by {run.requested_by}" if run.requested_by else ""
    lines = [
        f"🏋️ Training run #{run.run_id} ({run.architecture}, {run.trigger}{who})",
        progress_bar(run.progress),
        f"Epoch {run.epoch}/{run.total_epochs} · elapsed {format_duration(run.elapsed_seconds)}"
        + (f" · ETA {format_duration(run.eta_seconds)}" if run.eta_seconds is not None else ""),
    ]
    metrics = run.metrics
    if "loss" in metrics:
        line = f"loss {metrics['loss']:.4f} · accuracy {metrics.get('accuracy', 0):.2%}"
        if "val_accuracy" in metrics:
            line += f" · val accuracy {metrics['val_accuracy']:.2%}"
        lines.append(line)
    if "learning_rate" in metrics:
        lines.append(f"learning rate {metrics['learning_rate']:.2g}")
    lines.extend(f"• {note}" for note in run.notes[-4:])
    return "\n".join(lines)


def summary_text(run: RunProgress) -> str:
    """The final message of a run: result and promotion decision, or why it failed."""
    result = run.result
    header = f"Training run #{run.run_id} ({run.architecture}, {run.trigger})"
    if run.status == "failed":
        error = result.get("error", "")
        return f"❌ {header} failed after {format_duration(run.elapsed_seconds)}.\n{error}".strip()
    if run.status == "cancelled":
        where = f"epoch {run.epoch}/{run.total_epochs}"
        return f"⏹ {header} was cancelled at {where}. The serving model is unchanged."
    lines = [
        f"✅ {header} finished: {result.get('epochs_done', run.epoch)} epochs in "
        f"{format_duration(result.get('seconds', run.elapsed_seconds))}.",
        f"Test accuracy {result['test_accuracy']:.2%} · loss {result['test_loss']:.4f} · "
        f"best val accuracy {result['best_val_accuracy']:.2%}",
    ]
    if result.get("extra_train_samples"):
        holdout = result.get("extra_holdout_accuracy")
        lines.append(
            f"Learned from {result['extra_train_samples']} user samples"
            + (f"; {holdout:.2%} right on the held-out ones." if holdout is not None else ".")
        )
    lines.extend(f"• {note}" for note in run.notes[-4:])
    verdict = "🚀 Promoted" if result.get("promoted") else "🛑 Not promoted"
    lines.append(f"{verdict}: {result.get('promotion_reason', '')}. Version {result.get('version')}.")
    return "\n".join(lines)


class Throttle:
    """Lets an action happen at most once per interval; the last skipped state can be flushed later."""

    def __init__(self, interval_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._last = float("-inf")

    def ready(self) -> bool:
        """True (and the clock restarts) if the interval has passed since the last allowed action."""
        now = self._clock()
        if now - self._last < self.interval_seconds:
            return False
        self._last = now
        return True

    def seconds_until_ready(self) -> float:
        """How long until the next action is allowed."""
        return max(0.0, self._last + self.interval_seconds - self._clock())
