"""Helpers for the Discord end-to-end tests: the service's environment and a running Discord bot."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from discord_emulator import DiscordEmulator

from bot.core.reading_pool import ReadingPool
from bot.core.services import Services

DISCORD_ADMIN_ID = 3000
DISCORD_USER_ID = 4000


def discord_environment(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of a service with only the Discord front end, pointed at the emulator."""
    return {
        "DISCORD_BOT_TOKEN": emulator.token,
        "DISCORD_ADMIN_USER_IDS": str(DISCORD_ADMIN_ID),
        "DISCORD_GUILD_IDS": str(emulator.guild_id),
        "DISCORD_API_BASE_URL": emulator.api_base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "MNIST_MODEL_DIR": str(model_dir),
        "MNIST_DATA_DIR": str(data_dir),
        "RETRAIN_ARCHITECTURE": "dense",
        "TRAINING_TRAIN_LIMIT": "4000",
        "TRAINING_VALIDATION_SIZE": "1000",
        "TRAINING_TEST_LIMIT": "1000",
        **extra,
    }


@asynccontextmanager
async def running_discord_bot(
    environment: dict[str, str], pool: ReadingPool | None = None
) -> AsyncIterator[Services]:
    """Start the service as `python -m bot` does with a Discord token, connected to the emulator."""
    from bot.core.services import build_services
    from bot.service import prepare_database, running_discord, running_services
    from bot.settings import load_settings

    saved = dict(os.environ)
    for name in [name for name in os.environ if name.startswith(("TELEGRAM_", "DISCORD_"))]:
        del os.environ[name]
    os.environ.update(environment)
    try:
        settings = load_settings(_env_file=None)
        services = build_services(settings, prepare_database(settings), pool=pool)
        async with running_discord(services), running_services(services):
            yield services
    finally:
        os.environ.clear()
        os.environ.update(saved)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """A message's buttons: label → custom_id."""
    return {
        button["label"]: button["custom_id"]
        for row in message.get("components", [])
        for button in row.get("components", [])
        if "custom_id" in button
    }


def right_button(message: dict[str, Any]) -> str:
    """The custom_id of the button that says the answer is right (✅ Right, or ✅ and the first reading)."""
    return next(custom_id for custom_id in buttons(message).values() if custom_id.startswith("digitbot:ok:"))


def wrong_button(message: dict[str, Any]) -> str:
    """The custom_id of the button that opens the digit pad (❌ Wrong, or ❌ Neither)."""
    return next(custom_id for custom_id in buttons(message).values() if custom_id.startswith("digitbot:no:"))


def answers(emulator: DiscordEmulator, channel_id: int) -> list[dict[str, Any]]:
    """The bot's replies to people's messages in a channel (not its interaction responses)."""
    return [message for message in emulator.messages(channel_id) if "referenced_message" in message]


def errors(emulator: DiscordEmulator) -> list[tuple[str, int, str | None]]:
    """The bot's REST calls that Discord refused."""
    return [(call.route, call.status, call.error) for call in emulator.calls if call.status >= 400]
