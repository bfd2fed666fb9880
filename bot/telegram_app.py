"""The python-telegram-bot layer: translates updates into calls of bot.core and replies back.

`build_application` is the one place that builds the Application and adds every handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import time as daytime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    PhotoSize,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core import replies
from bot.core.progress import RunProgress, Throttle, progress_text, summary_text
from bot.core.ratelimit import SlidingWindowLimiter
from bot.core.reading import DigitReader, Picture, Verdict
from bot.core.stats import model_text, stats_picture, stats_text
from bot.core.training import TrainingBusyError, TrainingManager, TrainingRequest
from bot.settings import BotSettings
from db import repository
from mnist_engine.architectures import ARCHITECTURES
from mnist_engine.registry import ModelRegistry
from mnist_engine.serving import NoModelError

logger = logging.getLogger(__name__)

PROGRESS_EDIT_INTERVAL_SECONDS = 3.0
PENDING_CORRECTION = "pending_correction"  # user_data key: (prediction id, chat id, message id)
MAX_CONCURRENT_UPDATES = 256


@dataclass
class Services:
    """Everything the handlers need, built once at start."""

    settings: BotSettings
    sessions: sessionmaker[Session]
    registry: ModelRegistry
    reader: DigitReader
    trainer: TrainingManager
    limiter: SlidingWindowLimiter
    reporter: ProgressReporter


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """The services stored in bot_data by build_application."""
    return context.bot_data["services"]


# --- Users -----------------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user and explain what the bot does."""
    text = replies.HELP_TEXT
    if is_admin(update, context):
        text += "\n\n" + replies.ADMIN_HELP_TEXT
    await update.effective_message.reply_text(text)


