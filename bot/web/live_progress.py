"""Training runs as the dashboard sees them live: a ProgressSink that keeps the newest state and
streams it to every open dashboard as server-sent events.

Each stream sends the newest state when it changes, at most every SEND_INTERVAL_SECONDS, so a
slow browser gets fresh states instead of a backlog; a comment line keeps idle streams open
through proxies.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any

from bot.core.progress import RunMark, RunProgress, progress_text, summary_text
from bot.core.texts import say

SEND_INTERVAL_SECONDS = 0.25
KEEP_ALIVE_SECONDS = 15.0
NOTES_KEPT = 10


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: those become null (a loss that diverged, a missing metric)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def run_state(run: RunProgress) -> dict[str, Any]:
    """A run as the dashboard draws it: numbers for the bar and curves, and the texts admins read."""
    report = run.report
    state: dict[str, Any] = finite(
        {
            "run_id": run.run_id,
            "trigger": run.trigger.value,
            "architecture": run.architecture,
            "requested_by": run.requested_by,
            "status": run.status.value,
            "finished": run.finished,
            "epoch": run.epoch,
            "total_epochs": run.total_epochs,
            "progress": run.progress,
            "eta_seconds": run.eta_seconds,
            "elapsed_seconds": run.elapsed_seconds,
            "metrics": run.metrics,
            "history": run.history,
            "marks": [{**asdict(mark), "label": mark_label(mark)} for mark in run.marks],
            "text": summary_text(run) if run.finished else progress_text(run),
            "report": None
            if report is None
            else {
                "version": report.version,
                "promoted": report.promoted,
                "promotion_reason": report.promotion_reason,
                "test_accuracy": report.test_accuracy,
                "stopped_early": report.stopped_early,
            },
        }
    )
    return state


def mark_label(mark: RunMark) -> str:
    """The words on a turning point's line across the curves."""
    if mark.kind == "lr_reduced":
        return say("web.admin.mark_lr_reduced", learning_rate=mark.learning_rate or 0.0)
    if mark.kind == "early_stopped":
        return say("web.admin.mark_early_stopped")
    return say("web.admin.mark_cancelled")


class LiveProgress:
    """The dashboard's admin channel: the newest run state and notes, streamed to each open page."""

    def __init__(self) -> None:
        self._run: dict[str, Any] | None = None
        self._notes: deque[dict[str, Any]] = deque(maxlen=NOTES_KEPT)
        self._version = 0
        self._changed = asyncio.Condition()
        self._closed = False

    @property
    def state(self) -> dict[str, Any]:
        """What a dashboard shows: the current or last run, and the latest notes, newest first."""
        return {"run": self._run, "notes": list(reversed(self._notes))}

    async def progress(self, run: RunProgress) -> None:
        """A run's new state."""
        await self._publish(run=run_state(run))

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        """A run's end, with the promotion decision (the dashboard draws its own curves)."""
        await self._publish(run=run_state(run))

    async def notify(self, text: str) -> None:
        """A note for the admins."""
        self._notes.append({"at": time.time(), "text": text})
        await self._publish()

    async def close(self) -> None:
        """End every stream (the service is stopping)."""
        self._closed = True
        async with self._changed:
            self._changed.notify_all()

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: the state now, then each newer state, until the service stops."""
        seen = -1
        while not self.closed():
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(self._newer_than(seen)), KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
            if self.closed():  # close() woke the wait (a call: the type checker must not assume it unchanged)
                return
            seen = self._version
            yield f"event: state\ndata: {json.dumps(self.state)}\n\n"
            await asyncio.sleep(SEND_INTERVAL_SECONDS)

    def closed(self) -> bool:
        """Whether the streams were ended (the service is stopping)."""
        return self._closed

    def _newer_than(self, seen: int) -> Callable[[], bool]:
        return lambda: self._version != seen or self._closed

    async def _publish(self, run: dict[str, Any] | None = None) -> None:
        if run is not None:
            self._run = run
        async with self._changed:
            self._version += 1
            self._changed.notify_all()
