"""The core's buttons as Telegram's inline keyboards, and the button that opens the drawing canvas."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.core.replies import Button
from bot.core.texts import say

DRAW_PATH = "/telegram/draw"  # the web front end's Web App page


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    """Turn the core's buttons into Telegram's inline keyboard."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.action) for button in row] for row in rows]
    )


def draw_url(public_url: str) -> str:
    """Where Telegram opens the canvas."""
    return public_url + DRAW_PATH


def draw_keyboard(public_url: str) -> InlineKeyboardMarkup:
    """A Draw button under a message (Telegram allows Web App buttons in private chats only)."""
    button = InlineKeyboardButton(say("web.telegram.button"), web_app=WebAppInfo(draw_url(public_url)))
    return InlineKeyboardMarkup([[button]])
