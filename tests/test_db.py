"""The database layer on a real SQLite file and, when TEST_DATABASE_URL is set, a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import repository
from db.ids import stored_id
from db.models import (
    SAMPLE_BYTES,
    Base,
    DigitSample,
    EpochMetric,
    Feedback,
    Prediction,
    RunStatus,
    TrainingRun,
    include_in_autogenerate,
)
from db.session import current_revision, downgrade, head_revision, make_engine, make_session_factory, upgrade

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
TABLES = {
    "training_runs",
    "epoch_metrics",
    "predictions",
    "digit_samples",
    "feedback",
    "pending_corrections",
    "model_changes",
}
# A fixed "now" in the afternoon, so "today" and "the last 7 days" are unambiguous.
NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)


# --- Fixtures: one empty database per test, on each backend ------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new schema on the PostgreSQL server (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'bot.sqlite3'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL half skipped: set TEST_DATABASE_URL=postgresql+psycopg://user@host:5432/db")
    yield from _postgres_schema(POSTGRES_URL)


def _postgres_schema(server_url: str) -> Iterator[str]:
    """Create a throwaway schema, yield a URL whose connections use it, then drop it with everything in it."""
    schema = f"test_db_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the newest revision."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database; tests commit when they need a fresh read."""
    with make_session_factory(engine)() as session:
        yield session


def pixels(tag: int) -> bytes:
    """A recognisable 28×28 sample: every pixel is `tag`."""
    return bytes([tag % 256]) * SAMPLE_BYTES


def predict(
    session: Session,
    digits: str = "7",
    *,
    user: str = "user-1",
    at: datetime = NOW,
    tag: int = 0,
) -> int:
    """Record a prediction of `digits` whose samples are pixels(tag), pixels(tag + 1), ..."""
    read = digits.replace(" ", "")
    return repository.record_prediction(
        session,
        chat_id="chat-1",
        user_id=user,
        message_id=42,
        model_version="v1",
        digits=digits,
        confidences=[0.9] * len(read),
        latency_ms=12.5,
        source="photo",
        samples=[pixels(tag + position) for position in range(len(read))],
        now=at,
    )


def start(session: Session, **fields) -> int:
    """Start a running run with sensible defaults."""
    arguments = {
        "trigger": "manual",
        "requested_by": "admin",
        "architecture": "cnn",
        "parameters": {"epochs": 3},
    }
    return repository.start_run(session, **(arguments | fields))


def finished_run(session: Session, status: str = "succeeded", **fields) -> int:
    """A run that started and ended (runs one at a time: each ends before the next starts)."""
    run_id = start(session, **fields)
    repository.finish_run(session, run_id, status=status)
    return run_id


def labelled(session: Session, **filters) -> list[tuple[bytes, int]]:
    """The labelled samples as (pixels, digit) pairs."""
    return [(sample.pixels, sample.label) for sample in repository.labelled_samples(session, **filters)]


def count(session: Session, model: type[Base]) -> int:
    """How many rows a table holds."""
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- Migrations ------------------------------------------------------------------------------------


