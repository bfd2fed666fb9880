"""The one place that builds the python-telegram-bot Application and adds every handler."""

from __future__ import annotations

from typing import Any

from telegram import BotCommand
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    JobQueue,
    MessageHandler,
    filters,
)

from bot.core.services import Services
from bot.telegram.admin_handlers import cancel_command, model_command, not_admin, stats_command, train_command
from bot.telegram.context import SERVICES_KEY
from bot.telegram.progress_message import TelegramProgress
from bot.telegram.send_budget import SharedSendBudget
from bot.telegram.update_processor import PerChatUpdateProcessor
from bot.telegram.user_handlers import (
    handle_animation,
    handle_image_document,
    handle_other_file,
    handle_photo,
    handle_sticker,
    handle_text,
    handle_verdict_button,
    on_error,
    start,
)
from bot.telegram.web_app import TelegramChatSender, show_draw_menu_button
from db.models import Channel

# The Application as ApplicationBuilder makes it with an AIORateLimiter (its per-call argument: retries).
TelegramApplication = Application[
    ExtBot[int],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]
ADMIN_COMMANDS = ("train", "cancel", "model", "stats")
COMMAND_MENU = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "How to take a good photo"),
    BotCommand("train", "Admins: train a new model"),
    BotCommand("cancel", "Admins: stop the training run"),
    BotCommand("model", "Admins: the serving model"),
    BotCommand("stats", "Admins: usage and accuracy"),
]


def build_telegram_application(services: Services) -> TelegramApplication:
    """Build the Application on the shared services: handlers, and the admins' progress chats."""
    settings = services.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set; the Telegram front end cannot start")
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .concurrent_updates(PerChatUpdateProcessor())
        .rate_limiter(send_budget(settings.redis_url))
        .connection_pool_size(64)
        .post_init(announce_commands)
        .build()
    )
    application.bot_data[SERVICES_KEY] = services
    services.admins.add(TelegramProgress(application.bot, settings.progress_chat_ids))
    # The web front end posts drawings made in the Telegram Web App back into the chat through this.
    services.chat_senders[Channel.TELEGRAM] = TelegramChatSender(application.bot)

    admins = filters.User(user_id=settings.admin_user_ids)
    application.add_handler(CommandHandler(["start", "help"], start))
    application.add_handler(CommandHandler("train", train_command, filters=admins))
    application.add_handler(CommandHandler("cancel", cancel_command, filters=admins))
    application.add_handler(CommandHandler("model", model_command, filters=admins))
    application.add_handler(CommandHandler("stats", stats_command, filters=admins))
    application.add_handler(CommandHandler(list(ADMIN_COMMANDS), not_admin))
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
    return application


def send_budget(redis_url: str | None) -> AIORateLimiter:
    """Obeys Telegram's flood-control answers (RetryAfter) and group limits. In one process private
    replies are not throttled up front, so a burst of photos is answered as fast as it is read; with
    several instances (REDIS_URL) the overall budget of 30 messages a second is shared through Redis."""
    if redis_url:
        return SharedSendBudget(redis_url)
    return AIORateLimiter(overall_max_rate=0, max_retries=3)


async def announce_commands(application: TelegramApplication) -> None:
    """Show the commands in Telegram's menu, and Draw beside them when the web app is public."""
    await application.bot.set_my_commands(COMMAND_MENU)
    public_url = services_of_application(application).settings.web_public_url
    if public_url:
        await show_draw_menu_button(application.bot, public_url)


def services_of_application(application: TelegramApplication) -> Services:
    """The services build_telegram_application stored in bot_data."""
    services: Services = application.bot_data[SERVICES_KEY]
    return services
