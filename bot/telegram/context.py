"""Where the Telegram handlers find the shared services: the Application's bot_data."""

from __future__ import annotations

from typing import cast

from telegram.ext import ContextTypes

from bot.core.services import Services

SERVICES_KEY = "services"


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """The services build_telegram_application stored in bot_data."""
    return cast(Services, context.bot_data[SERVICES_KEY])
