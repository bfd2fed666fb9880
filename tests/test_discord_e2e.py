"""End to end over real HTTP and a real WebSocket: the real discord.py bot, a local Discord emulator,
real models and SQLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bot_support import digit_photo
from discord_emulator import DiscordEmulator
from discord_support import (
    DISCORD_USER_ID,
    answers,
    buttons,
    discord_environment,
    errors,
    running_discord_bot,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import DigitSample, Feedback, Prediction
from db.session import make_engine, make_session_factory
from mnist_engine.training.dataset import Mnist

pytestmark = pytest.mark.slow


@pytest.fixture
def emulator() -> DiscordEmulator:
    with DiscordEmulator() as running:
        yield running


def mnist_digit(mnist: Mnist, label: int, occurrence: int = 0) -> np.ndarray:
    """The n-th MNIST test image of a digit."""
    return mnist.x_test[np.flatnonzero(mnist.y_test == label)[occurrence]]


def database(tmp_path: Path) -> sessionmaker[Session]:
    """The test bot's SQLite database."""
    return make_session_factory(make_engine(f"sqlite:///{tmp_path / 'bot.sqlite3'}"))


def jpeg(name: str, data: bytes) -> tuple[str, bytes, str]:
    return (name, data, "image/jpeg")


async def test_a_picture_in_a_dm_is_answered_and_judged_right(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_discord_bot(discord_environment(emulator, tmp_path, model_dir, data_dir)):
        sent = emulator.send_message(
            DISCORD_USER_ID, attachments=[jpeg("seven.jpg", digit_photo([mnist_digit(mnist, 7)]))]
        )
        dm = emulator.dm_channel_id(DISCORD_USER_ID)
        [reply] = await emulator.wait_for(lambda: answers(emulator, dm), timeout=20)
        assert reply["referenced_message"]["id"] == sent["id"]
        assert reply["content"].startswith("I read: 7")
        assert list(buttons(reply)) == ["✅ Right", "❌ Wrong — correct it"]

        emulator.press_button(DISCORD_USER_ID, reply, buttons(reply)["✅ Right"])
        edited = await emulator.wait_for(
            lambda: (
                "recorded as right" in emulator.message(dm, reply["id"])["content"]
                and emulator.message(dm, reply["id"])
            )
        )
        assert edited["components"] == []
    with database(tmp_path)() as session:
        prediction = session.scalars(select(Prediction)).one()
        assert prediction.digits == "7" and prediction.channel == "discord"
        assert prediction.message_id == int(sent["id"])
        assert session.scalars(select(Feedback)).one().correct is True
        assert session.scalars(select(DigitSample)).one().label == 7
    assert errors(emulator) == []