def test_migrations_create_every_table_and_downgrade_removes_them(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        assert current_revision(database_url) == head_revision()

        downgrade(database_url)
        inspect(engine).clear_cache()
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert current_revision(database_url) is None

        upgrade(database_url)
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


# SQLite cannot reflect the one-active-run index, and says so; include_in_autogenerate leaves it out.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_in_autogenerate}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_the_database_itself_refuses_unknown_enum_values(session: Session) -> None:
    run_id = start(session)
    session.commit()
    # Autogenerate does not compare CHECK constraints, so check that the migration made them.
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE training_runs SET status = 'paused' WHERE id = :id"), {"id": run_id})
    session.rollback()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'bot.sqlite3'}"
    engine = make_engine(url, busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    finally:
        engine.dispose()
    assert (tmp_path / "new" / "folder" / "bot.sqlite3").exists()


def test_timestamps_come_back_timezone_aware_in_utc(engine: Engine) -> None:
    factory = make_session_factory(engine)
    started = datetime(2026, 3, 14, 17, 30, tzinfo=timezone(timedelta(hours=2)))
    with factory.begin() as session:
        run_id = start(session, now=started)
    with factory() as session:
        run = repository.get_run(session, run_id)
    assert run is not None
    assert run.created_at == started
    assert run.created_at.tzinfo == UTC
    assert run.created_at.hour == 15


def test_naive_datetimes_are_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        start(session, now=datetime(2026, 3, 14, 15, 0))


# --- Training runs ---------------------------------------------------------------------------------


def test_a_run_records_its_epochs_and_its_result(session: Session) -> None:
    run_id = start(session, parameters={"epochs": 2, "batch_size": 128}, now=NOW)
    repository.record_epoch(
        session,
        run_id,
        epoch=1,
        loss=0.5,
        accuracy=0.85,
        val_loss=0.3,
        val_accuracy=0.91,
        learning_rate=1e-3,
        seconds=12.0,
    )
    repository.record_epoch(
        session,
        run_id,
        epoch=2,
        loss=0.2,
        accuracy=0.95,
        val_loss=0.25,
        val_accuracy=0.93,
        learning_rate=5e-4,
        seconds=11.0,
    )
    repository.finish_run(
        session,
        run_id,
        status="succeeded",
        test_accuracy=0.992,
        test_loss=0.03,
        model_version="v2",
        promoted=True,
        promotion_reason="beats v1 by 0.4 points",
        user_samples=120,
        now=NOW + timedelta(minutes=5),
    )
    session.commit()

    run = repository.get_run(session, run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.parameters == {"epochs": 2, "batch_size": 128}
    assert (run.epochs_done, run.best_val_accuracy) == (2, 0.93)
    assert (run.test_accuracy, run.model_version, run.promoted, run.user_samples) == (0.992, "v2", True, 120)
    assert run.started_at == NOW
    assert run.finished_at == NOW + timedelta(minutes=5)
    assert [epoch.epoch for epoch in run.epochs] == [1, 2]
    assert run.epochs[1].learning_rate == 5e-4
    assert repository.active_run(session) is None


def test_recording_an_epoch_again_updates_it(session: Session) -> None:
    run_id = start(session)
    repository.record_epoch(session, run_id, epoch=1, loss=0.9, accuracy=0.7, val_accuracy=0.99, seconds=3.0)
    repository.record_epoch(session, run_id, epoch=1, loss=0.4, accuracy=0.8, val_accuracy=0.88, seconds=4.0)
    session.commit()

    assert count(session, EpochMetric) == 1
    run = repository.get_run(session, run_id)
    assert run is not None
    assert (run.epochs[0].loss, run.epochs[0].seconds) == (0.4, 4.0)
    # The best accuracy follows the corrected epoch, not the value it replaced.
    assert (run.epochs_done, run.best_val_accuracy) == (1, 0.88)


def test_a_queued_run_is_active_until_it_starts_and_finishes(session: Session) -> None:
    run_id = start(session, status="queued", trigger="scheduled", requested_by=None)
    queued = repository.active_run(session)
    assert queued is not None
    assert (queued.id, queued.status, queued.started_at) == (run_id, RunStatus.QUEUED, None)

    repository.mark_run_started(session, run_id, now=NOW)
    running = repository.active_run(session)
    assert running is not None
    assert (running.status, running.started_at) == (RunStatus.RUNNING, NOW)
    with pytest.raises(ValueError, match="only a queued run can start"):
        repository.mark_run_started(session, run_id)

    repository.finish_run(session, run_id, status="cancelled")
    assert repository.active_run(session) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"trigger": "cron"},
            "unknown trigger 'cron'; expected one of 'manual', 'scheduled', 'first_run', 'command_line'",
        ),
        ({"status": "succeeded"}, "starts as 'queued' or 'running'"),
        ({"status": "paused"}, "unknown status 'paused'"),
    ],
    ids=["trigger", "finished-status", "unknown-status"],
)
def test_start_run_refuses_bad_values(session: Session, fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        start(session, **fields)


def test_finish_run_needs_a_final_status_and_an_existing_run(session: Session) -> None:
    run_id = start(session)
    with pytest.raises(ValueError, match="not 'running'"):
        repository.finish_run(session, run_id, status="running")
    with pytest.raises(repository.NotFoundError, match="no training run with id 999"):
        repository.finish_run(session, 999, status="failed")
    with pytest.raises(repository.NotFoundError):
        repository.record_epoch(session, 999, epoch=1, loss=1.0, accuracy=0.5, seconds=1.0)
    assert repository.get_run(session, 999) is None


def test_runs_left_unfinished_by_a_crash_are_marked_interrupted(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with factory.begin() as session:
        done = start(session, now=NOW - timedelta(hours=2))
        repository.finish_run(session, done, status="succeeded", now=NOW - timedelta(hours=1))
        running = start(session, now=NOW - timedelta(hours=1))

    # A new process: the one that started this run is gone.
    with factory.begin() as session:
        assert repository.mark_interrupted_runs(session, now=NOW) == 1
    with factory() as session:
        run = repository.get_run(session, running)
        assert run is not None
        assert (run.status, run.finished_at) == (RunStatus.INTERRUPTED, NOW)
        assert run.error is not None and "restarted" in run.error
        finished = repository.get_run(session, done)
        assert finished is not None and finished.status is RunStatus.SUCCEEDED
        assert repository.active_run(session) is None
        assert repository.mark_interrupted_runs(session, now=NOW) == 0


def test_only_runs_without_a_recent_heartbeat_are_interrupted_when_asked(session: Session) -> None:
    run_id = start(session, now=NOW - timedelta(hours=3))
    repository.record_epoch(session, run_id, epoch=1, loss=0.3, accuracy=0.9, seconds=60.0, now=NOW)
    stale_after = timedelta(minutes=30)
    assert repository.mark_interrupted_runs(session, stale_after=stale_after, now=NOW) == 0
    assert (
        repository.mark_interrupted_runs(session, stale_after=stale_after, now=NOW + timedelta(hours=1)) == 1
    )
    session.commit()
    assert repository.active_run(session) is None


def test_the_database_holds_one_active_run_at_a_time(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with factory.begin() as session:
        first = start(session)
    # Another process (another session, another connection) tries to start one too.
    with factory.begin() as session, pytest.raises(repository.RunInProgressError):
        start(session, trigger="scheduled", requested_by=None)
    with factory.begin() as session, pytest.raises(repository.RunInProgressError):
        start(session, status="queued")
    with factory.begin() as session:
        # The refused run left the transaction usable, and nothing of it behind.
        assert [run.id for run in repository.recent_runs(session)] == [first]
        repository.finish_run(session, first, status="succeeded")
        second = start(session)
    assert second != first


def test_recent_runs_are_newest_first_with_their_epochs(session: Session) -> None:
    run_ids = [finished_run(session) for _ in range(3)] + [start(session)]
    repository.record_epoch(session, run_ids[-1], epoch=1, loss=0.3, accuracy=0.9, seconds=2.0)
    runs = repository.recent_runs(session, limit=3)
    assert [run.id for run in runs] == run_ids[:0:-1]
    assert len(runs[0].epochs) == 1
    assert runs[1].epochs == ()


def test_model_history_lists_promoted_runs_up_to_a_version(session: Session) -> None:
    for version, promoted in [("v1", True), ("v2", False), ("v3", True), ("v4", True)]:
        run_id = start(session)
        repository.finish_run(session, run_id, status="succeeded", model_version=version, promoted=promoted)

    assert [run.model_version for run in repository.model_history(session, "v3")] == ["v1", "v3"]
    assert [run.model_version for run in repository.model_history(session)] == ["v1", "v3", "v4"]
    assert repository.model_history(session, "v2") == []
    assert repository.current_model_version(session) == "v4"


# --- Predictions and feedback ----------------------------------------------------------------------


def test_a_prediction_keeps_one_sample_per_digit_in_reading_order(session: Session) -> None:
    prediction_id = repository.record_prediction(
        session,
        chat_id="chat-9",
        user_id="user-9",
        message_id=2**40,
        model_version="v3",
        digits="12 3",
        confidences=[0.91, 0.52, 0.99],
        latency_ms=48.0,
        source="file",
        samples=[pixels(10), pixels(20), pixels(30)],
        now=NOW,
    )
    session.commit()
    session.expire_all()

    prediction = session.get(Prediction, prediction_id)
    assert prediction is not None
    assert (prediction.digits, prediction.message_id, prediction.source) == ("12 3", 2**40, "file")
    assert prediction.created_at == NOW
    rows = [
        (sample.position, sample.predicted, sample.confidence, sample.pixels) for sample in prediction.samples
    ]
    assert rows == [(0, 1, 0.91, pixels(10)), (1, 2, 0.52, pixels(20)), (2, 3, 0.99, pixels(30))]
    assert all(sample.label is None for sample in prediction.samples)


def test_a_prediction_without_digits_has_no_samples(session: Session) -> None:
    prediction_id = predict(session, "")
    assert session.get(Prediction, prediction_id).samples == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"samples": [pixels(1), b"\x00" * 783]}, "sample 1 has 783 bytes; a 28×28 grey sample has 784"),
        ({"samples": [pixels(1)]}, "2 digits read .* but 1 samples and 2 confidences"),
        ({"confidences": [0.5]}, "but 2 samples and 1 confidences"),
        ({"confidences": [0.5, 1.5]}, r"confidence 1 is 1.5; confidences lie in \[0, 1\]"),
        ({"digits": "4x"}, "digits must be digits"),
        ({"digits": "4  2"}, "digits must be digits"),
        ({"source": "sticker"}, "unknown source 'sticker'; expected one of 'photo', 'file'"),
    ],
    ids=[
        "short-sample",
        "too-few-samples",
        "too-few-confidences",
        "confidence-above-1",
        "letter",
        "double-space",
        "source",
    ],
)
def test_record_prediction_refuses_inconsistent_input(session: Session, changes: dict, message: str) -> None:
    arguments = {
        "chat_id": "c",
        "user_id": "u",
        "message_id": 1,
        "model_version": "v1",
        "digits": "42",
        "confidences": [0.5, 0.5],
        "latency_ms": 1.0,
        "source": "photo",
        "samples": [pixels(1), pixels(2)],
    }
    with pytest.raises(ValueError, match=message):
        repository.record_prediction(session, **(arguments | changes))
    assert count(session, Prediction) == 0


