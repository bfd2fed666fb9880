"""Start the service: settings, logging, database migrations, then polling until stopped."""

from __future__ import annotations

import logging
import sys

from sqlalchemy.orm import Session, sessionmaker
from telegram import Update

from bot.settings import BotSettings, SettingsError, load_settings
from db import repository
from db.session import make_engine, make_session_factory, upgrade

logger = logging.getLogger("bot")


class RedactToken(logging.Filter):
    """Removes the bot token from every log line (httpx logs request URLs, which contain it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, "<TOKEN>")
            record.args = None
        return True


def configure_logging(settings: BotSettings) -> None:
    """Log to stderr at the configured level, never printing the token."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(settings.telegram_bot_token))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # Each long poll is an INFO line from httpx; keep them out unless debugging.
    logging.getLogger("httpx").setLevel(logging.WARNING if settings.log_level != "DEBUG" else logging.DEBUG)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def prepare_database(settings: BotSettings) -> sessionmaker[Session]:
    """Migrate the schema to head and mark runs a previous crash left running as interrupted."""
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with sessions.begin() as session:
        interrupted = repository.mark_interrupted_runs(session)
    if interrupted:
        logger.warning("Marked %d training run(s) left running by a restart as interrupted", interrupted)
    return sessions


def main() -> int:
    """Run the bot until SIGINT or SIGTERM."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"mnist-digit-bot: cannot start:\n{error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        sessions = prepare_database(settings)
    except Exception as error:  # one clear line instead of a driver's traceback
        print(
            f"mnist-digit-bot: cannot open the database {settings.resolved_database_url.split('@')[-1]}: "
            f"{error.__class__.__name__}: {str(error).splitlines()[0]}",
            file=sys.stderr,
        )
        return 2
    from bot.telegram_app import build_application  # imported late: settings errors stay fast

    application = build_application(settings, sessions)
    logger.info(
        "Starting; admins %s, progress to %s", sorted(settings.admin_user_ids), settings.progress_chat_ids
    )
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
