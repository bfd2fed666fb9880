"""A training run as the admins follow it: its state, its texts, and the front ends that show it.

The trainer folds the engine's typed events into a `RunProgress`; the `ProgressHub` hands each
new state to every front end's admin channel (a Telegram chat, a Discord channel, the web
dashboard), which decide themselves how often to show it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.texts import format_duration, say
from db.models import RunStatus, RunTrigger
from mnist_engine.training.events import RunReport, TrainingEvent

logger = logging.getLogger(__name__)

BAR_WIDTH = 16
NOTES_SHOWN = 4


@dataclass(frozen=True)
class RunMark:
    """A turning point of a run, to mark on its curves: the learning rate cut, early stopping, a cancel."""

    kind: str  # the engine's event kind: "lr_reduced", "early_stopped" or "cancelled"
    epoch: int
    learning_rate: float | None = None


@dataclass
class RunProgress:
    """What is known of a run so far."""

    run_id: int
    trigger: RunTrigger
    architecture: str
    total_epochs: int
    requested_by: str | None = None
    epoch: int = 0
    progress: float = 0.0
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Every epoch's metrics, for curves drawn as the run goes.
    history: list[dict[str, float]] = field(default_factory=list)
    marks: list[RunMark] = field(default_factory=list)
    status: RunStatus = RunStatus.RUNNING
    report: RunReport | None = None
    error: str | None = None
    user_samples: int = 0

    @property
    def finished(self) -> bool:
        """Whether the run has ended, however it ended."""
        return self.status not in (RunStatus.QUEUED, RunStatus.RUNNING)

    def apply(self, event: TrainingEvent) -> None:
        """Fold one engine event into the snapshot."""
        if event.kind in ("start", "batch", "epoch", "end"):
            self.total_epochs = event.total_epochs or self.total_epochs
            self.epoch = event.epoch or self.epoch
            self.progress = event.progress or self.progress
            self.eta_seconds = event.eta_seconds
            self.elapsed_seconds = event.elapsed_seconds or self.elapsed_seconds
        if event.kind in ("batch", "epoch"):
            self.metrics.update(event.metrics)
        if event.kind == "epoch":
            self.history.append({"epoch": float(event.epoch), **event.metrics})
        note = _note(event)
        if note is not None:
            self.notes.append(say("progress.note", epoch=event.epoch, message=note))
            self.marks.append(RunMark(event.kind, event.epoch, event.metrics.get("learning_rate")))


def _note(event: TrainingEvent) -> str | None:
    """What a run's turning point means to an admin, worded here rather than by the engine."""
    if event.kind == "lr_reduced":
        return say("progress.lr_reduced", learning_rate=event.metrics.get("learning_rate", 0.0))
    if event.kind == "early_stopped":
        return say("progress.early_stopped", epoch=event.epoch)
    if event.kind == "cancelled":
        return say("progress.cancelled")
    return None


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A text bar: ▓▓▓▓░░░░ 50%."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "▓" * filled + "░" * (width - filled) + f" {fraction:.0%}"


def progress_text(run: RunProgress) -> str:
    """The live progress message."""
    who = say("progress.by", name=run.requested_by) if run.requested_by else ""
    epoch_line = say(
        "progress.epoch",
        epoch=run.epoch,
        total_epochs=run.total_epochs,
        elapsed=format_duration(run.elapsed_seconds),
    )
    if run.eta_seconds is not None:
        epoch_line += say("progress.eta", eta=format_duration(run.eta_seconds))
    lines = [
        say(
            "progress.header",
            run_id=run.run_id,
            architecture=run.architecture,
            trigger=run.trigger.value,
            who=who,
        ),
        progress_bar(run.progress),
        epoch_line,
    ]
    metrics = run.metrics
    if "loss" in metrics:
        line = say("progress.metrics", loss=metrics["loss"], accuracy=metrics.get("accuracy", 0.0))
        if "val_accuracy" in metrics:
            line += say("progress.val_accuracy", val_accuracy=metrics["val_accuracy"])
        lines.append(line)
    if "learning_rate" in metrics:
        lines.append(say("progress.learning_rate", learning_rate=metrics["learning_rate"]))
    lines.extend(f"• {note}" for note in run.notes[-NOTES_SHOWN:])
    return "\n".join(lines)


