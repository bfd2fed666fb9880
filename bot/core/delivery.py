"""Answers one front end posts into another's chats: a drawing made in Telegram's Web App (served
by the web front end) comes back to the person's Telegram chat with its reading and buttons.

A front end that can post registers a sender under its channel in `services.chat_senders`; the
other front ends look it up there, and never import the first one's chat library.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.replies import Reply


class ChatSender(Protocol):
    """Posts a picture and the answer about it into one of a front end's chats."""

    async def send_answer(self, chat_id: int, picture: bytes, reply: Reply) -> int:
        """Post the picture with the reply's text and buttons; return the posted message's id."""