async def handle_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Read the digits in a photo (Telegram's compressed JPEG)."""
    message = update.effective_message
    size = choose_photo_size(message.photo, services_of(context).settings.photo_min_side)
    await read_and_reply(update, context, size.file_id, size.file_size, source="photo")


async def handle_image_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Read the digits in an image sent as a file (original size, format and EXIF)."""
    document = update.effective_message.document
    await read_and_reply(update, context, document.file_id, document.file_size, source="file")


async def read_and_reply(
    update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str, file_size: int | None, source: str
) -> None:
    """Download a picture, read it off the event loop, and answer quoting the user's message."""
    services = services_of(context)
    message = update.effective_message
    wait_seconds = services.limiter.try_acquire(update.effective_user.id)
    if wait_seconds:
        await message.reply_text(
            replies.rate_limited_text(services.limiter.limit, wait_seconds), do_quote=True
        )
        return
    limit = services.settings.max_file_bytes
    if file_size is not None and file_size > limit:
        await message.reply_text(replies.file_too_large_text(file_size, limit), do_quote=True)
        return
    try:
        telegram_file = await context.bot.get_file(file_id)
        data = bytes(await telegram_file.download_as_bytearray())
    except BadRequest as error:
        logger.warning("Download refused: %s", error)
        text = (
            replies.file_too_large_text(file_size or limit + 1, limit)
            if "too big" in str(error).lower()
            else replies.DOWNLOAD_FAILED_TEXT
        )
        await message.reply_text(text, do_quote=True)
        return
    except TelegramError as error:
        logger.warning("Download failed: %s", error)
        await message.reply_text(replies.DOWNLOAD_FAILED_TEXT, do_quote=True)
        return
    picture = Picture(
        data=data,
        chat_id=message.chat_id,
        user_id=update.effective_user.id,
        message_id=message.message_id,
        source=source,
    )
    try:
        reply = await services.reader.read(picture)
    except NoModelError:
        await message.reply_text(warming_up_text(services), do_quote=True)
        return
    await message.reply_text(reply.text, reply_markup=keyboard(reply.buttons), do_quote=True)


async def handle_other_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Refuse files that are not images."""
    await update.effective_message.reply_text(replies.NOT_AN_IMAGE_TEXT, do_quote=True)


async def handle_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers are not handwriting."""
    await update.effective_message.reply_text(replies.STICKER_TEXT, do_quote=True)


async def handle_animation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Animations and videos cannot be read."""
    await update.effective_message.reply_text(replies.ANIMATION_TEXT, do_quote=True)


async def handle_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed correction if one is awaited, else a hint to send a photo."""
    message = update.effective_message
    pending = context.user_data.get(PENDING_CORRECTION)
    corrected = replies.parse_correction(message.text or "")
    if pending is None or corrected is None:
        await message.reply_text(replies.TEXT_WITHOUT_PHOTO)
        return
    prediction_id, chat_id, answer_message_id = pending
    verdict = Verdict(prediction_id, update.effective_user.id, correct=False, corrected_digits=corrected)
    reply = await asyncio.to_thread(services_of(context).reader.record_verdict, verdict)
    context.user_data.pop(PENDING_CORRECTION, None)
    await edit_quietly(context, chat_id, answer_message_id, reply.text)
    await message.reply_text(f"Thanks! Recorded {corrected} as the right answer.", do_quote=True)


async def handle_verdict_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Right, Wrong, a digit-pad tap, or Save under an answer."""
    query = update.callback_query
    action, prediction_id, typed = parse_callback(query.data or "")
    reader = services_of(context).reader
    if action == "ok" or (action == "sv" and typed):
        verdict = Verdict(
            prediction_id,
            update.effective_user.id,
            correct=action == "ok",
            corrected_digits=None if action == "ok" else typed,
        )
        reply = await asyncio.to_thread(reader.record_verdict, verdict)
        context.user_data.pop(PENDING_CORRECTION, None)
        await query.answer("Recorded, thank you!")
        await edit_quietly(context, query.message.chat_id, query.message.message_id, reply.text)
        return
    if action in ("no", "fx", "sv"):
        digits_read = await asyncio.to_thread(reader.digits_read, prediction_id)
        if digits_read is None:
            await query.answer(replies.STALE_BUTTON_TEXT)
            return
        context.user_data[PENDING_CORRECTION] = (
            prediction_id,
            query.message.chat_id,
            query.message.message_id,
        )
        await query.answer("Tap the digits or type the number" if action == "no" else "")
        pad = replies.correction_pad(prediction_id, digits_read, typed)
        await edit_quietly(context, query.message.chat_id, query.message.message_id, pad.text, pad.buttons)
        return
    await query.answer(replies.STALE_BUTTON_TEXT)


# --- Admins ----------------------------------------------------------------------------------------


def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Only the ids in ADMIN_USER_IDS are admins."""
    user = update.effective_user
    return user is not None and user.id in services_of(context).settings.admin_user_ids


def admin_only(
    handler: Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]],
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    """Wrap a command so that non-admins get a polite refusal."""

    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not is_admin(update, context):
            await update.effective_message.reply_text(replies.NOT_ADMIN_TEXT)
            return
        await handler(update, context)

    guarded.__doc__ = handler.__doc__
    return guarded


@admin_only
async def train_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/train [architecture] [epochs]: start a run now."""
    message = update.effective_message
    try:
        architecture, epochs = parse_train_arguments(context.args or [])
    except ValueError as error:
        await message.reply_text(str(error))
        return
    request = TrainingRequest(
        trigger="manual",
        requested_by=update.effective_user.full_name,
        architecture=architecture,
        epochs=epochs,
    )
    try:
        run = await services_of(context).trainer.start(request)
    except TrainingBusyError as busy:
        await message.reply_text(
            f"A run is already in progress: #{busy.run.run_id}, "
            f"{busy.run.progress:.0%} done (epoch {busy.run.epoch}/{busy.run.total_epochs}). "
            "/cancel stops it."
        )
        return
    await message.reply_text(
        f"Started training run #{run.run_id} ({run.architecture}). Progress goes to the admin chat."
    )


@admin_only
async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: stop the run in progress."""
    if await services_of(context).trainer.cancel():
        await update.effective_message.reply_text("Stopping the run at its next batch…")
    else:
        await update.effective_message.reply_text("No training run is in progress.")


@admin_only
async def model_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/model: the serving model's version and metrics."""
    metadata = await asyncio.to_thread(services_of(context).registry.current_metadata)
    await update.effective_message.reply_text(model_text(metadata))


@admin_only
async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: usage, accuracy as users judged it, recent runs and one chart."""
    services = services_of(context)
    await context.bot.send_chat_action(update.effective_chat.id, ChatAction.UPLOAD_PHOTO)
    text, picture = await asyncio.to_thread(build_stats, services)
    await update.effective_message.reply_photo(picture, caption=text if len(text) <= 1024 else None)
    if len(text) > 1024:
        await update.effective_message.reply_text(text)


def build_stats(services: Services) -> tuple[str, bytes]:
    """The /stats text and picture (database reads and chart drawing: run in a thread)."""
    with services.sessions() as session:
        statistics = repository.statistics(session)
        runs = list(reversed(repository.recent_runs(session, limit=30)))
    metadata = services.registry.current_metadata()
    return stats_text(statistics, metadata), stats_picture(statistics, runs)


def parse_train_arguments(arguments: list[str]) -> tuple[str | None, int | None]:
    """'/train', '/train cnn', '/train cnn 5' or '/train 5'."""
    architecture: str | None = None
    epochs: int | None = None
    for argument in arguments:
        if argument.isdigit():
            epochs = int(argument)
            if not 1 <= epochs <= 200:
                raise ValueError("Epochs must be between 1 and 200.")
        elif argument in ARCHITECTURES:
            architecture = argument
        else:
            raise ValueError(
                f"Unknown architecture {argument!r}. Choose one of: {', '.join(ARCHITECTURES)}. "
                "Usage: /train [architecture] [epochs]"
            )
    return architecture, epochs


# --- Training progress in the admin chat --------------------------------------------------------------


class ProgressReporter:
    """Posts a run's progress as one message per admin chat, edited at most every 3 seconds."""

    def __init__(
        self,
        application: Application,
        chat_ids: list[int],
        interval_seconds: float = PROGRESS_EDIT_INTERVAL_SECONDS,
    ) -> None:
        self.application = application
        self.chat_ids = chat_ids
        self.interval_seconds = interval_seconds
        self._run_id: int | None = None
        self._messages: dict[int, int] = {}
        self._throttle = Throttle(interval_seconds)
        self._pending_flush: asyncio.Task[None] | None = None
        self._latest: RunProgress | None = None
        self._last_text = ""

    async def progress(self, run: RunProgress) -> None:
        """Show the run's state now, or within the interval if an edit was made recently."""
        self._latest = run
        if run.run_id != self._run_id:
            await self._open(run)
            return
        if self._throttle.ready():
            await self._edit_all(progress_text(run))
        elif self._pending_flush is None:
            self._pending_flush = asyncio.create_task(self._flush_later())

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        """Show the final state, then the summary with the curves and the promotion decision."""
        if self._pending_flush is not None:
            self._pending_flush.cancel()
            self._pending_flush = None
        if run.run_id == self._run_id:
            await self._edit_all(progress_text(run))
        summary = summary_text(run)
        for chat_id in self.chat_ids:
            await self._send(chat_id, summary, curves_png)
        self._run_id = None
        self._messages = {}

    async def notify(self, text: str) -> None:
        """Tell the admins something (a skipped scheduled run, a first-run start)."""
        for chat_id in self.chat_ids:
            await self._send(chat_id, text, None)

    async def _open(self, run: RunProgress) -> None:
        self._run_id = run.run_id
        self._messages = {}
        self._last_text = progress_text(run)
        self._throttle = Throttle(self.interval_seconds)
        self._throttle.ready()
        for chat_id in self.chat_ids:
            try:
                message = await self.application.bot.send_message(chat_id, self._last_text)
            except TelegramError as error:
                logger.warning("Cannot post progress to chat %s: %s", chat_id, error)
                continue
            self._messages[chat_id] = message.message_id

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._throttle.seconds_until_ready())
        self._pending_flush = None
        if self._latest is not None and self._latest.run_id == self._run_id and self._throttle.ready():
            await self._edit_all(progress_text(self._latest))

    async def _edit_all(self, text: str) -> None:
        if text == self._last_text:
            return  # Telegram refuses an edit that changes nothing
        self._last_text = text
        for chat_id, message_id in self._messages.items():
            try:
                await self.application.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
            except RetryAfter as error:
                # Flood control: skip this edit; the next one comes after Telegram's wait.
                logger.info("Progress edit throttled by Telegram for %s s", error.retry_after)
                self._throttle = Throttle(self.interval_seconds + _seconds(error.retry_after))
                self._throttle.ready()
            except BadRequest as error:
                if "not modified" not in str(error).lower():
                    logger.warning("Cannot edit progress in chat %s: %s", chat_id, error)
            except TelegramError as error:
                logger.warning("Cannot edit progress in chat %s: %s", chat_id, error)

    async def _send(self, chat_id: int, text: str, picture: bytes | None) -> None:
        try:
            if picture is not None and len(text) <= 1024:
                await self.application.bot.send_photo(chat_id, picture, caption=text)
            else:
                await self.application.bot.send_message(chat_id, text)
                if picture is not None:
                    await self.application.bot.send_photo(chat_id, picture)
        except TelegramError as error:
            logger.warning("Cannot send to admin chat %s: %s", chat_id, error)


