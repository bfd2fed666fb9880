"""What a training run reports as it goes: typed events, and one JSON line each between processes.

The service runs training in a child process (`python -m mnist_engine train --json`) and reads
these lines back with `decode_line`, so both sides share one definition. No TensorFlow here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

EventKind = Literal["start", "batch", "epoch", "lr_reduced", "early_stopped", "cancelled", "end"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "start",
    "batch",
    "epoch",
    "lr_reduced",
    "early_stopped",
    "cancelled",
    "end",
)
RESULT = "result"


@dataclass(frozen=True)
class TrainingEvent:
    """One progress event of a run; `progress` runs from 0 to 1 over the whole run."""

    kind: EventKind
    epoch: int = 0
    total_epochs: int = 0
    progress: float = 0.0
    elapsed_seconds: float = 0.0
    eta_seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class RunReport:
    """The last line of a run: what it produced, and whether it now serves and why."""

    version: str | None
    architecture: str
    epochs_done: int
    cancelled: bool
    promoted: bool
    promotion_reason: str
    seconds: float = 0.0
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    stopped_early: bool = False
    extra_train_samples: int = 0
    # The users' held-out digits, and the serving model's figures on the very same data.
    users_accuracy: float | None = None
    current_version: str | None = None
    current_test_accuracy: float | None = None
    current_users_accuracy: float | None = None
    model_path: str | None = None


EventMessage = TrainingEvent | RunReport


def encode_line(message: EventMessage) -> str:
    """One JSON object on one line: `{"event": kind, ...}`."""
    if isinstance(message, RunReport):
        return json.dumps({"event": RESULT, **asdict(message)})
    payload = asdict(message)
    return json.dumps({"event": payload.pop("kind"), **payload})


def decode_line(line: str) -> EventMessage | None:
    """The event or report on a line, or None for any other output (a library's log line)."""
    try:
        payload = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    kind = payload.pop("event", None)
    if kind == RESULT:
        return RunReport(**_known(RunReport, payload))
    if kind in EVENT_KINDS:
        return TrainingEvent(kind=kind, **_known(TrainingEvent, payload))
    return None


def _known(cls: type, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload's fields that `cls` has, so a newer sender's extra fields do no harm."""
    names = {item.name for item in fields(cls)}
    return {name: value for name, value in payload.items() if name in names}
