"""Two processes, like the bot and the trainer, writing to one SQLite file at the same time."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

from sqlalchemy import func, select

from db import repository
from db.models import SAMPLE_BYTES, EpochMetric, Feedback, Prediction, RunStatus
from db.session import SQLITE_BUSY_TIMEOUT_MS, make_engine, make_session_factory, upgrade

ROWS = 200


def write_rows(url: str, name: str, rows: int, start_together: Barrier, busy_timeout_ms: int) -> None:
    """Write `rows` predictions and verdicts (the trainer: a run's epochs too), one transaction each."""
    engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
    factory = make_session_factory(engine)
    run_id = None
    if name == "trainer":
        with factory.begin() as session:
            run_id = repository.start_run(
                session,
                trigger="command_line",
                requested_by=name,
                architecture="cnn",
                parameters={"writer": name},
            )
    start_together.wait(timeout=60)
    for index in range(rows):
        with factory.begin() as session:
            prediction_id = repository.record_prediction(
                session,
                chat_id=name,
                user_id=name,
                message_id=index,
                model_version="v1",
                digits="42",
                confidences=[0.9, 0.8],
                latency_ms=1.0,
                source="photo",
                samples=[bytes(SAMPLE_BYTES), bytes(SAMPLE_BYTES)],
            )
        # Reads, then writes: the pattern that fails at once without a busy timeout.
        with factory.begin() as session:
            repository.record_feedback(session, prediction_id, user_id=name, correct=index % 2 == 0)
        if run_id is not None:
            with factory.begin() as session:
                repository.record_epoch(
                    session, run_id, epoch=index + 1, loss=0.1, accuracy=0.9, seconds=0.01
                )
    if run_id is not None:
        with factory.begin() as session:
            repository.finish_run(session, run_id, status="succeeded")
    engine.dispose()


def run_writers(url: str, busy_timeout_ms: int) -> list[int | None]:
    """Run two writer processes at once and return their exit codes."""
    context = multiprocessing.get_context("spawn")
    start_together = context.Barrier(2)
    writers = [
        context.Process(target=write_rows, args=(url, name, ROWS, start_together, busy_timeout_ms))
        for name in ("bot", "trainer")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    return [writer.exitcode for writer in writers]


def test_two_processes_write_to_one_sqlite_file_at_once(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    upgrade(url)

    assert run_writers(url, SQLITE_BUSY_TIMEOUT_MS) == [0, 0]

    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        per_chat = dict(
            session.execute(select(Prediction.chat_id, func.count()).group_by(Prediction.chat_id)).all()
        )
        assert per_chat == {"bot": ROWS, "trainer": ROWS}
        assert session.scalar(select(func.count()).select_from(Feedback)) == 2 * ROWS
        assert session.scalar(select(func.count()).select_from(EpochMetric)) == ROWS
        runs = repository.recent_runs(session)
        assert [(run.requested_by, run.status, run.epochs_done) for run in runs] == [
            ("trainer", RunStatus.SUCCEEDED, ROWS)
        ]
    engine.dispose()
