"""End to end over real HTTP and a real WebSocket: the real discord.py bot, a local Discord emulator,
real models and SQLite."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from bot_support import digit_photo
from discord_emulator import DiscordEmulator
from discord_support import (
    DISCORD_ADMIN_ID,
    DISCORD_USER_ID,
    answers,
    buttons,
    discord_environment,
    errors,
    right_button,
    running_discord_bot,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import DigitSample, Feedback, Prediction, RunStatus, TrainingRun
from db.session import make_engine, make_session_factory
from mnist_engine.registry import ModelRegistry
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


async def test_in_a_server_the_bot_reads_when_mentioned_in_a_reading_channel_and_by_read(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    reading_channel = emulator.add_channel("read-my-digits")
    for user in (DISCORD_USER_ID, DISCORD_USER_ID + 1):
        emulator.add_member(user)
    photo = digit_photo([mnist_digit(mnist, 3)])
    environment = discord_environment(
        emulator, tmp_path, model_dir, data_dir, DISCORD_READING_CHANNEL_IDS=str(reading_channel)
    )
    async with running_discord_bot(environment):
        channel = emulator.channel_id
        emulator.send_message(DISCORD_USER_ID, "look", channel_id=channel, attachments=[jpeg("a.jpg", photo)])
        mentioned = emulator.send_message(
            DISCORD_USER_ID, channel_id=channel, attachments=[jpeg("b.jpg", photo)], mention_bot=True
        )
        [reply] = await emulator.wait_for(lambda: answers(emulator, channel), timeout=20)
        assert reply["referenced_message"]["id"] == mentioned["id"]  # the unaddressed one was left alone
        assert reply["content"].startswith("I read: 3")

        emulator.send_message(DISCORD_USER_ID, channel_id=reading_channel, attachments=[jpeg("c.jpg", photo)])
        await emulator.wait_for(lambda: answers(emulator, reading_channel), timeout=20)

        # Only the sender may judge: another member's press is refused, and the buttons stay.
        refused = emulator.press_button(DISCORD_USER_ID + 1, reply, right_button(reply))
        await emulator.wait_for(lambda: emulator.interaction(refused).followups)
        [refusal] = [
            message for message in emulator.messages(channel) if "Only the person" in message["content"]
        ]
        assert refusal["flags"] & 64  # ephemeral: only the presser sees it
        assert buttons(emulator.message(channel, reply["id"]))

        token = emulator.use_command(
            DISCORD_USER_ID + 1, "read", channel_id=channel, attachment=jpeg("d.jpg", photo)
        )
        await emulator.wait_for(lambda: emulator.interaction(token).followups, timeout=20)
        read = emulator.message(channel, emulator.interaction(token).original_message_id)
        assert read["content"].startswith("I read: 3") and right_button(read)
        assert emulator.interaction(token).response_type == 5  # deferred: "thinking…", then the answer
    with database(tmp_path)() as session:
        assert len(session.scalars(select(Prediction)).all()) == 3
        assert session.scalars(select(Feedback)).all() == []
    assert errors(emulator) == []


async def test_a_correction_on_the_pad_or_in_the_modal_is_stored(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_discord_bot(discord_environment(emulator, tmp_path, model_dir, data_dir)):
        dm = emulator.dm_channel_id(DISCORD_USER_ID)
        emulator.send_message(DISCORD_USER_ID, attachments=[jpeg("4.jpg", digit_photo([mnist_digit(mnist, 4)]))])
        [first] = await emulator.wait_for(lambda: answers(emulator, dm), timeout=20)
        emulator.press_button(DISCORD_USER_ID, first, buttons(first)["❌ Wrong — correct it"])
        pad = await emulator.wait_for(
            lambda: (
                "Which digit" in emulator.message(dm, first["id"])["content"] and emulator.message(dm, first["id"])
            )
        )
        assert sorted(label for label in buttons(pad) if label.isdigit()) == [str(digit) for digit in range(10)]
        emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["9"])
        await emulator.wait_for(lambda: "Corrected to 9" in emulator.message(dm, first["id"])["content"])

        emulator.send_message(DISCORD_USER_ID, attachments=[jpeg("2.jpg", digit_photo([mnist_digit(mnist, 2)]))])
        second = (await emulator.wait_for(lambda: answers(emulator, dm)[1:], timeout=20))[0]
        emulator.press_button(DISCORD_USER_ID, second, buttons(second)["❌ Wrong — correct it"])
        pad = await emulator.wait_for(
            lambda: "⌨ Type the number" in buttons(emulator.message(dm, second["id"]))
            and emulator.message(dm, second["id"])
        )
        opened = emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["⌨ Type the number"])
        await emulator.wait_for(lambda: emulator.interaction(opened).modal)
        refused = emulator.submit_modal(DISCORD_USER_ID, opened, {"digits": "five"})
        await emulator.wait_for(lambda: emulator.interaction(refused).original_message_id)
        assert "isn't a number" in emulator.message(dm, emulator.interaction(refused).original_message_id)["content"]
        opened = emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["⌨ Type the number"])
        await emulator.wait_for(lambda: emulator.interaction(opened).modal)
        emulator.submit_modal(DISCORD_USER_ID, opened, {"digits": " 5 "})
        final = await emulator.wait_for(
            lambda: (
                "Corrected to 5" in emulator.message(dm, second["id"])["content"] and emulator.message(dm, second["id"])
            )
        )
        assert final["components"] == []
    with database(tmp_path)() as session:
        verdicts = session.scalars(select(Feedback)).all()
        assert sorted(feedback.corrected_digits for feedback in verdicts) == ["5", "9"]
        assert not any(feedback.correct for feedback in verdicts)
        assert sorted(sample.label for sample in session.scalars(select(DigitSample))) == [5, 9]
    assert errors(emulator) == []


def ephemeral_answer(emulator: DiscordEmulator, channel_id: int, token: str) -> str:
    """The text an interaction's (deferred) response ended with."""
    return emulator.message(channel_id, emulator.interaction(token).original_message_id)["content"]


