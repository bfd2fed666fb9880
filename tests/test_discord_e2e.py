"""End to end over real HTTP and a real WebSocket: the real discord.py bot, a local Discord emulator,
real models and SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from bot_support import ADMIN_ID, TOKEN, blank_photo, bot_environment, digit_photo
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
    wrong_button,
)
from emulator import BotApiEmulator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import DigitSample, Feedback, Prediction, RunStatus, TrainingRun
from db.session import make_engine, make_session_factory
from mnist_engine.registry import ModelRegistry
from mnist_engine.training.dataset import Mnist

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    photo = digit_photo([mnist_digit(mnist, 7)])
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
        assert reply["content"].startswith("I read: 7")

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
        assert read["content"].startswith("I read: 7") and right_button(read)
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
        emulator.send_message(
            DISCORD_USER_ID, attachments=[jpeg("4.jpg", digit_photo([mnist_digit(mnist, 4)]))]
        )
        [first] = await emulator.wait_for(lambda: answers(emulator, dm), timeout=20)
        emulator.press_button(DISCORD_USER_ID, first, wrong_button(first))
        pad = await emulator.wait_for(
            lambda: (
                "Which digit" in emulator.message(dm, first["id"])["content"]
                and emulator.message(dm, first["id"])
            )
        )
        assert sorted(label for label in buttons(pad) if label.isdigit()) == [
            str(digit) for digit in range(10)
        ]
        emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["9"])
        await emulator.wait_for(lambda: "Corrected to 9" in emulator.message(dm, first["id"])["content"])

        emulator.send_message(
            DISCORD_USER_ID, attachments=[jpeg("2.jpg", digit_photo([mnist_digit(mnist, 2)]))]
        )
        second = (await emulator.wait_for(lambda: answers(emulator, dm)[1:], timeout=20))[0]
        emulator.press_button(DISCORD_USER_ID, second, wrong_button(second))
        pad = await emulator.wait_for(
            lambda: (
                "⌨ Type the number" in buttons(emulator.message(dm, second["id"]))
                and emulator.message(dm, second["id"])
            )
        )
        opened = emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["⌨ Type the number"])
        await emulator.wait_for(lambda: emulator.interaction(opened).modal)
        refused = emulator.submit_modal(DISCORD_USER_ID, opened, {"digits": "five"})
        await emulator.wait_for(lambda: emulator.interaction(refused).original_message_id)
        assert (
            "isn't a number"
            in emulator.message(dm, emulator.interaction(refused).original_message_id)["content"]
        )
        opened = emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["⌨ Type the number"])
        await emulator.wait_for(lambda: emulator.interaction(opened).modal)
        emulator.submit_modal(DISCORD_USER_ID, opened, {"digits": " 5 "})
        final = await emulator.wait_for(
            lambda: (
                "Corrected to 5" in emulator.message(dm, second["id"])["content"]
                and emulator.message(dm, second["id"])
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
            emulator.use_command(
                DISCORD_USER_ID, "train", {"architecture": "dense", "epochs": 1}, channel_id=channel
            ),
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


async def test_bad_inputs_each_get_a_clear_answer_and_nothing_is_lost(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    environment = discord_environment(
        emulator,
        tmp_path,
        model_dir,
        data_dir,
        MAX_FILE_BYTES="200000",
        PHOTOS_PER_MINUTE="5",
        DISCORD_GUILD_IDS="",  # commands published globally: they work in DMs too
    )
    dm = emulator.dm_channel_id(DISCORD_USER_ID)
    async with running_discord_bot(environment):
        assert {command["name"] for command in emulator.commands()} == {
            "read",
            "help",
            "train",
            "cancel",
            "model",
            "stats",
        }
        assert emulator.commands(emulator.guild_id) == []
        helped = emulator.use_command(DISCORD_USER_ID, "help")
        await emulator.wait_for(lambda: emulator.interaction(helped).original_message_id)
        help_text = emulator.message(dm, emulator.interaction(helped).original_message_id)["content"]
        assert "mentions me" in help_text and "Admin commands" not in help_text
        sent = [
            emulator.send_message(DISCORD_USER_ID, "hello"),
            emulator.send_message(DISCORD_USER_ID, attachments=[("notes.txt", b"just notes", "text/plain")]),
            emulator.send_message(
                DISCORD_USER_ID, attachments=[("clip.mp4", b"\x00\x00\x00 ftyp", "video/mp4")]
            ),
            emulator.send_message(
                DISCORD_USER_ID, attachments=[("digit.png", b"\x89PNG\r\n\x1a\n broken", "image/png")]
            ),
            emulator.send_message(
                DISCORD_USER_ID, attachments=[("huge.jpg", b"\xff\xd8" + bytes(300_000), "image/jpeg")]
            ),
            emulator.send_message(DISCORD_USER_ID, attachments=[("blank.jpg", blank_photo(), "image/jpeg")]),
            emulator.send_message(
                DISCORD_USER_ID,
                attachments=[
                    jpeg("one.jpg", digit_photo([mnist_digit(mnist, 1)])),
                    jpeg("two.jpg", digit_photo([mnist_digit(mnist, 2)])),
                ],
            ),
        ]
        replies = await emulator.wait_for(
            lambda: len(answers(emulator, dm)) >= 8 and answers(emulator, dm), timeout=30
        )
        # Past the limit of 5 pictures a minute: asked to slow down once, then nothing more is said.
        for number in range(2):
            emulator.send_message(DISCORD_USER_ID, attachments=[jpeg(f"more{number}.jpg", blank_photo())])
        slow = await emulator.wait_for(lambda: answers(emulator, dm)[8:], timeout=20)
        emulator.send_message(DISCORD_USER_ID, "still there?")
        await emulator.wait_for(lambda: len(answers(emulator, dm)) >= 10, timeout=20)
    texts = [reply["content"] for reply in replies]
    quoted = [reply["referenced_message"]["id"] for reply in replies]
    assert quoted == [message["id"] for message in sent[:6]] + [sent[6]["id"]] * 2
    assert "Send me a photo" in texts[0]
    assert "notes.txt isn't an image" in texts[1]
    assert "videos" in texts[2]
    assert "not an image I can read" in texts[3]
    assert "I can read images up to" in texts[4]
    assert "couldn't find any digit" in texts[5]
    assert texts[6].startswith("I read") and texts[7].startswith("I read")
    assert "a minute" in slow[0]["content"]
    assert "Send me a photo" in answers(emulator, dm)[9]["content"]  # the second refusal was silent
    assert errors(emulator) == []


async def test_buttons_keep_working_after_a_restart(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    environment = discord_environment(emulator, tmp_path, model_dir, data_dir)
    dm = emulator.dm_channel_id(DISCORD_USER_ID)
    async with running_discord_bot(environment):
        for label in (6, 8):
            emulator.send_message(
                DISCORD_USER_ID, attachments=[jpeg(f"{label}.jpg", digit_photo([mnist_digit(mnist, label)]))]
            )
        old = await emulator.wait_for(
            lambda: len(answers(emulator, dm)) == 2 and answers(emulator, dm), timeout=20
        )
    await emulator.wait_for(lambda: not emulator.is_connected)  # the first bot is gone

    async with running_discord_bot(environment):  # a new process would start just the same
        emulator.press_button(DISCORD_USER_ID, old[0], right_button(old[0]))
        emulator.press_button(DISCORD_USER_ID, old[1], wrong_button(old[1]))
        await emulator.wait_for(lambda: "recorded as right" in emulator.message(dm, old[0]["id"])["content"])
        pad = await emulator.wait_for(
            lambda: (
                "Which digit" in emulator.message(dm, old[1]["id"])["content"]
                and emulator.message(dm, old[1]["id"])
            )
        )
        emulator.press_button(DISCORD_USER_ID, pad, buttons(pad)["3"])
        await emulator.wait_for(lambda: "Corrected to 3" in emulator.message(dm, old[1]["id"])["content"])
    with database(tmp_path)() as session:
        verdicts = sorted(
            (feedback.correct, feedback.corrected_digits) for feedback in session.scalars(select(Feedback))
        )
        assert verdicts == [(False, "3"), (True, None)]
    assert errors(emulator) == []


async def test_twenty_people_sending_ten_pictures_each_are_answered_in_order_while_a_run_trains(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    photos = [digit_photo([mnist_digit(mnist, index % 10, index // 10)], seed=index) for index in range(10)]
    environment = discord_environment(
        emulator, tmp_path, model_dir, data_dir, PHOTOS_PER_MINUTE="100", TRAINING_TRAIN_LIMIT="30000"
    )
    emulator.add_member(DISCORD_ADMIN_ID)
    async with running_discord_bot(environment) as services:
        emulator.use_command(
            DISCORD_ADMIN_ID, "train", {"architecture": "dense", "epochs": 20}, channel_id=emulator.channel_id
        )
        trainer = services.trainer
        await emulator.wait_for(lambda: trainer.active is not None and trainer.active.epoch >= 1, timeout=60)
        users = [DISCORD_USER_ID + number for number in range(20)]
        sent: dict[int, list[str]] = {user: [] for user in users}
        for index, photo in enumerate(photos):
            for user in users:
                message = emulator.send_message(user, attachments=[jpeg(f"{index}.jpg", photo)])
                sent[user].append(message["id"])
        channels = {user: emulator.dm_channel_id(user) for user in users}
        for user in users:
            await emulator.wait_for(
                lambda user=user: len(answers(emulator, channels[user])) == 10, timeout=60
            )
        assert trainer.active is not None, "the run should still be going during the burst"
        emulator.use_command(DISCORD_ADMIN_ID, "cancel", channel_id=emulator.channel_id)
        await emulator.wait_for(lambda: trainer.active is None, timeout=60)

    for user in users:
        answered = [reply["referenced_message"]["id"] for reply in answers(emulator, channels[user])]
        assert answered == sent[user], f"user {user} got answers out of order"
    with database(tmp_path)() as session:
        assert len(session.scalars(select(Prediction)).all()) == 200
        assert session.scalars(select(TrainingRun)).one().status == RunStatus.CANCELLED
    assert errors(emulator) == []


async def test_the_service_runs_telegram_and_discord_together_with_one_run_at_a_time(
    emulator: DiscordEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    """`python -m bot` with both tokens: both front ends, one training run between them, a clean stop."""
    emulator.add_member(DISCORD_ADMIN_ID)
    with BotApiEmulator(token=TOKEN) as telegram:
        environment = {
            **bot_environment(telegram, tmp_path, model_dir, data_dir, TRAINING_TRAIN_LIMIT="30000"),
            **discord_environment(emulator, tmp_path, model_dir, data_dir, TRAINING_TRAIN_LIMIT="30000"),
            "LOG_LEVEL": "DEBUG",
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("TELEGRAM_", "DISCORD_"))
        }
        log_path = tmp_path / "service.log"
        with log_path.open("w") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "bot"],
                env={**inherited, **environment},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            await emulator.wait_for(
                lambda: emulator.is_connected and emulator.commands(emulator.guild_id), timeout=60
            )
            await telegram.wait_for(lambda: telegram.is_polling, timeout=30)
            telegram.send_text(ADMIN_ID, "/train dense 50")
            await telegram.wait_for(
                lambda: any(
                    "Started training run" in message["text"] for message in telegram.messages(ADMIN_ID)
                ),
                timeout=30,
            )
            busy = emulator.use_command(DISCORD_ADMIN_ID, "train", channel_id=emulator.channel_id)
            await emulator.wait_for(lambda: emulator.interaction(busy).followups, timeout=20)
            assert "already in progress" in ephemeral_answer(emulator, emulator.channel_id, busy)

            emulator.send_message(
                DISCORD_USER_ID, attachments=[jpeg("5.jpg", digit_photo([mnist_digit(mnist, 5)]))]
            )
            dm = emulator.dm_channel_id(DISCORD_USER_ID)
            [answer] = await emulator.wait_for(lambda: answers(emulator, dm), timeout=30)
            assert answer["content"].startswith("I read")
        finally:
            service.send_signal(signal.SIGTERM)
            return_code = service.wait(timeout=60)
    log_text = log_path.read_text()
    assert return_code == 0, log_text[-3000:]
    assert "Stopped" in log_text
    assert emulator.token not in log_text and TOKEN not in log_text
    await emulator.wait_for(lambda: not emulator.is_connected)
    with database(tmp_path)() as session:
        assert session.scalars(select(TrainingRun)).one().status == RunStatus.CANCELLED
