"""The schema: training runs and their epochs, predictions with their digit samples, and feedback."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Every sample is one normalised 28×28 grey digit, one byte per pixel.
SAMPLE_BYTES = 28 * 28

# Named constraints keep migrations reproducible: Alembic can drop what it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always comes back timezone-aware."""

    impl = _DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and store the UTC instant (naive on SQLite, which has no time zones)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored instant as an aware UTC datetime on every backend."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class RunTrigger(enum.StrEnum):
    """Who or what started a training run."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    FIRST_RUN = "first_run"  # the service trained its first model because none existed
    COMMAND_LINE = "command_line"


class RunStatus(enum.StrEnum):
    """Where a training run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
ACTIVE_RUN_CONDITION = "(status IN ('queued', 'running'))"
ONE_ACTIVE_RUN_INDEX = "uq_training_runs_one_active"


class PredictionSource(enum.StrEnum):
    """How the picture reached the bot: a compressed photo, an uncompressed file, or a drawing."""

    PHOTO = "photo"
    FILE = "file"
    DRAWING = "drawing"  # drawn on the web page's canvas (in a browser or inside Telegram)


class ModelChangeKind(enum.StrEnum):
    """How an admin changed the serving model by hand (a run's own promotion is on its TrainingRun)."""

    PROMOTE = "promote"  # a version that was not serving now serves
    ROLL_BACK = "roll_back"  # the version that served before the current one serves again


class Channel(enum.StrEnum):
    """The front end a person used: ids are only unique within one."""

    TELEGRAM = "telegram"
    WEB = "web"
    DISCORD = "discord"


def _string_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A portable enum column: a VARCHAR holding the member's value, guarded by a CHECK constraint."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base whose metadata the migrations are checked against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TrainingRun(Base):
    """One training of the model, from queueing to its result."""

    __tablename__ = "training_runs"
    __table_args__ = (
        Index("ix_training_runs_status", "status"),
        Index("ix_training_runs_model_version", "model_version"),
        # One run at a time, whichever process or machine starts it: every active run has the same
        # value in this partial unique index, so the database refuses a second one.
        Index(
            ONE_ACTIVE_RUN_INDEX,
            text(ACTIVE_RUN_CONDITION),
            unique=True,
            sqlite_where=text(ACTIVE_RUN_CONDITION),
            postgresql_where=text(ACTIVE_RUN_CONDITION),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[RunTrigger] = mapped_column(_string_enum(RunTrigger, "run_trigger"))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    architecture: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[RunStatus] = mapped_column(_string_enum(RunStatus, "run_status"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Refreshed by every epoch, so a run whose process died can be told from one still training.
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    epochs_done: Mapped[int] = mapped_column(default=0)
    best_val_accuracy: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    test_loss: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))
    promoted: Mapped[bool | None]
    promotion_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    user_samples: Mapped[int | None]
    # The process training the run: a service instance (INSTANCE_NAME) or a worker.
    trainer: Mapped[str | None] = mapped_column(String(128))
    # The promotion's evidence: the candidate on the users' held-out digits, and the model that
    # was serving, measured on the same MNIST test images and the same users' digits.
    users_accuracy: Mapped[float | None] = mapped_column(Float)
    serving_version: Mapped[str | None] = mapped_column(String(64))
    serving_test_accuracy: Mapped[float | None] = mapped_column(Float)
    serving_users_accuracy: Mapped[float | None] = mapped_column(Float)

    epochs: Mapped[list[EpochMetric]] = relationship(
        back_populates="run", order_by="EpochMetric.epoch", cascade="all, delete-orphan"
    )


class EpochMetric(Base):
    """The metrics Keras reported at the end of one epoch of a run."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("run_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    loss: Mapped[float] = mapped_column(Float)
    accuracy: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)

    run: Mapped[TrainingRun] = relationship(back_populates="epochs")


class Prediction(Base):
    """One answer the bot gave: the digits it read from a picture, and how."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[Channel] = mapped_column(
        _string_enum(Channel, "channel"), server_default=Channel.TELEGRAM.value
    )
    # The front end's ids as text, so an operator can store keyed hashes of them instead (see db.ids).
    chat_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[str] = mapped_column(String(64))
    # Digits in reading order; a space separates lines of writing.
    digits: Mapped[str] = mapped_column(String(256))
    latency_ms: Mapped[float] = mapped_column(Float)
    source: Mapped[PredictionSource] = mapped_column(_string_enum(PredictionSource, "prediction_source"))

    samples: Mapped[list[DigitSample]] = relationship(
        back_populates="prediction", order_by="DigitSample.position", cascade="all, delete-orphan"
    )
    feedback: Mapped[Feedback | None] = relationship(
        back_populates="prediction", cascade="all, delete-orphan"
    )


class DigitSample(Base):
    """One digit of a prediction: its normalised 28×28 pixels, what the model read, and its true label."""

    __tablename__ = "digit_samples"
    __table_args__ = (
        UniqueConstraint("prediction_id", "position"),
        Index("ix_digit_samples_label", "label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    predicted: Mapped[int] = mapped_column(SmallInteger)
    confidence: Mapped[float] = mapped_column(Float)
    pixels: Mapped[bytes] = mapped_column(LargeBinary(SAMPLE_BYTES))
    # Derived from the prediction's feedback by record_feedback; NULL while the true digit is unknown.
    label: Mapped[int | None] = mapped_column(SmallInteger)

    prediction: Mapped[Prediction] = relationship(back_populates="samples")


class Feedback(Base):
    """A user's verdict on a prediction: right, or wrong with the digits it should have read."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_updated_at", "updated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(String(64))
    correct: Mapped[bool]
    corrected_digits: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    prediction: Mapped[Prediction] = relationship(back_populates="feedback")


class PendingCorrection(Base):
    """A person asked to type the right digits for an answer; their next message in that chat is it.

    One per person and chat, and only until it expires: a number typed an hour later, or in
    another chat, is not taken as a correction.
    """

    __tablename__ = "pending_corrections"

    channel: Mapped[Channel] = mapped_column(_string_enum(Channel, "channel"), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"))
    # The answer to edit once the digits arrive (a front end's message id, not a person's id).
    answer_message_id: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ModelChange(Base):
    """An admin pointed the registry's `current` at another version: who, when, from what to what."""

    __tablename__ = "model_changes"
    __table_args__ = (Index("ix_model_changes_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[ModelChangeKind] = mapped_column(_string_enum(ModelChangeKind, "model_change_kind"))
    version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64))


def include_in_autogenerate(
    item: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's `include_object`: leave out the one-active-run index, which it cannot compare.

    PostgreSQL rewrites the index's expression and SQLite cannot reflect it, so autogenerate
    would report a difference that is none; tests check the index by what it does instead.
    """
    return not (type_ == "index" and name == ONE_ACTIVE_RUN_INDEX)