async def test_admin_commands_are_refused_to_others_and_allowed_to_the_admin_role(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path
) -> None:
    emulator.add_member(DISCORD_USER_ID)
    emulator.add_member(DISCORD_USER_ID + 1, roles=[emulator.admin_role_id])
    environment = discord_environment(
        emulator, tmp_path, model_dir, data_dir, DISCORD_ADMIN_ROLE_ID=str(emulator.admin_role_id)
    )
    channel = emulator.channel_id
    async with running_discord_bot(environment):
        # Discord only hides admin commands (default_member_permissions); the product refuses them.
        assert all(
            command["default_member_permissions"] == "32"
            for command in emulator.commands(emulator.guild_id)
            if command["name"] in ("train", "cancel", "model", "stats")
        )
        tokens = [
            emulator.use_command(DISCORD_USER_ID, "train", {"architecture": "dense", "epochs": 1}, channel_id=channel),
            emulator.use_command(DISCORD_USER_ID, "cancel", channel_id=channel),
            emulator.use_command(DISCORD_USER_ID, "model", channel_id=channel),
            emulator.use_command(DISCORD_USER_ID, "stats", channel_id=channel),
        ]
        await emulator.wait_for(lambda: all(emulator.interaction(token).response_type for token in tokens))
        for token in tokens:
            refusal = ephemeral_answer(emulator, channel, token)
            assert "only the bot's administrators" in refusal

        allowed = emulator.use_command(DISCORD_USER_ID + 1, "model", channel_id=channel)
        await emulator.wait_for(lambda: emulator.interaction(allowed).followups, timeout=10)
        assert "Serving model" in ephemeral_answer(emulator, channel, allowed)
    with database(tmp_path)() as session:
        assert session.scalars(select(TrainingRun)).all() == []
    assert errors(emulator) == []


async def test_an_admins_run_edits_its_progress_message_and_ends_with_the_promotion(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    before = ModelRegistry(model_dir).current_version()
    environment = discord_environment(emulator, tmp_path, model_dir, data_dir, PROMOTION_TOLERANCE="0.1")
    admin_dm, channel = emulator.dm_channel_id(DISCORD_ADMIN_ID), emulator.channel_id
    emulator.add_member(DISCORD_ADMIN_ID)
    edit_route = "PATCH /channels/{channel_id}/messages/{message_id}"
    async with running_discord_bot(environment):
        emulator.fail_next(edit_route, status=429, retry_after=1.5)  # Discord's flood control, once
        token = emulator.use_command(
            DISCORD_ADMIN_ID, "train", {"architecture": "dense", "epochs": 3}, channel_id=channel
        )
        await emulator.wait_for(lambda: emulator.interaction(token).followups, timeout=10)
        assert "Started training run #1 (dense)" in ephemeral_answer(emulator, channel, token)
        summary = await emulator.wait_for(
            lambda: [message for message in emulator.messages(admin_dm) if message["embeds"]], timeout=120
        )
        progress = next(message for message in emulator.messages(admin_dm) if "🏋️" in message["content"])

        stats = emulator.use_command(DISCORD_ADMIN_ID, "stats", channel_id=channel)
        await emulator.wait_for(lambda: emulator.interaction(stats).followups, timeout=20)
        stats_answer = emulator.message(channel, emulator.interaction(stats).original_message_id)

    [embed] = summary[0]["embeds"]
    assert "finished" in embed["title"] and "Promoted" in embed["description"]
    assert embed["image"]["url"] == summary[0]["attachments"][0]["url"]
    assert emulator.file(embed["image"]["url"])[:4] == b"\x89PNG"
    assert "Epoch 3/3" in progress["content"] and "100%" in progress["content"]
    edits = [call for call in emulator.calls if call.route == edit_route and progress["id"] in call.path]
    assert [call.status for call in edits][:1] == [429] and edits[-1].status == 200
    # discord.py waited out the 429, and the edits came at most one per 3 seconds.
    done = [call.at for call in edits if call.status == 200]
    assert done[0] - edits[0].at >= 1.4
    assert all(later - earlier >= 2.9 for earlier, later in pairwise(done[:-1]))
    assert "Predictions" in stats_answer["embeds"][0]["description"]
    assert ModelRegistry(model_dir).current_version() != before
    with database(tmp_path)() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.status == RunStatus.SUCCEEDED and run.promoted and run.requested_by == "User3000"
    assert [error for error in errors(emulator) if error[1] != 429] == []
