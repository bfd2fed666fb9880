"""A local Telegram Bot API emulator for end-to-end tests of the bot."""

from .emulator import BotApiEmulator
from .errors import BotApiError
from .state import ApiCall

__all__ = ["ApiCall", "BotApiEmulator", "BotApiError"]
