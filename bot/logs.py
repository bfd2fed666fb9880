"""Logging for the service and its workers: to stderr, at the configured level, never a secret."""

from __future__ import annotations

import logging

from bot.settings import Settings


class RedactSecrets(logging.Filter):
    """Removes the tokens and secrets from every log line (httpx logs request URLs, which hold the token)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "<SECRET>")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(settings: Settings) -> None:
    """Log to stderr at the configured level, never printing a secret."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(settings.secrets))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # Each long poll is an INFO line from httpx; keep them out unless debugging.
    logging.getLogger("httpx").setLevel(logging.WARNING if settings.log_level != "DEBUG" else logging.DEBUG)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
