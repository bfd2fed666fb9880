"""Helpers for the bot's end-to-end tests: generated digit photos and a running Application."""

from __future__ import annotations

import io
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from emulator import BotApiEmulator
from PIL import Image, ImageFilter
from sqlalchemy.orm import Session, sessionmaker

from bot.core.reading_pool import ReadingPool
from bot.core.services import Services
from db.session import make_engine, make_session_factory
from mnist_engine.photo import Recognition
from mnist_engine.training.dataset import Mnist

TOKEN = "123456789:AAE-test-token-for-the-local-emulator01"
ADMIN_ID = 1000
USER_ID = 2000


def digit_photo(digits: Sequence[np.ndarray], *, seed: int = 0, size: tuple[int, int] = (960, 720)) -> bytes:
    """A phone-like JPEG: MNIST digits written in dark ink on slightly grey, unevenly lit paper."""
    rng = np.random.default_rng(seed)
    width, height = size
    x_gradient = np.linspace(0, 1, width)[np.newaxis, :]
    paper = 215 + 25 * x_gradient + rng.normal(0, 3, (height, width))
    ink = np.zeros((height, width))
    cell = min(width // (len(digits) + 1), int(height * 0.6))
    top = (height - cell) // 2
    for index, digit in enumerate(digits):
        glyph = np.asarray(Image.fromarray(digit).resize((cell, cell), Image.Resampling.BICUBIC), dtype=float)
        left = (
            int((index + 0.5) * width / (len(digits) + 0.0) - cell / 2)
            if len(digits) > 1
            else (width - cell) // 2
        )
        left = min(max(left, 0), width - cell)
        ink[top : top + cell, left : left + cell] = np.maximum(
            ink[top : top + cell, left : left + cell], glyph
        )
    page = paper * (1 - ink / 255) + 40 * (ink / 255)
    image = (
        Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
        .convert("RGB")
        .filter(ImageFilter.GaussianBlur(1))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def replies_to(emulator: BotApiEmulator, chat_id: int) -> list[dict]:
    """The bot's messages in a chat that answer a user's photo or file."""
    return [
        message
        for message in emulator.messages(chat_id)
        if {"photo", "document"} & set(message.get("reply_to_message", {}))
    ]


def blank_photo() -> bytes:
    """A photo of an empty sheet of paper."""
    rng = np.random.default_rng(1)
    page = 220 + rng.normal(0, 2, (600, 800))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def bot_environment(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment a test bot runs with: the emulator's URLs, temporary database and models."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ADMIN_USER_IDS": str(ADMIN_ID),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "MNIST_MODEL_DIR": str(model_dir),
        "MNIST_DATA_DIR": str(data_dir),
        "TELEGRAM_BASE_URL": emulator.base_url,
        "TELEGRAM_BASE_FILE_URL": emulator.base_file_url,
        "RETRAIN_ARCHITECTURE": "dense",
        "TRAINING_TRAIN_LIMIT": "4000",
        "TRAINING_VALIDATION_SIZE": "1000",
        "TRAINING_TEST_LIMIT": "1000",
        **extra,
    }


@asynccontextmanager
async def running_bot(
    environment: dict[str, str], pool: ReadingPool | None = None
) -> AsyncIterator[Services]:
    """Start the service as `python -m bot` does, polling the emulator; stop it afterwards."""
    from bot.core.services import build_services
    from bot.service import prepare_database, running_services, running_telegram
    from bot.settings import load_settings

    saved = dict(os.environ)
    os.environ.update(environment)
    try:
        settings = load_settings(_env_file=None)
        services = build_services(settings, prepare_database(settings), pool=pool)
        async with running_telegram(services, poll_timeout=1), running_services(services):
            yield services
    finally:
        os.environ.clear()
        os.environ.update(saved)


def read_or_die(image_bytes: bytes) -> tuple[Recognition, str | None]:
    """A reading worker's function for tests: b"poison" kills its process; anything else reads as nothing."""
    if image_bytes == b"poison":
        os._exit(1)  # as a decoder crashing in C, or the out-of-memory killer, would end it
    time.sleep(0.2)  # long enough for several pictures to be in flight at once
    return Recognition(digits=[], text=""), "test-model"


def model_loaded_in_worker() -> tuple[int, bool]:
    """Which worker this is, and whether it had the serving model loaded before its first picture."""
    from bot.core import reading_pool

    model = reading_pool._model
    return os.getpid(), model is not None and model.version is not None


def mnist_digit(mnist: Mnist, label: int, occurrence: int = 0) -> np.ndarray:
    """The n-th MNIST test image of a digit."""
    return mnist.x_test[np.flatnonzero(mnist.y_test == label)[occurrence]]


def database(tmp_path: Path) -> sessionmaker[Session]:
    """The test bot's SQLite database (as bot_environment names it)."""
    return make_session_factory(make_engine(f"sqlite:///{tmp_path / 'bot.sqlite3'}"))


def button_data(message: dict, action: str) -> str:
    """The callback data of the button under `message` that does `action` ("ok", "no", "fx", "sv")."""
    buttons = [
        button["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for button in row
    ]
    return next(data for data in buttons if data.startswith(f"{action}:"))
