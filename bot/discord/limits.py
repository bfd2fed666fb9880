"""Discord's size limits on what a bot sends, and fitting text into them."""

from __future__ import annotations

MESSAGE_LIMIT = 2000  # characters in a message
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The text, cut with an ellipsis if it is longer than Discord allows."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