def test_a_right_verdict_labels_each_sample_with_the_digit_read(session: Session) -> None:
    prediction_id = predict(session, "12 3", tag=10)
    feedback = repository.record_feedback(session, prediction_id, user_id="user-1", correct=True, now=NOW)
    assert (feedback.correct, feedback.corrected_digits) == (True, None)
    assert labelled(session) == [(pixels(12), 3), (pixels(11), 2), (pixels(10), 1)]


def test_a_correction_labels_each_sample_with_the_corrected_digit(session: Session) -> None:
    prediction_id = predict(session, "12 3", tag=10)
    feedback = repository.record_feedback(
        session, prediction_id, user_id="user-1", correct=False, corrected_digits="17\n3", now=NOW
    )
    assert feedback.corrected_digits == "17 3"
    assert sorted(labelled(session), key=lambda pair: pair[0]) == [
        (pixels(10), 1),
        (pixels(11), 7),
        (pixels(12), 3),
    ]


def test_a_correction_with_a_different_digit_count_labels_nothing(session: Session) -> None:
    prediction_id = predict(session, "12", tag=10)
    repository.record_feedback(
        session, prediction_id, user_id="user-1", correct=False, corrected_digits="128"
    )
    assert count(session, Feedback) == 1
    assert labelled(session) == []
    assert repository.count_new_labelled_samples(session) == 0


