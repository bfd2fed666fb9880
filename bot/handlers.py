"""Handlers: translate Telegram updates into calls of bot.core, and its replies back into messages."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    PhotoSize,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.core import replies
from bot.core.reading import Picture, Verdict
from bot.core.stats import model_text, stats_picture, stats_text
from bot.core.training import TrainingBusyError, TrainingRequest
from bot.services import Services, services_of
from db import repository
from mnist_engine.architectures import ARCHITECTURES
from mnist_engine.serving import NoModelError

logger = logging.getLogger(__name__)

PENDING_CORRECTION = "pending_correction"  # user_data key: (prediction id, chat id, message id)


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
    reply, recorded = await asyncio.to_thread(services_of(context).reader.record_verdict, verdict)
    context.user_data.pop(PENDING_CORRECTION, None)
    if not recorded:
        await message.reply_text(reply.text, do_quote=True)
        return
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
        reply, recorded = await asyncio.to_thread(reader.record_verdict, verdict)
        if not recorded:
            await query.answer(reply.text, show_alert=True)
            return
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

    @functools.wraps(handler)
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not is_admin(update, context):
            await update.effective_message.reply_text(replies.NOT_ADMIN_TEXT)
            return
        await handler(update, context)

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
