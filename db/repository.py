"""What the bot and the trainer read and write: plain functions that take a Session first.

Transactions belong to the caller. These functions add, change and flush rows but never commit, so wrap
each unit of work in ``with session_factory.begin() as session:``, which commits when the block ends
(or rolls back if it raises). Keep those blocks short: on SQLite one writer holds the file at a time.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, TypeVarTuple, cast

from sqlalchemy import CursorResult, Select, delete, distinct, func, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from db.models import (
    ACTIVE_STATUSES,
    ONE_ACTIVE_RUN_INDEX,
    SAMPLE_BYTES,
    Channel,
    DigitSample,
    EpochMetric,
    Feedback,
    ModelChange,
    ModelChangeKind,
    PendingCorrection,
    Prediction,
    PredictionSource,
    RunStatus,
    RunTrigger,
    TrainingRun,
    utc_now,
)
from db.views import (
    DailyUsage,
    LabelledSample,
    ModelChangeView,
    PendingCorrectionView,
    RunSummary,
    Statistics,
)

E = TypeVar("E", bound=enum.StrEnum)
Row = TypeVarTuple("Row")

INTERRUPTED_ERROR = "Interrupted: the service restarted while this run was queued or running."
STALE_ERROR = "Interrupted: the process training this run stopped answering (its heartbeat ran out)."

# Digits in reading order, with single spaces between lines of writing ("12 345").
_DIGITS = re.compile(r"[0-9]+(?: [0-9]+)*")


class NotFoundError(LookupError):
    """No training run or prediction has the id asked for."""


class RunInProgressError(RuntimeError):
    """Another run is queued or running: the database holds one active run at a time."""


# --- Training runs ---------------------------------------------------------------------------------


def start_run(
    session: Session,
    *,
    trigger: str,
    requested_by: str | None,
    architecture: str,
    parameters: dict[str, Any],
    status: str = RunStatus.RUNNING,
    trainer: str | None = None,
    now: datetime | None = None,
) -> int:
    """Record a new run, queued or already running (by `trainer`), and return its id.

    Raises RunInProgressError when another run is active, whichever process started it: the
    database's one-active-run index decides, so two processes cannot both get through.
    """
    now = _now(now)
    status = _member(RunStatus, status, "status")
    if status not in ACTIVE_STATUSES:
        raise ValueError(f"a run starts as 'queued' or 'running', not {status.value!r}")
    run = TrainingRun(
        trigger=_member(RunTrigger, trigger, "trigger"),
        requested_by=requested_by,
        architecture=architecture,
        parameters=parameters,
        status=status,
        created_at=now,
        started_at=now if status is RunStatus.RUNNING else None,
        heartbeat_at=now,
        epochs_done=0,
        trainer=trainer,
    )
    try:
        # A savepoint, so the caller's transaction stays usable when the guard refuses the run.
        with session.begin_nested():
            session.add(run)
    except IntegrityError as error:
        if _is_active_run_clash(error):
            raise RunInProgressError("another training run is queued or running") from None
        raise
    return run.id


def _is_active_run_clash(error: IntegrityError) -> bool:
    """Whether an insert failed on the one-active-run index (and not on another constraint)."""
    return ONE_ACTIVE_RUN_INDEX in str(error.orig)


def mark_run_started(
    session: Session, run_id: int, *, trainer: str | None = None, now: datetime | None = None
) -> None:
    """Move a queued run to running, trained by `trainer` (a worker's name)."""
    now = _now(now)
    run = _run(session, run_id)
    if run.status is not RunStatus.QUEUED:
        raise ValueError(f"run {run_id} is {run.status.value}, only a queued run can start")
    run.status = RunStatus.RUNNING
    run.trainer = trainer
    run.started_at = now
    run.heartbeat_at = now
    session.flush()


def record_epoch(
    session: Session,
    run_id: int,
    *,
    epoch: int,
    loss: float,
    accuracy: float,
    val_loss: float | None = None,
    val_accuracy: float | None = None,
    learning_rate: float | None = None,
    seconds: float,
    now: datetime | None = None,
) -> None:
    """Record the metrics of one epoch (numbered from 1); recording the same epoch again updates it."""
    if epoch < 1:
        raise ValueError(f"epochs are numbered from 1, got {epoch}")
    run = _run(session, run_id)
    row = next((row for row in run.epochs if row.epoch == epoch), None)
    if row is None:
        row = EpochMetric(epoch=epoch)
        run.epochs.append(row)
    row.loss = loss
    row.accuracy = accuracy
    row.val_loss = val_loss
    row.val_accuracy = val_accuracy
    row.learning_rate = learning_rate
    row.seconds = seconds

    # The run shows its progress while it trains; finish_run may overwrite these with final values.
    run.epochs_done = max(run.epochs_done, epoch)
    val_accuracies = [row.val_accuracy for row in run.epochs if row.val_accuracy is not None]
    run.best_val_accuracy = max(val_accuracies, default=None)
    run.heartbeat_at = _now(now)
    session.flush()


def touch_run(session: Session, run_id: int, *, now: datetime | None = None) -> None:
    """Refresh a running run's heartbeat: it is alive, even between epochs."""
    session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status.in_(ACTIVE_STATUSES))
        .values(heartbeat_at=_now(now))
    )


