"""The service layer every front end shares, built once: reading, training, the admins' channels.

services = build_services(settings, sessions)
await start_services(services)     # the shipped model installed if none serves, workers warm, schedule on
...                                # front ends call services.reader, services.trainer, bot.core.admin
await stop_services(services)      # a run in progress cancelled and recorded, workers stopped
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.orm import Session, sessionmaker

from bot.core.delivery import ChatSender, UpdateInbox
from bot.core.leadership import Leadership
from bot.core.progress import ProgressHub
from bot.core.queued_training import QueuedTraining
from bot.core.rate_limit import PictureRateLimit
from bot.core.reading import DigitReader
from bot.core.reading_pool import ReadingPool
from bot.core.schedule import Schedule
from bot.core.training import TrainingBusyError, TrainingPlan, TrainingRequest, TrainingSupervisor
from bot.settings import Settings
from db.models import Channel, RunTrigger
from mnist_engine.registry import ModelRegistry, RegistryError
from mnist_engine.serving import NoModelError
from mnist_engine.shipped_model import install_shipped_model

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the front ends use."""

    settings: Settings
    sessions: sessionmaker[Session]
    registry: ModelRegistry
    pool: ReadingPool
    reader: DigitReader
    trainer: TrainingSupervisor
    admins: ProgressHub
    schedule: Schedule
    # Set when REDIS_URL is: which of several instances relays shared work.
    leadership: Leadership | None = None
    # Front ends that can post into their chats for another front end (bot.core.delivery).
    chat_senders: dict[Channel, ChatSender] = field(default_factory=dict)
    # Set by the Telegram front end in webhook mode: where the web app's webhook route hands updates.
    telegram_inbox: UpdateInbox | None = None


def build_services(
    settings: Settings, sessions: sessionmaker[Session], pool: ReadingPool | None = None
) -> Services:
    """Build the services (nothing starts yet); `pool` replaces the reading pool (tests)."""
    admins = ProgressHub()
    plan = TrainingPlan(
        engine=settings,
        architecture=settings.retrain_architecture,
        epochs=settings.retrain_epochs,
        heartbeat_timeout=settings.run_heartbeat_timeout,
        trainer_name=settings.instance_name,
    )
    leadership = Leadership(Redis.from_url(settings.redis_url)) if settings.redis_url else None
    queue = None
    if settings.training_backend == "rq" and settings.redis_url and leadership is not None:
        queue = QueuedTraining(settings.redis_url, admins, leadership)
    supervisor = TrainingSupervisor(plan, sessions, admins, queue)
    pool = pool or ReadingPool(settings.model_dir, settings.reading_workers)
    reader = DigitReader(
        pool,
        sessions,
        PictureRateLimit(settings.photos_per_minute, settings.redis_url),
        max_file_bytes=settings.max_file_bytes,
        id_secret=settings.id_secret,
        running_run=lambda: supervisor.active,
        admins=admins,
    )
    return Services(
        settings=settings,
        sessions=sessions,
        registry=ModelRegistry(settings.model_dir),
        pool=pool,
        reader=reader,
        trainer=supervisor,
        admins=admins,
        schedule=Schedule(settings, sessions, supervisor, admins),
        leadership=leadership,
    )


async def start_services(services: Services) -> None:
    """Warm the reading workers, or train the first model when none serves; start the schedule."""
    if services.leadership is not None:
        services.leadership.start()
    await services.trainer.follow_other_instances()
    if services.settings.use_shipped_model:
        shipped = await asyncio.to_thread(install_shipped_model, services.registry)
        if shipped is not None:
            logger.info("No model yet: serving the model shipped with the code as %s", shipped)
    try:
        version = await services.pool.warm_up()
        logger.info("Serving model %s", version)
    except NoModelError:
        logger.info("No model yet: training the first-run default (progress follows in this log)")
        try:
            await services.trainer.start(
                TrainingRequest(trigger=RunTrigger.FIRST_RUN, requested_by="startup", use_user_samples=False)
            )
        except TrainingBusyError as busy:
            # Several instances started together: another one trains the first model already.
            logger.info("Run #%s, started elsewhere, trains the first model", busy.run_id)
    except RegistryError as error:
        logger.error(
            "The serving model cannot be loaded (%s); pictures are refused until an admin fixes it", error
        )
    services.schedule.start()


async def stop_services(services: Services) -> None:
    """Stop the schedule, cancel and record a run in progress, stop the reading workers."""
    services.schedule.shutdown()
    await services.trainer.shutdown()
    if services.leadership is not None:
        await services.leadership.stop()
    await asyncio.to_thread(services.pool.close)
