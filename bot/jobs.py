"""The scheduled jobs: retraining on users' corrections, and retention."""

from __future__ import annotations

import asyncio
import logging

from telegram.ext import ContextTypes

from bot.core.training import TrainingBusyError, TrainingRequest
from bot.services import services_of
from db import repository

logger = logging.getLogger(__name__)


async def scheduled_retraining(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Retrain on MNIST plus users' corrections, if enough new ones arrived since the last good run."""
    services = services_of(context)
    settings = services.settings
    new_samples = await asyncio.to_thread(services.trainer.new_labelled_samples)
    if new_samples < settings.retrain_min_new_samples:
        await services.reporter.notify(
            f"⏭ Scheduled retraining skipped: {new_samples} new labelled samples since the last run "
            f"(RETRAIN_MIN_NEW_SAMPLES is {settings.retrain_min_new_samples})."
        )
        return
    try:
        await services.trainer.start(TrainingRequest(trigger="scheduled", requested_by="schedule"))
    except TrainingBusyError as busy:
        await services.reporter.notify(
            f"⏭ Scheduled retraining skipped: run #{busy.run.run_id} is in progress."
        )


async def purge_old_records(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete predictions and samples older than RETENTION_DAYS."""
    services = services_of(context)
    days = services.settings.retention_days
    if days is None:
        return

    def purge() -> int:
        with services.sessions.begin() as session:
            return repository.purge_older_than(session, days)

    deleted = await asyncio.to_thread(purge)
    logger.info("Retention: deleted %d predictions older than %d days", deleted, days)