def finish_run(
    session: Session,
    run_id: int,
    *,
    status: str,
    epochs_done: int | None = None,
    best_val_accuracy: float | None = None,
    test_accuracy: float | None = None,
    test_loss: float | None = None,
    model_version: str | None = None,
    promoted: bool | None = None,
    promotion_reason: str | None = None,
    error: str | None = None,
    user_samples: int | None = None,
    users_accuracy: float | None = None,
    serving_version: str | None = None,
    serving_test_accuracy: float | None = None,
    serving_users_accuracy: float | None = None,
    now: datetime | None = None,
) -> None:
    """Record how a run ended; fields left as None keep what the run already has."""
    now = _now(now)
    status = _member(RunStatus, status, "status")
    if status in ACTIVE_STATUSES:
        raise ValueError(
            f"a run finishes as succeeded, failed, cancelled or interrupted, not {status.value!r}"
        )
    run = _run(session, run_id)
    run.status = status
    run.finished_at = now
    run.heartbeat_at = now
    results = {
        "epochs_done": epochs_done,
        "best_val_accuracy": best_val_accuracy,
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "model_version": model_version,
        "promoted": promoted,
        "promotion_reason": promotion_reason,
        "error": error,
        "user_samples": user_samples,
        "users_accuracy": users_accuracy,
        "serving_version": serving_version,
        "serving_test_accuracy": serving_test_accuracy,
        "serving_users_accuracy": serving_users_accuracy,
    }
    for name, value in results.items():
        if value is not None:
            setattr(run, name, value)
    session.flush()


def mark_interrupted_runs(
    session: Session,
    *,
    trainer: str | None = None,
    stale_after: timedelta | None = None,
    now: datetime | None = None,
) -> int:
    """Mark runs left queued or running by a crash as interrupted; return how many.

    An instance starting up passes its own name as `trainer`: the running runs it trained (and
    running runs nobody claimed) died with its previous life, while other instances' and workers'
    runs, and queued ones, are left to their heartbeats. Without `trainer`, every unfinished run
    is marked; `stale_after` keeps only runs without a heartbeat for that long.
    """
    now = _now(now)
    statement = (
        update(TrainingRun)
        .where(TrainingRun.status.in_(ACTIVE_STATUSES))
        .values(status=RunStatus.INTERRUPTED, finished_at=now, error=INTERRUPTED_ERROR)
    )
    if trainer is not None:
        statement = statement.where(
            TrainingRun.status == RunStatus.RUNNING,
            (TrainingRun.trainer == trainer) | TrainingRun.trainer.is_(None),
        )
    if stale_after is not None:
        statement = statement.where(TrainingRun.heartbeat_at < now - stale_after)
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def interrupt_stale_runs(
    session: Session, *, running_for: timedelta, queued_for: timedelta, now: datetime | None = None
) -> list[int]:
    """Mark interrupted the runs whose heartbeat stopped (their process or machine died); return their ids.

    A running run refreshes its heartbeat every few seconds, so silence for `running_for` means it
    is dead; a queued run has no heartbeat until a worker takes it, so it may wait `queued_for`.
    """
    now = _now(now)
    stale = ((TrainingRun.status == RunStatus.RUNNING) & (TrainingRun.heartbeat_at < now - running_for)) | (
        (TrainingRun.status == RunStatus.QUEUED) & (TrainingRun.heartbeat_at < now - queued_for)
    )
    run_ids = list(session.scalars(select(TrainingRun.id).where(stale).with_for_update()))
    if run_ids:
        session.execute(
            update(TrainingRun)
            .where(TrainingRun.id.in_(run_ids), TrainingRun.status.in_(ACTIVE_STATUSES))
            .values(status=RunStatus.INTERRUPTED, finished_at=now, error=STALE_ERROR)
        )
    return run_ids


