"""Handlers for the people who send pictures: photos and image files in, answers and verdicts out."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, PhotoSize, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.core.reading import Picture, Verdict, VerdictRefused
from bot.core.replies import (
    Action,
    Button,
    correction_pad,
    file_too_large_text,
    parse_action,
    parse_correction,
)
from bot.core.texts import say
from bot.telegram.context import services_of
from db.models import Channel, PredictionSource

logger = logging.getLogger(__name__)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the person and explain what the bot does (and the admin commands, to admins)."""
    if update.effective_message is None or update.effective_user is None:
        return
    text = say("help")
    if update.effective_user.id in services_of(context).settings.admin_user_ids:
        text += "\n\n" + say("admin_help")
    await update.effective_message.reply_text(text)


async def handle_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Read the digits in a photo (Telegram's compressed JPEG)."""
    if update.effective_message is None or not update.effective_message.photo:
        return
    size = choose_photo_size(update.effective_message.photo, services_of(context).settings.photo_min_side)
    await read_and_reply(update, context, size.file_id, size.file_size, PredictionSource.PHOTO)


async def handle_image_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Read the digits in an image sent as a file (original size, format and EXIF)."""
    if update.effective_message is None or update.effective_message.document is None:
        return
    document = update.effective_message.document
    await read_and_reply(update, context, document.file_id, document.file_size, PredictionSource.FILE)


async def read_and_reply(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    file_id: str,
    file_size: int | None,
    source: PredictionSource,
) -> None:
    """Check, download and read a picture, and answer quoting the person's message."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    reader = services_of(context).reader
    refusal = reader.admit(Channel.TELEGRAM, user.id, file_size)
    if refusal is not None:
        if refusal.reply is not None:
            hint = " " + say("file_too_large_send_as_photo") if refusal.too_large else ""
            await message.reply_text(refusal.reply.text + hint, do_quote=True)
        return
    try:
        telegram_file = await context.bot.get_file(file_id)
        data = bytes(await telegram_file.download_as_bytearray())
    except BadRequest as error:
        logger.warning("Download refused: %s", error)
        if "too big" in str(error).lower():
            limit = reader.max_file_bytes
            too_large = file_too_large_text(file_size or limit + 1, limit)
            await message.reply_text(too_large + " " + say("file_too_large_send_as_photo"), do_quote=True)
        else:
            await message.reply_text(say("download_failed"), do_quote=True)
        return
    except TelegramError as error:
        logger.warning("Download failed: %s", error)
        await message.reply_text(say("download_failed"), do_quote=True)
        return
    picture = Picture(
        data=data,
        channel=Channel.TELEGRAM,
        chat_id=message.chat_id,
        user_id=user.id,
        message_id=message.message_id,
        source=source,
    )
    answer = await reader.read(picture)
    await message.reply_text(answer.reply.text, reply_markup=keyboard(answer.reply.buttons), do_quote=True)


async def handle_other_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Refuse files that are not images."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(say("not_an_image"), do_quote=True)


async def handle_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers are not handwriting."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(say("sticker"), do_quote=True)


async def handle_animation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Animations and videos cannot be read."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(say("animation"), do_quote=True)


async def handle_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed correction if one is awaited in this chat, else a hint to send a photo."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    reader = services_of(context).reader
    corrected = parse_correction(message.text or "")
    pending = await reader.pending_correction(Channel.TELEGRAM, message.chat_id, user.id)
    if pending is None or corrected is None:
        await message.reply_text(say("text_without_photo"))
        return
    await reader.end_correction(Channel.TELEGRAM, message.chat_id, user.id)
    verdict = Verdict(
        Channel.TELEGRAM, pending.prediction_id, user.id, correct=False, corrected_digits=corrected
    )
    try:
        final_text = await reader.judge(verdict)
    except VerdictRefused as refused:
        await message.reply_text(str(refused), do_quote=True)
        return
    await edit_quietly(context, message.chat_id, pending.answer_message_id, final_text)
    await message.reply_text(say("verdict.thanks_for_correction", digits=corrected), do_quote=True)


async def handle_verdict_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Right, Wrong, a digit-pad tap, or Save under an answer."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    pressed = parse_action(query.data or "")
    message = query.message
    # An answer Telegram no longer shows (older than 48 hours, or deleted: date 0) can be neither
    # edited nor judged.
    if pressed is None or not isinstance(message, Message) or not message.is_accessible:
        await query.answer(say("verdict.stale"))
        return
    reader = services_of(context).reader
    try:
        if pressed.action is Action.RIGHT or (pressed.action is Action.SAVE and pressed.typed):
            verdict = Verdict(
                Channel.TELEGRAM,
                pressed.prediction_id,
                user.id,
                correct=pressed.action is Action.RIGHT,
                corrected_digits=pressed.typed or None,
            )
            final_text = await reader.judge(verdict)
            await reader.end_correction(Channel.TELEGRAM, message.chat_id, user.id)
            await query.answer(say("verdict.thanks"))
            await edit_quietly(context, message.chat_id, message.message_id, final_text)
            return
        digits_read = await reader.digits_to_correct(Channel.TELEGRAM, pressed.prediction_id, user.id)
    except VerdictRefused as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await reader.begin_correction(
        Channel.TELEGRAM, message.chat_id, user.id, pressed.prediction_id, message.message_id
    )
    await query.answer(say("pad.opened") if pressed.action is Action.WRONG else None)
    pad = correction_pad(pressed.prediction_id, digits_read, pressed.typed)
    await edit_quietly(context, message.chat_id, message.message_id, pad.text, pad.buttons)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error and, where a person is waiting, say something went wrong."""
    logger.error("Error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(say("internal_error"))
        elif update.effective_message is not None:
            await update.effective_message.reply_text(say("internal_error"), do_quote=True)
    except TelegramError:
        logger.warning("Could not tell the person about the error")


def choose_photo_size(sizes: tuple[PhotoSize, ...], min_side: int) -> PhotoSize:
    """The smallest size whose long side reaches `min_side` (else the largest): enough for reading."""
    ordered = sorted(sizes, key=lambda size: size.width * size.height)
    for size in ordered:
        if max(size.width, size.height) >= min_side:
            return size
    return ordered[-1]


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    """Turn the core's buttons into Telegram's inline keyboard."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.action) for button in row] for row in rows]
    )


async def edit_quietly(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: int,
    message_id: int,
    text: str,
    buttons: list[list[Button]] | None = None,
) -> None:
    """Edit a message, ignoring "message is not modified" (a double tap)."""
    try:
        await context.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard(buttons or [])
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise
