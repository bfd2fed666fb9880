"""Plain, frozen snapshots of rows that the bot can keep after its session has closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from db.models import EpochMetric, ModelChange, ModelChangeKind, RunStatus, RunTrigger, TrainingRun


@dataclass(frozen=True)
class EpochSummary:
    """The metrics of one epoch."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    seconds: float

    @classmethod
    def from_row(cls, row: EpochMetric) -> EpochSummary:
        """Copy an EpochMetric row."""
        return cls(
            epoch=row.epoch,
            loss=row.loss,
            accuracy=row.accuracy,
            val_loss=row.val_loss,
            val_accuracy=row.val_accuracy,
            learning_rate=row.learning_rate,
            seconds=row.seconds,
        )


@dataclass(frozen=True)
class RunSummary:
    """A training run with its result and its epochs in order."""

    id: int
    trigger: RunTrigger
    requested_by: str | None
    architecture: str
    parameters: dict[str, Any]
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    epochs_done: int
    best_val_accuracy: float | None
    test_accuracy: float | None
    test_loss: float | None
    model_version: str | None
    promoted: bool | None
    promotion_reason: str | None
    error: str | None
    user_samples: int | None
    users_accuracy: float | None
    serving_version: str | None
    serving_test_accuracy: float | None
    serving_users_accuracy: float | None
    trainer: str | None
    epochs: tuple[EpochSummary, ...]

    @classmethod
    def from_row(cls, run: TrainingRun) -> RunSummary:
        """Copy a TrainingRun row and its epochs."""
        return cls(
            id=run.id,
            trigger=run.trigger,
            requested_by=run.requested_by,
            architecture=run.architecture,
            parameters=dict(run.parameters),
            status=run.status,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            epochs_done=run.epochs_done,
            best_val_accuracy=run.best_val_accuracy,
            test_accuracy=run.test_accuracy,
            test_loss=run.test_loss,
            model_version=run.model_version,
            promoted=run.promoted,
            promotion_reason=run.promotion_reason,
            error=run.error,
            user_samples=run.user_samples,
            users_accuracy=run.users_accuracy,
            serving_version=run.serving_version,
            serving_test_accuracy=run.serving_test_accuracy,
            serving_users_accuracy=run.serving_users_accuracy,
            trainer=run.trainer,
            epochs=tuple(EpochSummary.from_row(epoch) for epoch in run.epochs),
        )


@dataclass(frozen=True)
class Statistics:
    """What /stats shows: usage, accuracy as users judged it, the confusion matrix and recent training."""

    predictions_today: int
    predictions_last_7_days: int
    predictions_total: int
    distinct_users: int
    feedback_count: int
    judged_right: int
    # judged_right / feedback_count, or None before anyone has given a verdict.
    accuracy: float | None
    labelled_samples: int
    # confusion[true digit][predicted digit], counted over samples whose true digit is known.
    confusion: list[list[int]]
    current_model_version: str | None
    recent_runs: list[RunSummary]


@dataclass(frozen=True)
class PendingCorrectionView:
    """The answer a person is typing the right number for."""

    prediction_id: int
    answer_message_id: int


class LabelledSample(NamedTuple):
    """A stored digit whose true label a verdict gave: its id, 784 pixel bytes and the digit."""

    sample_id: int
    pixels: bytes
    label: int


@dataclass(frozen=True)
class ModelChangeView:
    """An admin's change of the serving model."""

    id: int
    created_at: datetime
    kind: ModelChangeKind
    version: str
    previous_version: str | None
    requested_by: str

    @classmethod
    def from_row(cls, row: ModelChange) -> ModelChangeView:
        """Copy a ModelChange row."""
        return cls(
            id=row.id,
            created_at=row.created_at,
            kind=row.kind,
            version=row.version,
            previous_version=row.previous_version,
            requested_by=row.requested_by,
        )


@dataclass(frozen=True)
class DailyUsage:
    """One UTC day: answers given, verdicts on them, and how many verdicts said right."""

    day: date
    predictions: int
    verdicts: int
    judged_right: int

    @property
    def accuracy(self) -> float | None:
        """The share of that day's verdicts that said right, or None without verdicts."""
        return self.judged_right / self.verdicts if self.verdicts else None
