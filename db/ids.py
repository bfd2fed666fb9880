"""Telegram ids as the database stores them: as they are, or as keyed hashes when the operator asks."""

import hashlib
import hmac


def stored_id(telegram_id: int | str, secret: str | None = None) -> str:
    """The text to store for a chat or user id: the id itself, or its HMAC-SHA256 when a secret is set."""
    text = str(telegram_id)
    if not secret:
        return text
    # A keyed hash: the same user maps to the same value (distinct users still count), but the ids
    # cannot be recovered from a leaked database without the secret, not even by trying every id.
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