def test_a_new_verdict_replaces_the_old_one(session: Session) -> None:
    prediction_id = predict(session, "12", tag=10)
    first = repository.record_feedback(session, prediction_id, user_id="user-1", correct=True, now=NOW)
    later = NOW + timedelta(minutes=2)
    second = repository.record_feedback(
        session, prediction_id, user_id="user-1", correct=False, corrected_digits="13", now=later
    )
    session.commit()

    assert count(session, Feedback) == 1
    assert second.id == first.id
    assert (second.correct, second.corrected_digits) == (False, "13")
    assert (second.created_at, second.updated_at) == (NOW, later)
    assert sorted(labelled(session)) == [(pixels(10), 1), (pixels(11), 3)]

    # "Wrong" without the true digits takes the labels away again.
    repository.record_feedback(session, prediction_id, user_id="user-1", correct=False)
    assert labelled(session) == []


@pytest.mark.parametrize(
    ("verdict", "message"),
    [
        ({"correct": True, "corrected_digits": "12"}, "takes no corrected digits"),
        ({"correct": False, "corrected_digits": "1O"}, "corrected digits must be digits"),
        ({"correct": False, "corrected_digits": "  "}, "corrected digits must be digits"),
    ],
    ids=["right-with-digits", "letter-o", "blank"],
)
def test_record_feedback_refuses_bad_verdicts(session: Session, verdict: dict, message: str) -> None:
    prediction_id = predict(session, "12")
    with pytest.raises(ValueError, match=message):
        repository.record_feedback(session, prediction_id, user_id="user-1", **verdict)
    assert count(session, Feedback) == 0


