"""What the service does by the clock: retraining on users' corrections, retention, expired corrections.

APScheduler 3 runs the jobs on the service's event loop, whichever front ends are running.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import ProgressHub
from bot.core.texts import say
from bot.core.training import TrainingBusyError, TrainingRequest, TrainingSupervisor
from bot.settings import Settings
from db import repository
from db.models import RunTrigger

logger = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 6 * 3600  # a service that was down at the scheduled time still retrains later
RETRAIN_LOCK = "digitbot:schedule:retraining"


class Schedule:
    """The service's clock-driven jobs."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        trainer: TrainingSupervisor,
        admins: ProgressHub,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.trainer = trainer
        self.admins = admins
        self.scheduler = AsyncIOScheduler(timezone=settings.retrain_timezone)

    def start(self) -> None:
        """Add the jobs and start the clock (on the running event loop)."""
        self.scheduler.add_job(
            self.retrain,
            trigger=self.settings.retrain_trigger(),
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,  # several missed runs make one
            max_instances=1,
            id="scheduled-retraining",
        )
        if self.settings.retention_days is not None:
            self.scheduler.add_job(self.purge_old_records, CronTrigger(hour=4), id="retention")
        self.scheduler.add_job(
            self.purge_expired_corrections, IntervalTrigger(hours=1), id="expired-corrections"
        )
        # Looked for twice per timeout, so a dead run is marked within one and a half of it.
        sweep = IntervalTrigger(seconds=self.settings.run_heartbeat_timeout.total_seconds() / 2)
        self.scheduler.add_job(self.trainer.sweep_dead_runs, sweep, id="dead-runs", max_instances=1)
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop the clock; a job running now finishes on its own."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def retrain(self) -> None:
        """Retrain on MNIST plus users' corrections, if enough new ones arrived since the last good run."""
        if not await self._first_to_fire():
            return
        minimum = self.settings.retrain_min_new_samples
        new_samples = await self.trainer.new_labelled_samples()
        if new_samples < minimum:
            await self.admins.notify(say("admin.scheduled_skipped_few", count=new_samples, minimum=minimum))
            return
        try:
            await self.trainer.start(TrainingRequest(trigger=RunTrigger.SCHEDULED, requested_by="schedule"))
        except TrainingBusyError as busy:
            await self.admins.notify(say("admin.scheduled_skipped_busy", run_id=busy.run_id))

    async def _first_to_fire(self) -> bool:
        """With several instances every one fires the schedule; the first takes this firing (Redis)."""
        if not self.settings.redis_url:
            return True
        now = datetime.now(UTC)
        next_time = self.settings.retrain_trigger().get_next_fire_time(None, now)
        # Held until shortly before the next firing, which then finds it free again.
        seconds = max(60, int((next_time - now).total_seconds()) - 60) if next_time else 3600
        redis = Redis.from_url(self.settings.redis_url)
        try:
            first = bool(await redis.set(RETRAIN_LOCK, 1, nx=True, ex=seconds))
        except (RedisError, OSError) as error:
            logger.error("Redis is unreachable (%s): the scheduled retraining runs here", error)
            first = True  # the database still allows one run at a time
        finally:
            await redis.aclose()
        if not first:
            logger.info("Scheduled retraining: another instance took this one")
        return first

    async def purge_old_records(self) -> None:
        """Delete predictions and samples older than RETENTION_DAYS."""
        days = self.settings.retention_days
        if days is None:
            return

        def purge() -> int:
            with self.sessions.begin() as session:
                return repository.purge_older_than(session, days)

        deleted = await asyncio.to_thread(purge)
        logger.info("Retention: deleted %d predictions older than %d days", deleted, days)

    async def purge_expired_corrections(self) -> None:
        """Delete the pending corrections nobody finished in time."""

        def purge() -> int:
            with self.sessions.begin() as session:
                return repository.purge_expired_corrections(session)

        await asyncio.to_thread(purge)
