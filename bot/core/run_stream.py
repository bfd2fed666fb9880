"""A training run's events on Redis, for runs trained on a worker (TRAINING_BACKEND=rq).

The worker appends each event of the run to the run's stream, and its end last; every service
instance follows the stream (so each knows how far the run is), and the one that leads relays it
to the admins. New runs are announced on one more stream, so that instances that did not start a
run follow it too. A cancel is a flag the worker watches.

    digitbot:runs              {"run_id": "12"}                       a run was queued
    digitbot:run:12            {"event": <a line of mnist_engine.training.events>}
                               {"ended": {"status": ..., "error": ..., "user_samples": ...}}
    digitbot:run:12:cancel     set while a cancel is asked for
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis.typing import EncodableT, FieldT

from bot.core.progress import RunProgress
from db.models import RunStatus
from mnist_engine.training.events import EventMessage, RunReport, decode_line, encode_line

RUNS_STREAM = "digitbot:runs"
STREAM_LENGTH = 5000  # events kept per run: an epoch's worth of batch events is far fewer
CANCEL_SECONDS = 3600  # how long a cancel flag lives if nobody acts on it


def run_stream(run_id: int) -> str:
    """The stream of one run's events."""
    return f"digitbot:run:{run_id}"


def cancel_flag(run_id: int) -> str:
    """The key that asks the worker to stop a run."""
    return f"digitbot:run:{run_id}:cancel"


@dataclass(frozen=True)
class RunEnded:
    """How a run ended, as the worker recorded it."""

    status: RunStatus
    error: str | None = None
    user_samples: int = 0

    @classmethod
    def of(cls, run: RunProgress) -> RunEnded:
        """The end of a finished run."""
        return cls(run.status, run.error, run.user_samples)


StreamFields = dict[FieldT, EncodableT]
# What XREAD answers: per stream, its entries as (id, fields).
StreamAnswer = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


def message_fields(message: EventMessage) -> StreamFields:
    """The stream entry for one event or the run's report, in the engine's own line format."""
    return {"event": encode_line(message)}


def ended_fields(ended: RunEnded) -> StreamFields:
    """The stream entry that closes a run."""
    return {"ended": json.dumps({**asdict(ended), "status": ended.status.value})}


def apply_entry(run: RunProgress, fields: dict[bytes, bytes]) -> bool:
    """Fold one stream entry into the run; return True when it was the run's end."""
    decoded = {_text(key): _text(value) for key, value in fields.items()}
    if "ended" in decoded:
        ended = json.loads(decoded["ended"])
        run.status = RunStatus(ended["status"])
        run.error = ended.get("error")
        run.user_samples = int(ended.get("user_samples") or 0)
        return True
    message = decode_line(decoded.get("event", ""))
    if isinstance(message, RunReport):
        run.report = message
    elif message is not None:
        run.apply(message)
    return False


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