def test_feedback_on_an_unknown_prediction_is_an_error(session: Session) -> None:
    with pytest.raises(repository.NotFoundError, match="no prediction with id 12345"):
        repository.record_feedback(session, 12345, user_id="user-1", correct=True)


def test_labelled_samples_since_a_date_and_balanced_per_digit(session: Session) -> None:
    # Six one-digit predictions judged right one minute apart: three 3s, two 5s and an 8.
    for minute, digit in enumerate([3, 5, 3, 8, 3, 5]):
        prediction_id = predict(session, str(digit), tag=minute)
        repository.record_feedback(
            session, prediction_id, user_id="user-1", correct=True, now=NOW + timedelta(minutes=minute)
        )
    session.commit()

    everything = labelled(session)
    assert everything == [
        (pixels(tag), digit) for tag, digit in reversed(list(enumerate([3, 5, 3, 8, 3, 5])))
    ]

    balanced = labelled(session, per_digit_limit=2)
    assert balanced == [(pixels(5), 5), (pixels(4), 3), (pixels(3), 8), (pixels(2), 3), (pixels(1), 5)]

    since = NOW + timedelta(minutes=3)
    assert labelled(session, since=since) == [
        (pixels(5), 5),
        (pixels(4), 3),
        (pixels(3), 8),
    ]
    assert labelled(session, since=since, per_digit_limit=1) == [
        (pixels(5), 5),
        (pixels(4), 3),
        (pixels(3), 8),
    ]
    assert repository.count_new_labelled_samples(session, since) == 3
    assert repository.count_new_labelled_samples(session) == 6
    with pytest.raises(ValueError, match="per_digit_limit must be at least 1"):
        labelled(session, per_digit_limit=0)


def test_ids_are_stored_as_they_are_or_as_keyed_hashes() -> None:
    assert stored_id(123456789) == "123456789"
    hashed = stored_id(123456789, secret="pepper")
    assert hashed == stored_id("123456789", secret="pepper")
    assert hashed != stored_id(123456789, secret="salt")
    assert len(hashed) == 64 and "123456789" not in hashed


# --- Statistics and retention ----------------------------------------------------------------------


def test_statistics_of_a_small_known_history(session: Session) -> None:
    today = predict(session, "12", user="ann", at=NOW - timedelta(hours=2), tag=10)
    also_today = predict(session, "7", user="bob", at=NOW.replace(hour=0, minute=5), tag=20)
    yesterday = predict(session, "4", user="ann", at=NOW - timedelta(hours=16), tag=30)
    predict(session, "9", user="cat", at=NOW - timedelta(days=6), tag=40)
    predict(session, "0", user="ann", at=NOW - timedelta(days=8), tag=50)

    repository.record_feedback(session, today, user_id="ann", correct=False, corrected_digits="17")
    repository.record_feedback(session, also_today, user_id="bob", correct=True)
    repository.record_feedback(session, yesterday, user_id="ann", correct=False)
    run_id = start(session)
    repository.finish_run(session, run_id, status="succeeded", model_version="v7", promoted=True)
    session.commit()

    stats = repository.statistics(session, now=NOW)
    assert (stats.predictions_today, stats.predictions_last_7_days, stats.predictions_total) == (2, 4, 5)
    assert stats.distinct_users == 3
    assert (stats.feedback_count, stats.judged_right) == (3, 1)
    assert stats.accuracy == pytest.approx(1 / 3)
    # Known digits: 1 read as 1, 7 read as 2 (the correction), 7 read as 7; "wrong" alone labels nothing.
    assert stats.labelled_samples == 3
    assert stats.confusion[1][1] == 1
    assert stats.confusion[7][2] == 1
    assert stats.confusion[7][7] == 1
    assert sum(map(sum, stats.confusion)) == 3
    assert stats.current_model_version == "v7"
    assert [run.id for run in stats.recent_runs] == [run_id]


