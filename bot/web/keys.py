"""The web front end's two secrets: the key that signs visitors' cookies, and the admin sign-in token."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from bot.settings import Settings

logger = logging.getLogger(__name__)

SECRET_KEY_FILE = "web-secret.key"


def signing_key(settings: Settings) -> str:
    """WEB_SECRET_KEY, else a key made once and kept in the data folder, so cookies outlive a restart."""
    if settings.web_secret_key:
        return settings.web_secret_key
    path = Path(settings.data_dir) / SECRET_KEY_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created readable by the service's user only; O_EXCL so two starts cannot write two keys.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return key


def admin_token(settings: Settings) -> str:
    """ADMIN_TOKEN, else a token made for this start and logged once (it is never stored)."""
    if settings.admin_token:
        return settings.admin_token
    token = secrets.token_urlsafe(24)
    logger.warning("Admin sign-in token (generated for this start, shown once): %s", token)
    return token