def summary_text(run: RunProgress) -> str:
    """The final message of a run: result and promotion decision, or why it failed."""
    header = say(
        "summary.header", run_id=run.run_id, architecture=run.architecture, trigger=run.trigger.value
    )
    report = run.report
    if run.status is RunStatus.FAILED or (run.status is RunStatus.SUCCEEDED and report is None):
        return say(
            "summary.failed",
            header=header,
            elapsed=format_duration(run.elapsed_seconds),
            error=run.error or "",
        ).strip()
    if run.status is not RunStatus.SUCCEEDED or report is None or report.test_accuracy is None:
        return say("summary.cancelled", header=header, epoch=run.epoch, total_epochs=run.total_epochs)
    lines = [
        say(
            "summary.finished",
            header=header,
            epochs=report.epochs_done,
            elapsed=format_duration(report.seconds or run.elapsed_seconds),
        ),
        say(
            "summary.scores",
            test_accuracy=report.test_accuracy,
            test_loss=report.test_loss or 0.0,
            best_val_accuracy=report.best_val_accuracy or 0.0,
        ),
    ]
    if report.extra_train_samples:
        if report.users_accuracy is not None:
            lines.append(
                say(
                    "summary.user_samples_holdout",
                    count=report.extra_train_samples,
                    accuracy=report.users_accuracy,
                )
            )
        else:
            lines.append(say("summary.user_samples", count=report.extra_train_samples))
    if report.current_test_accuracy is not None:
        users = (
            say("summary.serving_users", users_accuracy=report.current_users_accuracy)
            if report.current_users_accuracy is not None
            else ""
        )
        lines.append(say("summary.serving_compared", test_accuracy=report.current_test_accuracy, users=users))
    lines.extend(f"• {note}" for note in run.notes[-NOTES_SHOWN:])
    verdict = "summary.promoted" if report.promoted else "summary.not_promoted"
    lines.append(say(verdict, reason=report.promotion_reason, version=report.version))
    return "\n".join(lines)


class ProgressSink(Protocol):
    """A front end's admin channel: where a run's progress and the notes for admins are shown."""

    async def progress(self, run: RunProgress) -> None:
        """Show the run's state (a sink may show only some of the states it is given)."""

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        """Show how the run ended, with its curves when it produced a model."""

    async def notify(self, text: str) -> None:
        """Tell the admins something (a skipped scheduled run, a broken model)."""


class ProgressHub:
    """Hands every run state and note to each front end's admin channel; one failing sink spoils none.

    With several instances, a worker's run is followed by all of them: a channel that every
    instance shares (a Telegram chat, a Discord channel) is fed by the leading instance only, a
    channel of this instance's own (the dashboards its web app serves) by every instance.
    """

    def __init__(self) -> None:
        self._sinks: list[ProgressSink] = []
        self._own: list[ProgressSink] = []

    def add(self, sink: ProgressSink, *, own: bool = False) -> None:
        """Show runs in one more place; `own` for a place this instance alone shows (its dashboards)."""
        self._sinks.append(sink)
        if own:
            self._own.append(sink)

    def remove(self, sink: ProgressSink) -> None:
        """Stop showing runs in a place (its front end stopped)."""
        if sink in self._sinks:
            self._sinks.remove(sink)
        if sink in self._own:
            self._own.remove(sink)

    async def progress(self, run: RunProgress, *, leading: bool = True) -> None:
        """Pass a run's new state on (to this instance's own channels only, when another one leads)."""
        await self._each(lambda sink: sink.progress(run), leading)

    async def finished(self, run: RunProgress, curves_png: bytes | None, *, leading: bool = True) -> None:
        """Pass a run's end on (to this instance's own channels only, when another one leads)."""
        await self._each(lambda sink: sink.finished(run, curves_png), leading)

    async def notify(self, text: str) -> None:
        """Pass a note for the admins on."""
        await self._each(lambda sink: sink.notify(text))

    async def _each(self, call: Callable[[ProgressSink], Awaitable[None]], leading: bool = True) -> None:
        sinks = list(self._sinks if leading else self._own)
        results = await asyncio.gather(*(call(sink) for sink in sinks), return_exceptions=True)
        for sink, result in zip(sinks, results, strict=True):
            if isinstance(result, Exception):
                logger.error("Admin channel %s failed", type(sink).__name__, exc_info=result)


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

    def delay(self, seconds: float) -> None:
        """Push the next allowed action back (a platform asked to wait)."""
        self._last = max(self._last, self._clock()) + seconds