def test_statistics_of_an_empty_database(session: Session) -> None:
    stats = repository.statistics(session, now=NOW)
    assert (stats.predictions_total, stats.distinct_users, stats.feedback_count) == (0, 0, 0)
    assert stats.accuracy is None
    assert stats.confusion == [[0] * 10 for _ in range(10)]
    assert (stats.current_model_version, stats.recent_runs) == (None, [])


def test_daily_usage_counts_each_days_answers_and_verdicts(session: Session) -> None:
    two_days_ago = NOW - timedelta(days=2)
    right = predict(session, "1", user="ann", at=two_days_ago.replace(hour=0, minute=1))
    wrong = predict(session, "2", user="bob", at=two_days_ago.replace(hour=23, minute=59), tag=5)
    predict(session, "3", user="ann", at=two_days_ago, tag=9)
    today = predict(session, "4", user="cat", at=NOW, tag=13)
    predict(session, "5", user="cat", at=NOW - timedelta(days=40), tag=17)  # before the window
    repository.record_feedback(session, right, user_id="ann", correct=True)
    repository.record_feedback(session, wrong, user_id="bob", correct=False, corrected_digits="7")
    repository.record_feedback(session, today, user_id="cat", correct=True)
    session.commit()

    usage = repository.daily_usage(session, days=7, now=NOW)
    assert [day.day for day in usage] == [NOW.date() - timedelta(days=6 - offset) for offset in range(7)]
    by_day = {day.day: (day.predictions, day.verdicts, day.judged_right) for day in usage}
    assert by_day[two_days_ago.date()] == (3, 2, 1)
    assert by_day[NOW.date()] == (1, 1, 1)
    assert sum(day.predictions for day in usage) == 4
    assert usage[0].accuracy is None and usage[-1].accuracy == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        repository.daily_usage(session, days=0)


def test_changes_of_the_serving_model_are_recorded_newest_first(session: Session) -> None:
    first = repository.record_model_change(
        session, kind="promote", version="v2", previous_version="v1", requested_by="admin", now=NOW
    )
    second = repository.record_model_change(
        session,
        kind="roll_back",
        version="v1",
        previous_version="v2",
        requested_by="admin",
        now=NOW + timedelta(minutes=5),
    )
    session.commit()
    changes = repository.model_changes(session)
    assert [change.id for change in changes] == [second, first]
    assert (changes[0].kind, changes[0].version, changes[0].previous_version) == ("roll_back", "v1", "v2")
    assert changes[1].created_at == NOW
    with pytest.raises(ValueError, match="already serving"):
        repository.record_model_change(
            session, kind="promote", version="v1", previous_version="v1", requested_by="admin"
        )
    with pytest.raises(ValueError, match="unknown kind"):
        repository.record_model_change(
            session, kind="swap", version="v3", previous_version="v1", requested_by="admin"
        )
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE model_changes SET kind = 'swap' WHERE id = :id"), {"id": first})
    session.rollback()


def test_purge_deletes_old_predictions_with_their_samples_and_feedback(session: Session) -> None:
    old = predict(session, "123", at=NOW - timedelta(days=31))
    repository.record_feedback(session, old, user_id="user-1", correct=True)
    recent = predict(session, "45", at=NOW - timedelta(days=29))
    repository.record_feedback(session, recent, user_id="user-1", correct=True)
    run_id = start(session, now=NOW - timedelta(days=100))
    repository.record_epoch(session, run_id, epoch=1, loss=0.1, accuracy=0.9, seconds=1.0)
    session.commit()

    assert repository.purge_older_than(session, 30, now=NOW) == 1
    session.commit()
    session.expire_all()

    assert session.scalars(select(Prediction.id)).all() == [recent]
    assert count(session, DigitSample) == 2
    assert session.scalars(select(Feedback.prediction_id)).all() == [recent]
    assert (count(session, TrainingRun), count(session, EpochMetric)) == (1, 1)
    with pytest.raises(ValueError, match="at least 1 day"):
        repository.purge_older_than(session, 0)


# --- Command line ----------------------------------------------------------------------------------