def _seconds(retry_after: Any) -> float:
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)


# --- Scheduled jobs --------------------------------------------------------------------------------


async def scheduled_retraining(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Retrain on MNIST plus users' corrections, if enough new ones arrived since the last good run."""
    services = services_of(context)
    settings = services.settings
    since = await asyncio.to_thread(services.trainer.last_successful_start)
    with services.sessions() as session:
        new_samples = await asyncio.to_thread(repository.count_new_labelled_samples, session, since)
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


# --- Errors ----------------------------------------------------------------------------------------


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error and, where a user is waiting, say something went wrong."""
    logger.error("Error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None and update.callback_query is None:
        try:
            await update.effective_message.reply_text(replies.INTERNAL_ERROR_TEXT, do_quote=True)
        except TelegramError:
            logger.warning("Could not tell the user about the error")
    elif isinstance(update, Update) and update.callback_query is not None:
        try:
            await update.callback_query.answer(replies.INTERNAL_ERROR_TEXT)
        except TelegramError:
            logger.warning("Could not answer the callback query after an error")


# --- Helpers ---------------------------------------------------------------------------------------


def choose_photo_size(sizes: tuple[PhotoSize, ...], min_side: int) -> PhotoSize:
    """The smallest size whose long side reaches `min_side` (else the largest): enough for reading."""
    ordered = sorted(sizes, key=lambda size: size.width * size.height)
    for size in ordered:
        if max(size.width, size.height) >= min_side:
            return size
    return ordered[-1]


def keyboard(rows: list[list[replies.Button]]) -> InlineKeyboardMarkup | None:
    """Turn core buttons into Telegram's inline keyboard."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.data) for button in row] for row in rows]
    )


def parse_callback(data: str) -> tuple[str, int, str]:
    """'ok:42' → ('ok', 42, ''); 'fx:42:20' → ('fx', 42, '20'); anything else → ('', 0, '')."""
    parts = data.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        return "", 0, ""
    typed = parts[2] if len(parts) > 2 and parts[2].isdigit() else ""
    return parts[0], int(parts[1]), typed


async def edit_quietly(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: int,
    message_id: int,
    text: str,
    buttons: list[list[replies.Button]] | None = None,
) -> None:
    """Edit a message, ignoring "message is not modified" (a double tap)."""
    try:
        await context.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard(buttons or [])
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


def warming_up_text(services: Services) -> str:
    """What to tell a user while no model serves."""
    run = services.trainer.active
    if run is not None:
        return replies.warming_up_text(run.progress, run.eta_seconds)
    return (
        "I have no model to read digits with yet. An administrator needs to train one with /train; "
        "please try again later."
    )


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handles updates concurrently across chats but one at a time, in order, within a chat.

    So a burst of photos from many users is read in parallel, while each user still gets the
    answers in the order they sent the photos.
    """

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: Counter[int] = Counter()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Await the update's handling once earlier updates of the same chat are done."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] += 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:
                del self._users[chat.id]
                del self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


# --- The Application -------------------------------------------------------------------------------


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
