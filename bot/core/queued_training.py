"""Runs trained on workers through Redis Queue (TRAINING_BACKEND=rq): the service's side.

The service records a run (queued), puts a job on the `training` queue and announces the run;
a worker (`python -m bot.worker`, bot/worker/) trains it and writes every event to the run's
stream (bot/core/run_stream.py). Every instance follows the stream, so each knows how far the run
is; the one that leads relays it to the admins. A cancel is a flag the worker watches, then, if
the worker does not stop in time, RQ's stop-job command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError

from bot.core.leadership import STOP_SECONDS, Leadership
from bot.core.progress import ProgressHub, RunProgress
from bot.core.run_stream import (
    CANCEL_SECONDS,
    RUNS_STREAM,
    STREAM_LENGTH,
    RunEnded,
    StreamAnswer,
    apply_entry,
    cancel_flag,
    ended_fields,
    run_stream,
)

logger = logging.getLogger(__name__)

TRAINING_QUEUE = "training"
JOB_FUNCTION = "bot.worker.jobs.train_run"
JOB_TIMEOUT_SECONDS = 24 * 3600  # the reference CNN on a slow CPU; a GPU worker needs minutes
HARD_STOP_SECONDS = 30.0  # a cancelled run that has not stopped by then is stopped by RQ
READ_BLOCK_MS = 1000


def job_id(run_id: int) -> str:
    """The RQ job of a run."""
    return f"training-run-{run_id}"


class QueuedTraining:
    """Enqueues runs, follows them on their streams, relays them when this instance leads."""

    def __init__(self, redis_url: str, admins: ProgressHub, leadership: Leadership) -> None:
        self.redis = Redis.from_url(redis_url)
        self._sync_redis = SyncRedis.from_url(redis_url)
        self.admins = admins
        self.leadership = leadership
        self._hard_stops: set[asyncio.Task[None]] = set()

    async def enqueue(self, run_id: int, use_user_samples: bool) -> None:
        """Put the run's job on the queue and tell every instance about it."""

        def put() -> None:
            Queue(TRAINING_QUEUE, connection=self._sync_redis).enqueue_call(
                JOB_FUNCTION,
                args=(run_id, use_user_samples),
                job_id=job_id(run_id),
                timeout=JOB_TIMEOUT_SECONDS,
                failure_ttl=7 * 24 * 3600,
                on_stopped=Callback("bot.worker.jobs.run_stopped"),
                on_failure=Callback("bot.worker.jobs.run_failed"),
            )

        await asyncio.to_thread(put)
        await self.redis.xadd(RUNS_STREAM, {"run_id": str(run_id)}, maxlen=STREAM_LENGTH)

    async def follow(self, run: RunProgress) -> bytes | None:
        """Follow a run's stream to its end; relay each state to the admins while leading."""
        key, last_id = run_stream(run.run_id), b"0-0"
        while True:
            try:
                answer = cast(
                    StreamAnswer, await self.redis.xread({key: last_id}, block=READ_BLOCK_MS, count=100)
                )
            except (RedisError, OSError) as error:
                logger.warning("Cannot read run #%d's events (%s); retrying", run.run_id, error)
                await asyncio.sleep(1.0)
                continue
            for _, entries in answer:
                for entry_id, fields in entries:
                    last_id = entry_id
                    if apply_entry(run, fields):
                        return _curves(run)
                    await self.admins.progress(run, leading=self.leadership.is_leader)

    async def request_cancel(self, run_id: int, still_running: Callable[[], bool]) -> None:
        """Ask the worker to stop at its next batch; stop the job outright if it has not by then."""
        await self.redis.set(cancel_flag(run_id), "1", ex=CANCEL_SECONDS)
        stop = asyncio.create_task(self._hard_stop(run_id, still_running), name=f"hard-stop-run-{run_id}")
        self._hard_stops.add(stop)  # kept until done: the loop holds only weak references to tasks
        stop.add_done_callback(self._hard_stops.discard)

    async def announcements(self, on_run: Callable[[int], Awaitable[None]]) -> None:
        """Call `on_run` for each run announced from now on (other instances' runs too)."""
        last_id = b"$"
        while True:
            try:
                answer = cast(
                    StreamAnswer, await self.redis.xread({RUNS_STREAM: last_id}, block=READ_BLOCK_MS)
                )
            except (RedisError, OSError):
                await asyncio.sleep(1.0)
                continue
            for _, entries in answer:
                for entry_id, fields in entries:
                    last_id = entry_id
                    await on_run(int(fields[b"run_id"]))

    async def publish_end(self, run: RunProgress) -> None:
        """Close a run's stream for it (its worker died): followers stop, the leader tells the admins."""
        await self.redis.xadd(run_stream(run.run_id), ended_fields(RunEnded.of(run)), maxlen=STREAM_LENGTH)

    async def close(self) -> None:
        """Close the Redis connections, giving up on the asynchronous ones after STOP_SECONDS."""
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await self.redis.aclose()
        except TimeoutError:
            logger.warning(
                "Redis did not close within %.0f s; its connections end with the process", STOP_SECONDS
            )
        self._sync_redis.close()

    async def _hard_stop(self, run_id: int, still_running: Callable[[], bool]) -> None:
        await asyncio.sleep(HARD_STOP_SECONDS)
        if not still_running():
            return
        logger.warning("Run #%d did not stop in %.0f s; stopping its job", run_id, HARD_STOP_SECONDS)
        with contextlib.suppress(NoSuchJobError, InvalidJobOperation, RedisError):
            await asyncio.to_thread(send_stop_job_command, self._sync_redis, job_id(run_id))


def _curves(run: RunProgress) -> bytes | None:
    """The finished run's curves, from its version on the shared models volume."""
    if run.report is None or not run.report.model_path:
        return None
    curves = Path(run.report.model_path) / "curves.png"
    return curves.read_bytes() if curves.exists() else None
