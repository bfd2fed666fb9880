"""The services every handler uses, built once by build_application and kept in bot_data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from telegram.ext import ContextTypes

from bot.core.ratelimit import SlidingWindowLimiter
from bot.core.reading import DigitReader
from bot.core.training import TrainingManager
from bot.progress_reporter import ProgressReporter
from bot.settings import BotSettings
from mnist_engine.registry import ModelRegistry


@dataclass
class Services:
    """Everything the handlers need, built once at start."""

    settings: BotSettings
    sessions: sessionmaker[Session]
    registry: ModelRegistry
    reader: DigitReader
    trainer: TrainingManager
    limiter: SlidingWindowLimiter
    reporter: ProgressReporter


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """The services stored in bot_data by build_application."""
    return context.bot_data["services"]