def run_cli(
    *arguments: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m db ...` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "db", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env=(os.environ | env) if env else None,
        cwd=cwd,
    )


def test_cli_upgrades_purges_and_downgrades(database_url: str) -> None:
    upgraded = run_cli("upgrade", "--url", database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"at revision {head_revision()} (latest)" in upgraded.stdout
    assert current_revision(database_url) == head_revision()

    purged = run_cli("purge", "--days", "30", "--url", database_url)
    assert purged.returncode == 0, purged.stderr
    assert "deleted 0 predictions older than 30 days" in purged.stdout

    downgraded = run_cli("downgrade", "--revision", "base", "--url", database_url)
    assert downgraded.returncode == 0, downgraded.stderr
    assert current_revision(database_url) is None


def test_cli_acts_on_the_services_database_as_dot_env_sets_it(tmp_path: Path) -> None:
    # The operator moved the data folder in .env; the bot keeps its database there, so must the CLI.
    (tmp_path / ".env").write_text("MNIST_DATA_DIR=service-data\n")
    environment = {
        name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "MNIST_DATA_DIR")
    }
    result = subprocess.run(
        [sys.executable, "-m", "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "service-data" / "bot.sqlite3").exists()
    assert not (tmp_path / "data").exists()


def test_cli_reads_the_url_from_database_url(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.sqlite3'}"
    result = run_cli("upgrade", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert current_revision(url) == head_revision()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bogus://", "db: error: cannot use database URL 'bogus://': Can't load plugin"),
        ("not a url", "db: error: cannot use database URL 'not a url': Could not parse"),
        (
            "postgresql+psycopg://user:secret@127.0.0.1:1/db",
            "db: error: database 'postgresql+psycopg://user:***@",
        ),
    ],
    ids=["unknown-dialect", "unparsable", "unreachable-server"],
)
def test_cli_reports_a_bad_url_in_one_line(url: str, message: str) -> None:
    result = run_cli("upgrade", "--url", url)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "secret" not in result.stderr


def test_runs_whose_heartbeat_ran_out_are_interrupted_and_named(session: Session) -> None:
    running = start(session, now=NOW - timedelta(minutes=10))
    repository.record_epoch(session, running, epoch=1, loss=0.3, accuracy=0.9, seconds=5.0, now=NOW)
    limits = {"running_for": timedelta(seconds=60), "queued_for": timedelta(minutes=30)}
    assert repository.interrupt_stale_runs(session, now=NOW + timedelta(seconds=30), **limits) == []
    assert repository.interrupt_stale_runs(session, now=NOW + timedelta(seconds=90), **limits) == [running]
    run = repository.get_run(session, running)
    assert run is not None and run.status is RunStatus.INTERRUPTED and "heartbeat" in (run.error or "")
    # A queued run waits longer for a worker to take it.
    queued = start(session, status="queued", now=NOW)
    assert repository.interrupt_stale_runs(session, now=NOW + timedelta(minutes=5), **limits) == []
    assert repository.interrupt_stale_runs(session, now=NOW + timedelta(minutes=31), **limits) == [queued]


def test_an_instance_starting_up_marks_only_the_runs_it_was_training(session: Session) -> None:
    ours = start(session, trainer="instance-a")
    assert repository.mark_interrupted_runs(session, trainer="instance-b", now=NOW) == 0
    assert repository.get_run(session, ours).status is RunStatus.RUNNING  # type: ignore[union-attr]
    assert repository.mark_interrupted_runs(session, trainer="instance-a", now=NOW) == 1
    # A queued run waits for a worker whichever instance restarts; a worker's run is the worker's.
    queued = start(session, status="queued")
    assert repository.mark_interrupted_runs(session, trainer="instance-a", now=NOW) == 0
    repository.mark_run_started(session, queued, trainer="worker gpu-1")
    assert repository.mark_interrupted_runs(session, trainer="instance-a", now=NOW) == 0
    assert repository.get_run(session, queued).trainer == "worker gpu-1"  # type: ignore[union-attr]


def test_instances_starting_together_migrate_once(database_url: str) -> None:
    """Two processes migrating an empty database at once: one migrates, the other finds it done."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the migration lock is PostgreSQL's; SQLite's file lock does the same")
    results = []

    def migrate() -> None:
        results.append(run_cli("upgrade", "--url", database_url))

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [result.returncode for result in results] == [0, 0, 0], [result.stderr for result in results]
    assert current_revision(database_url) == head_revision()
