"""The service's settings: read from the environment (and `.env`), validated once at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^[0-9]{5,16}:[A-Za-z0-9_-]{30,64}$")
DEFAULT_SCHEDULE = "0 3 * * sun"  # Sundays at 03:00 in RETRAIN_TIMEZONE


class SettingsError(Exception):
    """The settings are wrong; the message says which and how to fix them, one line each."""


class BotSettings(BaseSettings):
    """Everything the bot service can be told; the names are the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    telegram_bot_token: str = Field(alias="TELEGRAM_BOT_TOKEN", repr=False)
    admin_user_ids: Annotated[frozenset[int], NoDecode] = Field(default=frozenset(), alias="ADMIN_USER_IDS")
    admin_chat_id: int | None = Field(default=None, alias="ADMIN_CHAT_ID")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    model_dir: Path = Field(default=Path("models"), alias="MNIST_MODEL_DIR")
    data_dir: Path = Field(default=Path("data"), alias="MNIST_DATA_DIR")
    telegram_base_url: str = Field(default="https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    telegram_base_file_url: str = Field(
        default="https://api.telegram.org/file/bot", alias="TELEGRAM_BASE_FILE_URL"
    )

    retrain_schedule: str = Field(default=DEFAULT_SCHEDULE, alias="RETRAIN_SCHEDULE")
    retrain_timezone: str = Field(default="UTC", alias="RETRAIN_TIMEZONE")
    retrain_min_new_samples: int = Field(default=50, ge=1, alias="RETRAIN_MIN_NEW_SAMPLES")
    retrain_architecture: str = Field(default="small-cnn", alias="RETRAIN_ARCHITECTURE")
    retrain_epochs: int | None = Field(default=None, ge=1, le=200, alias="RETRAIN_EPOCHS")
    user_sample_weight: float = Field(default=5.0, gt=0, alias="USER_SAMPLE_WEIGHT")
    promotion_tolerance: float = Field(default=0.001, ge=0, le=0.1, alias="PROMOTION_TOLERANCE")
    # For tests and small machines: train on the first N MNIST images only.
    training_train_limit: int | None = Field(default=None, ge=2000, alias="TRAINING_TRAIN_LIMIT")
    training_validation_size: int = Field(default=5000, ge=100, alias="TRAINING_VALIDATION_SIZE")
    training_test_limit: int | None = Field(default=None, ge=100, alias="TRAINING_TEST_LIMIT")

    photos_per_minute: int = Field(default=20, ge=1, alias="PHOTOS_PER_MINUTE")
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, alias="MAX_FILE_BYTES")
    photo_min_side: int = Field(default=800, ge=90, le=2560, alias="PHOTO_MIN_SIDE")
    reading_workers: int = Field(default=2, ge=1, le=32, alias="READING_WORKERS")
    hash_user_ids: bool = Field(default=False, alias="HASH_USER_IDS")
    user_id_secret: str | None = Field(default=None, alias="USER_ID_SECRET", repr=False)
    retention_days: int | None = Field(default=None, ge=1, alias="RETENTION_DAYS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_is_well_formed(cls, token: str) -> str:
        token = token.strip()
        if not TOKEN_PATTERN.match(token):
            raise ValueError("is not a bot token (it looks like 123456789:AAE...); copy it from @BotFather")
        return token

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

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _secret_when_hashing(self) -> BotSettings:
        if self.hash_user_ids and not self.user_id_secret:
            raise ValueError("HASH_USER_IDS=true needs USER_ID_SECRET (any long random string) to hash with")
        return self

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or an SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'bot.sqlite3').as_posix()}"

    @property
    def progress_chat_ids(self) -> list[int]:
        """Where training progress goes: ADMIN_CHAT_ID, else each admin's private chat."""
        if self.admin_chat_id is not None:
            return [self.admin_chat_id]
        return sorted(self.admin_user_ids)

    def retrain_trigger(self) -> CronTrigger:
        """The retraining schedule as an APScheduler trigger in the configured time zone."""
        return CronTrigger.from_crontab(self.retrain_schedule, timezone=self.retrain_timezone)


def load_settings(**overrides: object) -> BotSettings:
    """Read and validate the settings; raise SettingsError with one line per problem."""
    try:
        return BotSettings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "settings"
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "missing" and name == "TELEGRAM_BOT_TOKEN":
                message = (
                    "is not set. Talk to @BotFather in Telegram to create a bot and get its token, "
                    "then run: TELEGRAM_BOT_TOKEN=123456789:AAE... make run (or put it in .env)"
                )
            lines.append(f"{name} {message}")
        raise SettingsError("\n".join(lines)) from None