def get_run(session: Session, run_id: int) -> RunSummary | None:
    """The run with this id and its epochs, or None."""
    run = session.scalars(_runs().where(TrainingRun.id == run_id)).one_or_none()
    return RunSummary.from_row(run) if run is not None else None


def active_run(session: Session) -> RunSummary | None:
    """The newest run that is queued or running, or None when the trainer is idle."""
    statement = _runs().where(TrainingRun.status.in_(ACTIVE_STATUSES)).order_by(TrainingRun.id.desc())
    run = session.scalars(statement.limit(1)).one_or_none()
    return RunSummary.from_row(run) if run is not None else None


def recent_runs(session: Session, limit: int = 5) -> list[RunSummary]:
    """The last `limit` runs, newest first, with their epochs."""
    statement = _runs().order_by(TrainingRun.id.desc()).limit(limit)
    return [RunSummary.from_row(run) for run in session.scalars(statement)]


def model_history(session: Session, model_version: str | None = None) -> list[RunSummary]:
    """The runs whose models were promoted, oldest first, ending with the one that made model_version.

    Without model_version, every promoted run; with a version no promoted run produced, an empty list.
    """
    statement = _runs().where(TrainingRun.promoted.is_(True)).order_by(TrainingRun.id)
    history = [RunSummary.from_row(run) for run in session.scalars(statement)]
    if model_version is None:
        return history
    versions = [run.model_version for run in history]
    if model_version not in versions:
        return []
    return history[: versions.index(model_version) + 1]


def current_model_version(session: Session) -> str | None:
    """The model version of the newest promoted run, or None when no run has been promoted."""
    statement = (
        select(TrainingRun.model_version)
        .where(TrainingRun.promoted.is_(True))
        .order_by(TrainingRun.id.desc())
        .limit(1)
    )
    return session.scalars(statement).one_or_none()


# --- Predictions and feedback ----------------------------------------------------------------------


def record_prediction(
    session: Session,
    *,
    chat_id: str,
    user_id: str,
    message_id: int,
    model_version: str,
    digits: str,
    confidences: Sequence[float],
    latency_ms: float,
    source: str,
    samples: Sequence[bytes],
    channel: str = Channel.TELEGRAM,
    now: datetime | None = None,
) -> int:
    """Record an answer with one 28×28 sample (784 bytes) and one confidence per digit; return its id."""
    source = _member(PredictionSource, source, "source")
    channel = _member(Channel, channel, "channel")
    if digits and not _DIGITS.fullmatch(digits):
        raise ValueError(f"digits must be digits with single spaces between lines, got {digits!r}")
    read = digits.replace(" ", "")
    if len(samples) != len(read) or len(confidences) != len(read):
        raise ValueError(
            f"{len(read)} digits read ({digits!r}) but {len(samples)} samples and "
            f"{len(confidences)} confidences: pass one of each per digit, in reading order"
        )
    for position, sample in enumerate(samples):
        if len(sample) != SAMPLE_BYTES:
            raise ValueError(
                f"sample {position} has {len(sample)} bytes; a 28×28 grey sample has {SAMPLE_BYTES}"
            )
    for position, confidence in enumerate(confidences):
        if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            raise ValueError(f"confidence {position} is {confidence}; confidences lie in [0, 1]")

    prediction = Prediction(
        created_at=_now(now),
        channel=channel,
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        model_version=model_version,
        digits=digits,
        latency_ms=latency_ms,
        source=source,
        samples=[
            DigitSample(
                position=position, predicted=int(digit), confidence=float(confidence), pixels=bytes(pixels)
            )
            for position, (digit, confidence, pixels) in enumerate(
                zip(read, confidences, samples, strict=True)
            )
        ],
    )
    session.add(prediction)
    session.flush()
    return prediction.id


def record_feedback(
    session: Session,
    prediction_id: int,
    *,
    user_id: str,
    correct: bool,
    corrected_digits: str | None = None,
    now: datetime | None = None,
) -> Feedback:
    """Record a verdict on a prediction (right, or wrong with the true digits); a new verdict replaces it."""
    now = _now(now)
    if correct and corrected_digits is not None:
        raise ValueError("a 'right' verdict takes no corrected digits")
    if corrected_digits is not None:
        # Users type lines of digits separated by any whitespace; store them like the digits field.
        corrected_digits = " ".join(corrected_digits.split())
        if not _DIGITS.fullmatch(corrected_digits):
            raise ValueError(
                f"corrected digits must be digits (spaces between lines), got {corrected_digits!r}"
            )

    prediction = session.get(Prediction, prediction_id)
    if prediction is None:
        raise NotFoundError(f"no prediction with id {prediction_id}")
    feedback = prediction.feedback
    if feedback is None:
        feedback = Feedback(created_at=now)
        prediction.feedback = feedback
    feedback.user_id = user_id
    feedback.correct = correct
    feedback.corrected_digits = corrected_digits
    feedback.updated_at = now
    _label_samples(prediction.samples, correct=correct, corrected_digits=corrected_digits)
    session.flush()
    return feedback


def _label_samples(samples: Sequence[DigitSample], *, correct: bool, corrected_digits: str | None) -> None:
    """Give each sample its true digit as the verdict tells it, or None where the verdict cannot."""
    if correct:
        labels: list[int | None] = [sample.predicted for sample in samples]
    elif corrected_digits is not None and len(corrected_digits.replace(" ", "")) == len(samples):
        labels = [int(digit) for digit in corrected_digits.replace(" ", "")]
    else:
        # Wrong without a correction, or a correction that split the digits differently from the
        # model: no sample can be matched to its true digit.
        labels = [None] * len(samples)
    for sample, label in zip(samples, labels, strict=True):
        sample.label = label


def labelled_samples(
    session: Session, *, since: datetime | None = None, per_digit_limit: int | None = None
) -> list[LabelledSample]:
    """The samples whose true digit is known, newest verdict first.

    `since` keeps samples whose verdict was given or changed at or after that time; `per_digit_limit`
    keeps at most that many of each digit (the newest), for a balanced retraining set.
    """
    if per_digit_limit is not None and per_digit_limit < 1:
        raise ValueError(f"per_digit_limit must be at least 1, got {per_digit_limit}")
    newest_first = (Feedback.updated_at.desc(), DigitSample.id.desc())
    columns = (DigitSample.id, DigitSample.pixels, DigitSample.label)
    if per_digit_limit is None:
        statement = _labelled(select(*columns), since).order_by(*newest_first)
    else:
        rank = func.row_number().over(partition_by=DigitSample.label, order_by=newest_first).label("rank")
        ranked = _labelled(select(DigitSample.id, Feedback.updated_at, rank), since).subquery()
        statement = (
            select(*columns)
            .join(ranked, ranked.c.id == DigitSample.id)
            .where(ranked.c.rank <= per_digit_limit)
            .order_by(ranked.c.updated_at.desc(), DigitSample.id.desc())
        )
    # _labelled keeps samples with a label only; the column itself is nullable, hence the filter's twin.
    return [
        LabelledSample(sample_id, pixels, label)
        for sample_id, pixels, label in session.execute(statement)
        if label is not None
    ]


