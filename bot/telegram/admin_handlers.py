"""Handlers for the admins' commands; PTB's filters.User lets only ADMIN_USER_IDS reach them."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.core import admin
from bot.core.texts import say
from bot.telegram.context import services_of
from bot.telegram.progress_message import CAPTION_LIMIT


async def train_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/train [architecture] [epochs]: start a run now."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    try:
        architecture, epochs = admin.parse_train_arguments(context.args or [])
    except admin.TrainArgumentsError as error:
        await message.reply_text(str(error))
        return
    await message.reply_text(
        await admin.start_training(services_of(context), user.full_name, architecture, epochs)
    )


async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: stop the run in progress."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(await admin.cancel_training(services_of(context)))


async def model_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/model: the serving model's version and metrics."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(await admin.model_report(services_of(context)))


async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: usage, accuracy as users judged it, recent runs and one chart."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    await context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_PHOTO)
    text, picture = await admin.stats_report(services_of(context))
    await message.reply_photo(picture, caption=text if len(text) <= CAPTION_LIMIT else None)
    if len(text) > CAPTION_LIMIT:
        await message.reply_text(text)


async def not_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An admin command from someone who is not an admin: a polite refusal."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(say("admin.not_admin"))
