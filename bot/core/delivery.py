"""Answers one front end posts into another's chats: a drawing made in Telegram's Web App (served
by the web front end) comes back to the person's Telegram chat with its reading and buttons.

A front end that can post registers a sender under its channel in `services.chat_senders`; the
other front ends look it up there, and never import the first one's chat library.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.core.replies import Reply


class ChatSender(Protocol):
    """Posts a picture and the answer about it into one of a front end's chats."""

    async def send_answer(self, chat_id: int, picture: bytes, reply: Reply) -> int:
        """Post the picture with the reply's text and buttons; return the posted message's id."""


class UpdateInbox(Protocol):
    """Where a chat platform's webhook hands its updates (the Telegram front end in webhook mode).

    `accept` returns as soon as the update is safely queued; it is handled afterwards, in order
    within its chat, by this instance or another.
    """

    async def accept(self, update: dict[str, Any]) -> None:
        """Take one update, as the platform posted it."""