def count_new_labelled_samples(session: Session, since: datetime | None = None) -> int:
    """How many samples got a known digit from verdicts given at or after `since` (all when None)."""
    return session.scalar(_labelled(select(func.count(DigitSample.id)), since)) or 0


def _labelled(statement: Select[*Row], since: datetime | None) -> Select[*Row]:
    """Restrict a select to samples with a known digit, joined to their feedback, verdicts since `since`."""
    statement = statement.join(Feedback, Feedback.prediction_id == DigitSample.prediction_id).where(
        DigitSample.label.is_not(None)
    )
    if since is not None:
        statement = statement.where(Feedback.updated_at >= _now(since))
    return statement


# --- Pending corrections -------------------------------------------------------------------------


def begin_correction(
    session: Session,
    *,
    channel: str,
    chat_id: str,
    user_id: str,
    prediction_id: int,
    answer_message_id: int,
    expires_at: datetime,
) -> None:
    """Remember that this person's next message in this chat is the right number for an answer."""
    channel = _member(Channel, channel, "channel")
    pending = session.get(PendingCorrection, (channel, chat_id, user_id))
    if pending is None:
        pending = PendingCorrection(channel=channel, chat_id=chat_id, user_id=user_id)
        session.add(pending)
    pending.prediction_id = prediction_id
    pending.answer_message_id = answer_message_id
    pending.expires_at = _now(expires_at)
    session.flush()


def pending_correction(
    session: Session, *, channel: str, chat_id: str, user_id: str, now: datetime | None = None
) -> PendingCorrectionView | None:
    """The answer this person is correcting in this chat, unless none is pending or it expired."""
    pending = session.get(PendingCorrection, (_member(Channel, channel, "channel"), chat_id, user_id))
    if pending is None or pending.expires_at <= _now(now):
        return None
    return PendingCorrectionView(
        prediction_id=pending.prediction_id, answer_message_id=pending.answer_message_id
    )


def end_correction(session: Session, *, channel: str, chat_id: str, user_id: str) -> None:
    """Forget a pending correction (it was given, or another verdict replaced it)."""
    pending = session.get(PendingCorrection, (_member(Channel, channel, "channel"), chat_id, user_id))
    if pending is not None:
        session.delete(pending)
        session.flush()


def purge_expired_corrections(session: Session, *, now: datetime | None = None) -> int:
    """Delete the pending corrections that expired; return how many."""
    result = cast(
        CursorResult[Any],
        session.execute(delete(PendingCorrection).where(PendingCorrection.expires_at <= _now(now))),
    )
    return result.rowcount


# --- Changes of the serving model by hand -------------------------------------------------------


def record_model_change(
    session: Session,
    *,
    kind: str,
    version: str,
    previous_version: str | None,
    requested_by: str,
    now: datetime | None = None,
) -> int:
    """Record that an admin made `version` serve instead of `previous_version`; return the record's id."""
    if version == previous_version:
        raise ValueError(f"{version!r} is already serving: nothing changed")
    change = ModelChange(
        created_at=_now(now),
        kind=_member(ModelChangeKind, kind, "kind"),
        version=version,
        previous_version=previous_version,
        requested_by=requested_by[:64],
    )
    session.add(change)
    session.flush()
    return change.id


def model_changes(session: Session, limit: int = 20) -> list[ModelChangeView]:
    """The last `limit` changes of the serving model by hand, newest first."""
    statement = select(ModelChange).order_by(ModelChange.id.desc()).limit(limit)
    return [ModelChangeView.from_row(row) for row in session.scalars(statement)]


# --- Statistics and retention ----------------------------------------------------------------------


