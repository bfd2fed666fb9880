"""Time the bot's writes and the /stats and retraining reads on a throwaway database; print a table.

python -m db.benchmark                                    # a temporary SQLite file
python -m db.benchmark --url postgresql+psycopg://postgres@127.0.0.1:5432/test
                                                          # a temporary schema, dropped afterwards
"""

from __future__ import annotations

import argparse
import statistics as stats
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db import repository
from db.models import SAMPLE_BYTES, utc_now
from db.session import make_engine, make_session_factory, upgrade

DIGITS_PER_PREDICTION = 3


def main() -> None:
    """Parse the arguments, run the benchmark on each database and print the results."""
    parser = argparse.ArgumentParser(prog="python -m db.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", action="append", help="a server to benchmark too (a temporary schema is used)"
    )
    parser.add_argument("--predictions", type=int, default=2000, help="predictions to write (default 2000)")
    args = parser.parse_args()

    print(f"{'backend':<11} {'operation':<50} {'count':>6} {'total s':>8} {'ms each':>8}")
    with temporary_sqlite() as url:
        benchmark(url, args.predictions)
    for server in args.url or []:
        with temporary_postgres_schema(server) as url:
            benchmark(url, args.predictions)


def benchmark(url: str, predictions: int) -> None:
    """Write predictions and verdicts one transaction each, then time the reads over them."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    backend = engine.dialect.name
    now = utc_now()
    sample = bytes(range(256)) * 3 + bytes(SAMPLE_BYTES - 768)

    prediction_ids: list[int] = []

    def write_prediction(index: int) -> None:
        with factory.begin() as session:
            prediction_id = repository.record_prediction(
                session,
                chat_id="chat",
                user_id=f"user-{index % 50}",
                message_id=index,
                model_version="v1",
                digits=f"{index % 10}{(index + 3) % 10}{(index + 7) % 10}",
                confidences=[0.9] * DIGITS_PER_PREDICTION,
                latency_ms=20.0,
                source="photo",
                samples=[sample] * DIGITS_PER_PREDICTION,
                # Spread over 60 days so that the purge has something to delete.
                now=now - timedelta(days=60 * index / predictions),
            )
        prediction_ids.append(prediction_id)

    def write_feedback(index: int) -> None:
        with factory.begin() as session:
            repository.record_feedback(session, prediction_ids[index], user_id="user", correct=index % 3 != 0)

    def read(operation: Callable[[Session], object]) -> Callable[[int], None]:
        def run(_: int) -> None:
            with factory() as session:
                operation(session)

        return run

    def purge(_: int) -> None:
        with factory.begin() as session:
            repository.purge_older_than(session, 30, now=now)

    rows = [
        (
            f"record_prediction ({DIGITS_PER_PREDICTION} samples), 1 per transaction",
            write_prediction,
            predictions,
        ),
        ("record_feedback, 1 per transaction", write_feedback, predictions),
        ("statistics()", read(lambda session: repository.statistics(session, now=now)), 20),
        ("labelled_samples() (all)", read(repository.labelled_samples), 5),
        (
            "labelled_samples(per_digit_limit=100)",
            read(lambda session: repository.labelled_samples(session, per_digit_limit=100)),
            5,
        ),
        (
            "count_new_labelled_samples(last 7 days)",
            read(lambda session: repository.count_new_labelled_samples(session, now - timedelta(days=7))),
            20,
        ),
        ("purge_older_than(30 days): half the rows", purge, 1),
    ]
    for name, operation, repeats in rows:
        seconds = [_timed(operation, index) for index in range(repeats)]
        each_ms = stats.median(seconds) * 1000
        print(f"{backend:<11} {name:<50} {repeats:>6} {sum(seconds):>8.2f} {each_ms:>8.2f}")
    engine.dispose()


def _timed(operation: Callable[[int], None], index: int) -> float:
    """Seconds one call of operation takes."""
    started = time.perf_counter()
    operation(index)
    return time.perf_counter() - started


@contextmanager
def temporary_sqlite() -> Iterator[str]:
    """A migrated SQLite file in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'benchmark.sqlite3'}"
        upgrade(url)
        yield url


@contextmanager
def temporary_postgres_schema(server_url: str) -> Iterator[str]:
    """A migrated, temporary schema on a PostgreSQL server, dropped afterwards."""
    schema = f"benchmark_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        upgrade(rendered)
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
