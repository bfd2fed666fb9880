"""The training job a worker runs: the run the service recorded, trained and recorded to its end,
every event written to the run's stream for the service instances to follow (bot/core/run_stream.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import RunProgress
from bot.core.run_stream import STREAM_LENGTH, RunEnded, cancel_flag, ended_fields, message_fields, run_stream
from bot.core.training import progress_of
from bot.core.training_job import TrainingJob
from bot.settings import Settings, load_settings
from db import repository
from db.models import RunStatus
from db.session import make_engine, make_session_factory
from mnist_engine.training.events import EventMessage

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 1.0


def train_run(run_id: int, use_user_samples: bool) -> str:
    """Train run `run_id` (recorded as queued by the service); return how it ended."""
    settings = load_settings()
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    run = _start(sessions, run_id)
    if run is None:
        return "gone"  # cancelled, or marked interrupted, before a worker took it
    asyncio.run(_train(run, settings, sessions, use_user_samples))
    return run.status.value


def run_stopped(job: Any, connection: Any, *args: Any) -> None:
    """RQ's stop-job command killed the job (a cancel the run did not obey in time): record it."""
    _record_end(job.args[0], RunStatus.CANCELLED, None)


def run_failed(job: Any, connection: Any, kind: Any = None, error: Any = None, *args: Any) -> None:
    """The job itself broke (the work horse died): record the run as failed."""
    _record_end(job.args[0], RunStatus.FAILED, f"the worker's job broke: {error}")


def _start(sessions: sessionmaker[Session], run_id: int) -> RunProgress | None:
    with sessions.begin() as session:
        summary = repository.get_run(session, run_id)
        if summary is None or summary.status is not RunStatus.QUEUED:
            return None
        # RQ names the worker in its job's environment.
        worker = os.environ.get("RQ_WORKER_ID", str(os.getpid()))
        repository.mark_run_started(session, run_id, trainer=f"worker {worker}")
    run = progress_of(summary)
    run.status = RunStatus.RUNNING
    return run


async def _train(
    run: RunProgress, settings: Settings, sessions: sessionmaker[Session], use_user_samples: bool
) -> None:
    if settings.redis_url is None:
        raise RuntimeError("a worker needs REDIS_URL")
    redis = Redis.from_url(settings.redis_url)
    stream = run_stream(run.run_id)

    async def publish(message: EventMessage) -> None:
        await redis.xadd(stream, message_fields(message), maxlen=STREAM_LENGTH)

    async def nothing(run: RunProgress) -> None:
        """The worker shows nothing itself: the service instances relay the stream."""

    job = TrainingJob(
        run,
        settings,
        sessions,
        use_user_samples=use_user_samples,
        on_progress=nothing,
        on_message=publish,
        heartbeat_timeout=settings.run_heartbeat_timeout,
    )
    watcher = asyncio.create_task(_watch_for_cancel(redis, run.run_id, job))
    try:
        await job.execute()
    finally:
        watcher.cancel()
        await redis.xadd(stream, ended_fields(RunEnded.of(run)), maxlen=STREAM_LENGTH)
        await redis.aclose()


async def _watch_for_cancel(redis: Redis, run_id: int, job: TrainingJob) -> None:
    while not await redis.exists(cancel_flag(run_id)):
        await asyncio.sleep(CANCEL_POLL_SECONDS)
    logger.info("Run #%d: cancel asked for; stopping at the next batch", run_id)
    job.request_cancel()


def _record_end(run_id: int, status: RunStatus, error: str | None) -> None:
    settings = load_settings()
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    with sessions.begin() as session:
        summary = repository.get_run(session, run_id)
        if summary is None or summary.finished_at is not None:
            return
        repository.finish_run(session, run_id, status=status, error=error)

    async def publish() -> None:
        if settings.redis_url is None:
            return
        redis = Redis.from_url(settings.redis_url)
        await redis.xadd(run_stream(run_id), ended_fields(RunEnded(status, error)), maxlen=STREAM_LENGTH)
        await redis.aclose()

    asyncio.run(publish())