def statistics(session: Session, *, now: datetime | None = None, recent_runs_limit: int = 5) -> Statistics:
    """The numbers /stats shows; "today" is the UTC calendar day of `now`."""
    now = _now(now)
    start_of_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today, last_7_days, total, users = session.execute(
        select(
            func.count().filter(Prediction.created_at >= start_of_today),
            func.count().filter(Prediction.created_at >= now - timedelta(days=7)),
            func.count(),
            func.count(distinct(Prediction.user_id)),
        ).select_from(Prediction)
    ).one()
    verdicts, right = session.execute(
        select(func.count(), func.count().filter(Feedback.correct.is_(True))).select_from(Feedback)
    ).one()

    confusion = [[0] * 10 for _ in range(10)]
    counts = select(DigitSample.label, DigitSample.predicted, func.count()).where(
        DigitSample.label.is_not(None)
    )
    for label, predicted, count in session.execute(counts.group_by(DigitSample.label, DigitSample.predicted)):
        if label is not None:  # the query keeps labelled samples only; this tells the type checker
            confusion[label][predicted] = count

    return Statistics(
        predictions_today=today,
        predictions_last_7_days=last_7_days,
        predictions_total=total,
        distinct_users=users,
        feedback_count=verdicts,
        judged_right=right,
        accuracy=right / verdicts if verdicts else None,
        labelled_samples=sum(map(sum, confusion)),
        confusion=confusion,
        current_model_version=current_model_version(session),
        recent_runs=recent_runs(session, limit=recent_runs_limit),
    )


def daily_usage(session: Session, *, days: int = 30, now: datetime | None = None) -> list[DailyUsage]:
    """Answers and verdicts per UTC day over the last `days` days, oldest first, days without any included.

    A verdict counts on the day of the answer it judges, so each day's accuracy is that of the
    answers the model gave that day.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    today = _now(now).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    day = _utc_day(session, Prediction.created_at)
    rows = session.execute(
        select(
            day.label("day"),
            func.count(Prediction.id),
            func.count(Feedback.id),
            func.count(Feedback.id).filter(Feedback.correct.is_(True)),
        )
        .outerjoin(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Prediction.created_at >= since)
        .group_by(literal_column("day"))
    )
    counted = {date.fromisoformat(str(row[0])[:10]): row[1:] for row in rows}
    usage = []
    for offset in range(days):
        current = first_day + timedelta(days=offset)
        predictions, verdicts, right = counted.get(current, (0, 0, 0))
        usage.append(DailyUsage(day=current, predictions=predictions, verdicts=verdicts, judged_right=right))
    return usage


def _utc_day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, in the database's own date function."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores the UTC instant as naive text


def purge_older_than(session: Session, days: int, *, now: datetime | None = None) -> int:
    """Delete predictions older than `days` days with their samples and feedback; return how many.

    Training runs and their epochs are kept: they hold no user data.
    """
    if days < 1:
        raise ValueError(f"retention must be at least 1 day, got {days}")
    cutoff = _now(now) - timedelta(days=days)
    old = select(Prediction.id).where(Prediction.created_at < cutoff)
    # Children first, explicitly, so purging works even on a connection without foreign-key cascades.
    session.execute(delete(DigitSample).where(DigitSample.prediction_id.in_(old)))
    session.execute(delete(Feedback).where(Feedback.prediction_id.in_(old)))
    result = cast(
        CursorResult[Any], session.execute(delete(Prediction).where(Prediction.created_at < cutoff))
    )
    return result.rowcount


# --- Helpers -----------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    """`now` in UTC (it must be timezone-aware), or the current UTC time."""
    if now is None:
        return utc_now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware datetime (UTC)")
    return now.astimezone(UTC)


def _member(enum_class: type[E], value: str, field: str) -> E:
    """The enum member for value, or a ValueError naming the values allowed."""
    try:
        return enum_class(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_class)
        raise ValueError(f"unknown {field} {value!r}; expected one of {allowed}") from None


def _runs() -> Select[TrainingRun]:
    """A select of runs that loads their epochs in the same round trip."""
    return select(TrainingRun).options(selectinload(TrainingRun.epochs))


def _run(session: Session, run_id: int) -> TrainingRun:
    """The run with this id, or NotFoundError."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFoundError(f"no training run with id {run_id}")
    return run
