"""The product's settings: one typed model, read from the environment (and `.env`), checked once.

It extends the engine's and the database's settings, so `python -m bot`, `python -m db` and
`python -m mnist_engine` read the same variables with the same defaults.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode

from db.settings import DatabaseSettings
from mnist_engine.settings import EngineSettings

TOKEN_PATTERN = re.compile(r"^[0-9]{5,16}:[A-Za-z0-9_-]{30,64}$")
# A Discord bot token: the bot's id in base64, a timestamp, an HMAC, separated by dots.
DISCORD_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")
DISCORD_API_BASE_URL = "https://discord.com/api/v10"
DEFAULT_SCHEDULE = "0 3 * * sun"  # Sundays at 03:00 in RETRAIN_TIMEZONE
DEFAULT_WEB_HOST, DEFAULT_WEB_PORT = "127.0.0.1", 8000
MIN_SECRET_LENGTH = 16  # ADMIN_TOKEN and WEB_SECRET_KEY: long enough that guessing is hopeless


class SettingsError(Exception):
    """The settings are wrong; the message says which and how to fix them, one line each."""


class Settings(EngineSettings, DatabaseSettings):
    """Everything the service can be told; the aliases are the environment variables."""

    # Telegram (its front end runs when the token is set; with no chat token the web app runs alone)
    telegram_bot_token: str | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN", repr=False)
    admin_user_ids: Annotated[frozenset[int], NoDecode] = Field(default=frozenset(), alias="ADMIN_USER_IDS")
    admin_chat_id: int | None = Field(default=None, alias="ADMIN_CHAT_ID")
    telegram_base_url: str = Field(default="https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    telegram_base_file_url: str = Field(
        default="https://api.telegram.org/file/bot", alias="TELEGRAM_BASE_FILE_URL"
    )
    photo_min_side: int = Field(default=800, ge=90, le=2560, alias="PHOTO_MIN_SIDE")
    # Webhook mode (docs/scaling.md): Telegram POSTs updates to this address, served by the web app
    # at /telegram/webhook; without it the service polls. The secret defaults to one made from the
    # token, so that every instance knows it without one more setting.
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret_setting: str | None = Field(
        default=None, alias="TELEGRAM_WEBHOOK_SECRET", repr=False
    )

    # Discord (its front end runs when the token is set)
    discord_bot_token: str | None = Field(default=None, alias="DISCORD_BOT_TOKEN", repr=False)
    discord_admin_user_ids: Annotated[frozenset[int], NoDecode] = Field(
        default=frozenset(), alias="DISCORD_ADMIN_USER_IDS"
    )
    discord_admin_role_id: int | None = Field(default=None, alias="DISCORD_ADMIN_ROLE_ID")
    discord_progress_channel_id: int | None = Field(default=None, alias="DISCORD_PROGRESS_CHANNEL_ID")
    discord_guild_ids: Annotated[frozenset[int], NoDecode] = Field(
        default=frozenset(), alias="DISCORD_GUILD_IDS"
    )
    discord_reading_channel_ids: Annotated[frozenset[int], NoDecode] = Field(
        default=frozenset(), alias="DISCORD_READING_CHANNEL_IDS"
    )
    discord_api_base_url: str = Field(default=DISCORD_API_BASE_URL, alias="DISCORD_API_BASE_URL")

    # Training
    retrain_schedule: str = Field(default=DEFAULT_SCHEDULE, alias="RETRAIN_SCHEDULE")
    retrain_timezone: str = Field(default="UTC", alias="RETRAIN_TIMEZONE")
    retrain_min_new_samples: int = Field(default=50, ge=1, alias="RETRAIN_MIN_NEW_SAMPLES")
    retrain_architecture: str = Field(default="small-cnn", alias="RETRAIN_ARCHITECTURE")
    retrain_epochs: int | None = Field(default=None, ge=1, le=200, alias="RETRAIN_EPOCHS")

    # Reading and people
    photos_per_minute: int = Field(default=20, ge=1, alias="PHOTOS_PER_MINUTE")
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, alias="MAX_FILE_BYTES")
    reading_workers: int = Field(default=2, ge=1, le=32, alias="READING_WORKERS")
    hash_user_ids: bool = Field(default=False, alias="HASH_USER_IDS")
    user_id_secret: str | None = Field(default=None, alias="USER_ID_SECRET", repr=False)
    retention_days: int | None = Field(default=None, ge=1, alias="RETENTION_DAYS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")

    # Several instances and training workers (docs/scaling.md)
    instance_name: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=64, alias="INSTANCE_NAME"
    )
    redis_url: str | None = Field(default=None, alias="REDIS_URL", repr=False)
    training_backend: Literal["local", "rq"] = Field(default="local", alias="TRAINING_BACKEND")
    # Seconds a run's heartbeat may be silent before the run is taken for dead (its machine died).
    run_heartbeat_timeout_seconds: float = Field(default=60.0, ge=3, alias="RUN_HEARTBEAT_TIMEOUT")
    # Web
    web_host: str = Field(default=DEFAULT_WEB_HOST, alias="WEB_HOST")
    web_port: int = Field(default=DEFAULT_WEB_PORT, ge=0, le=65535, alias="WEB_PORT")
    web_public_url: str | None = Field(default=None, alias="WEB_PUBLIC_URL")
    admin_token: str | None = Field(default=None, alias="ADMIN_TOKEN", repr=False)
    web_secret_key: str | None = Field(default=None, alias="WEB_SECRET_KEY", repr=False)

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_is_well_formed(cls, token: str | None) -> str | None:
        if token is None or not token.strip():
            return None
        token = token.strip()
        if not TOKEN_PATTERN.match(token):
            raise ValueError("is not a bot token (it looks like 123456789:AAE...); copy it from @BotFather")
        return token

    @field_validator("discord_bot_token")
    @classmethod
    def _discord_token_is_well_formed(cls, token: str | None) -> str | None:
        if token is None or not token.strip():
            return None
        token = token.strip().removeprefix("Bot ")
        if not DISCORD_TOKEN_PATTERN.match(token):
            raise ValueError(
                "is not a Discord bot token (three parts separated by dots, like MTA4...Gx1a2B...); "
                "copy it from your application's Bot page in the Discord developer portal"
            )
        return token

    @field_validator(
        "discord_admin_user_ids", "discord_guild_ids", "discord_reading_channel_ids", mode="before"
    )
    @classmethod
    def _split_discord_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
            if not all(re.fullmatch(r"[0-9]{1,20}", part) for part in parts):
                raise ValueError(
                    "must be Discord ids (numbers, from Copy ID in developer mode) separated by commas"
                )
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("discord_api_base_url")
    @classmethod
    def _base_url_is_http(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"must be an http(s) URL such as {DISCORD_API_BASE_URL}")
        return url.rstrip("/")

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
            if not all(re.fullmatch(r"-?[0-9]+", part) for part in parts):
                raise ValueError("must be Telegram user ids separated by commas, e.g. 12345,67890")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("retrain_schedule")
    @classmethod
    def _schedule_is_crontab(cls, schedule: str) -> str:
        try:
            CronTrigger.from_crontab(schedule)
        except ValueError as error:
            raise ValueError(f"is not a crontab line like {DEFAULT_SCHEDULE!r} ({error})") from None
        return schedule

    @field_validator("retrain_timezone")
    @classmethod
    def _timezone_exists(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a time zone name such as UTC or Europe/Berlin") from None
        return name

    @field_validator("retrain_architecture")
    @classmethod
    def _architecture_exists(cls, name: str) -> str:
        from mnist_engine.training.architectures import ARCHITECTURES

        if name not in ARCHITECTURES:
            raise ValueError(f"must be one of {', '.join(ARCHITECTURES)}")
        return name

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url_is_https(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        parts = urlsplit(url.strip())
        # Telegram posts to https only; plain http is allowed to this machine, for tests.
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
        if not (parts.scheme == "https" or loopback) or not parts.netloc:
            raise ValueError(
                "must be the webhook's public https address, e.g. https://bot.example.org/telegram/webhook"
            )
        return url.strip()

    @field_validator("telegram_webhook_secret_setting")
    @classmethod
    def _webhook_secret_is_telegrams_kind(cls, secret: str | None) -> str | None:
        if secret is None or not secret.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", secret.strip()):
            raise ValueError("must be 16 to 256 letters, digits, _ or - (Telegram's rule for secret tokens)")
        return secret.strip()

    @field_validator("web_public_url")
    @classmethod
    def _public_url_is_https(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip().rstrip("/")
        parts = urlsplit(url)
        # Telegram opens Web Apps over https only.
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be the web app's public https address, e.g. https://digits.example.org")
        return url

    @field_validator("admin_token", "web_secret_key")
    @classmethod
    def _secret_is_long(cls, secret: str | None) -> str | None:
        if secret is None or not secret.strip():
            return None  # generated at start
        secret = secret.strip()
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters (or unset, to have one generated at start)"
            )
        return secret

    @model_validator(mode="after")
    def _token_for_the_webhook(self) -> Settings:
        if self.telegram_webhook_url and not self.telegram_bot_token:
            raise ValueError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_BOT_TOKEN (the bot the webhook is for)")
        return self

    @model_validator(mode="after")
    def _redis_for_workers(self) -> Settings:
        if self.training_backend == "rq" and not self.redis_url:
            raise ValueError("TRAINING_BACKEND=rq needs REDIS_URL (the queue the workers take runs from)")
        return self

    @model_validator(mode="after")
    def _secret_when_hashing(self) -> Settings:
        if self.hash_user_ids and not self.user_id_secret:
            raise ValueError("HASH_USER_IDS=true needs USER_ID_SECRET (any long random string) to hash with")
        return self

    @property
    def id_secret(self) -> str | None:
        """The key people's ids are hashed with before they are stored, or None to store them as they are."""
        return self.user_id_secret if self.hash_user_ids else None

    @property
    def secrets(self) -> list[str]:
        """Every value that must never appear in a log line."""
        candidates = (
            self.telegram_bot_token,
            self.telegram_webhook_secret,
            self.discord_bot_token,
            self.user_id_secret,
            self.admin_token,
            self.web_secret_key,
            _password(self.redis_url),
        )
        return [secret for secret in candidates if secret]

    @property
    def telegram_webhook_secret(self) -> str | None:
        """The secret Telegram sends with every webhook request: the setting, or one made from the token."""
        if self.telegram_webhook_secret_setting:
            return self.telegram_webhook_secret_setting
        if not self.telegram_bot_token:
            return None
        return hmac.new(self.telegram_bot_token.encode(), b"telegram-webhook", hashlib.sha256).hexdigest()

    @property
    def run_heartbeat_timeout(self) -> timedelta:
        """How long a run's heartbeat may be silent before the run is taken for dead."""
        return timedelta(seconds=self.run_heartbeat_timeout_seconds)

    @property
    def progress_chat_ids(self) -> list[int]:
        """Where training progress goes in Telegram: ADMIN_CHAT_ID, else each admin's private chat."""
        if self.admin_chat_id is not None:
            return [self.admin_chat_id]
        return sorted(self.admin_user_ids)

    def retrain_trigger(self) -> CronTrigger:
        """The retraining schedule as an APScheduler trigger in the configured time zone."""
        return CronTrigger.from_crontab(self.retrain_schedule, timezone=self.retrain_timezone)


def _password(url: str | None) -> str | None:
    """The password inside a URL such as redis://:secret@host:6379/0, which must not be logged either."""
    return urlsplit(url).password if url else None


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; raise SettingsError with one line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic-settings takes its own keywords
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "settings"
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"{name} {message}" if problem["loc"] else message)
        raise SettingsError("\n".join(lines)) from None
