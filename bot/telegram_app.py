"""The one place that builds the python-telegram-bot Application and adds every handler and job."""

from __future__ import annotations

import asyncio
import logging
from datetime import time as daytime

from sqlalchemy.orm import Session, sessionmaker
from telegram import BotCommand
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.core.ratelimit import SlidingWindowLimiter
from bot.core.reading import DigitReader
from bot.core.training import TrainingManager, TrainingRequest
from bot.handlers import (
    cancel_command,
    handle_animation,
    handle_image_document,
    handle_other_file,
    handle_photo,
    handle_sticker,
    handle_text,
    handle_verdict_button,
    model_command,
    on_error,
    start,
    stats_command,
    train_command,
)
from bot.jobs import purge_old_records, scheduled_retraining
from bot.progress_reporter import ProgressReporter
from bot.services import Services
from bot.settings import BotSettings
from bot.update_processor import PerChatUpdateProcessor
from mnist_engine.registry import ModelRegistry
from mnist_engine.serving import NoModelError

logger = logging.getLogger(__name__)


def build_application(settings: BotSettings, sessions: sessionmaker[Session]) -> Application:
    """Build the Application, its services, handlers and scheduled jobs."""
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .concurrent_updates(PerChatUpdateProcessor())
        # Obeys Telegram's flood-control answers (RetryAfter) and group limits; private replies
        # are not throttled up front, so a burst of photos is answered as fast as it is read.
        .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=3))
        .connection_pool_size(64)
        .post_init(on_startup)
        .post_stop(on_stop)
        .build()
    )
    reporter = ProgressReporter(application, settings.progress_chat_ids)
    application.bot_data["services"] = Services(
        settings=settings,
        sessions=sessions,
        registry=ModelRegistry(settings.model_dir),
        reader=DigitReader(
            settings.model_dir,
            sessions,
            settings.user_id_secret if settings.hash_user_ids else None,
            workers=settings.reading_workers,
        ),
        trainer=TrainingManager(settings, sessions, reporter),
        limiter=SlidingWindowLimiter(settings.photos_per_minute),
        reporter=reporter,
    )

    application.add_handler(CommandHandler(["start", "help"], start))
    application.add_handler(CommandHandler("train", train_command))
    application.add_handler(CommandHandler("cancel", cancel_command))
    application.add_handler(CommandHandler("model", model_command))
    application.add_handler(CommandHandler("stats", stats_command))
    # Animations also carry a `document` (a GIF or MP4), so they are matched before documents.
    application.add_handler(
        MessageHandler(filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE, handle_animation)
    )
    application.add_handler(MessageHandler(filters.Sticker.ALL, handle_sticker))
    application.add_handler(MessageHandler(filters.PHOTO, handle_photo))
    application.add_handler(MessageHandler(filters.Document.IMAGE, handle_image_document))
    application.add_handler(MessageHandler(filters.Document.ALL, handle_other_file))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, handle_text))
    application.add_handler(CallbackQueryHandler(handle_verdict_button))
    application.add_error_handler(on_error)

    application.job_queue.run_custom(
        scheduled_retraining,
        job_kwargs={
            "trigger": settings.retrain_trigger(),
            "misfire_grace_time": 6 * 3600,  # a service down at the scheduled time still retrains later
            "coalesce": True,  # several missed runs make one
            "max_instances": 1,
        },
        name="scheduled-retraining",
    )
    if settings.retention_days is not None:
        application.job_queue.run_daily(purge_old_records, time=daytime(hour=4), name="retention")
    return application


async def on_startup(application: Application) -> None:
    """Announce the commands, load the model off the loop, or train the first one."""
    services: Services = application.bot_data["services"]
    await application.bot.set_my_commands(
        [
            BotCommand("start", "What this bot does"),
            BotCommand("help", "How to take a good photo"),
            BotCommand("train", "Admins: train a new model"),
            BotCommand("cancel", "Admins: stop the training run"),
            BotCommand("model", "Admins: the serving model"),
            BotCommand("stats", "Admins: usage and accuracy"),
        ]
    )
    try:
        version = await services.reader.warm_up()
        logger.info("Serving model %s", version)
    except NoModelError:
        logger.info("No model yet: training the first-run default (progress follows in this log)")
        await services.trainer.start(
            TrainingRequest(trigger="first_run", requested_by="startup", use_user_samples=False)
        )


async def on_stop(application: Application) -> None:
    """Stop a run in progress and record it as cancelled."""
    services: Services = application.bot_data["services"]
    await services.trainer.shutdown()
    await asyncio.to_thread(services.reader.close)
