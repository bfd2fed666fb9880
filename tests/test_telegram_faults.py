"""Faults a review found in the Telegram front end, each shown fixed end to end over the emulator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from bot_support import (
    ADMIN_ID,
    USER_ID,
    bot_environment,
    button_data,
    database,
    digit_photo,
    mnist_digit,
    replies_to,
    running_bot,
)
from emulator import BotApiEmulator
from sqlalchemy import select, update

from bot.core.texts import say
from db.models import Feedback, PendingCorrection, utc_now
from mnist_engine.training.dataset import Mnist

pytestmark = pytest.mark.slow

FLOOD = 600
GROUP_ID = -1001234


async def test_a_chat_flooding_the_bot_does_not_hold_back_another(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    flooder, other = USER_ID + 1, USER_ID + 2
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        for index in range(FLOOD):
            emulator.send_text(flooder, f"hello {index}")
        emulator.send_photo(other, digit_photo([mnist_digit(mnist, 6)]))
        await emulator.wait_for(lambda: replies_to(emulator, other), timeout=60)
        # The other chat's photo came last but is answered long before the flood is: PTB's bound on
        # concurrent updates is not filled by one chat's updates waiting on each other.
        answered_flood = len(emulator.messages(flooder))  # the bot's answers in the flooding chat
        assert answered_flood < FLOOD // 4, f"{answered_flood} of the flood's {FLOOD} were answered first"
        await emulator.wait_for(lambda: len(emulator.messages(flooder)) == FLOOD, timeout=120)


async def test_a_typed_correction_counts_only_in_its_chat_and_only_for_a_while(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 4)]))
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        emulator.press_button(USER_ID, reply, button_data(reply, "no"))
        await emulator.wait_for(
            lambda: "Which digit" in emulator.message(USER_ID, reply["message_id"])["text"]
        )

        # The same person types a number in a group: that is not the correction of the private answer.
        emulator.send_text(USER_ID, "9", chat_id=GROUP_ID)
        await emulator.wait_for(lambda: emulator.messages(GROUP_ID), timeout=10)
        assert "Which digit" in emulator.message(USER_ID, reply["message_id"])["text"]

        # Too late: the pending correction expired.
        with database(tmp_path).begin() as session:
            session.execute(update(PendingCorrection).values(expires_at=utc_now() - timedelta(seconds=1)))
        emulator.send_text(USER_ID, "9")
        await emulator.wait_for(lambda: len(emulator.messages(USER_ID)) == 2, timeout=10)
        assert emulator.messages(USER_ID)[-1]["text"] == say("text_without_photo")

        # In time, in its chat: recorded.
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 2)], seed=5))
        second = (await emulator.wait_for(lambda: replies_to(emulator, USER_ID)[1:], timeout=20))[0]
        emulator.press_button(USER_ID, second, button_data(second, "no"))
        await emulator.wait_for(
            lambda: "Which digit" in emulator.message(USER_ID, second["message_id"])["text"]
        )
        emulator.send_text(USER_ID, "7")
        await emulator.wait_for(
            lambda: "Corrected to 7" in emulator.message(USER_ID, second["message_id"])["text"]
        )

    with database(tmp_path)() as session:
        assert [feedback.corrected_digits for feedback in session.scalars(select(Feedback))] == ["7"]


async def test_a_button_under_a_message_telegram_no_longer_shows_is_answered(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 1)]))
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        emulator.press_button(USER_ID, reply, button_data(reply, "ok"), inaccessible=True)
        answer = await emulator.wait_for(
            lambda: [call for call in emulator.calls if call.method == "answerCallbackQuery"], timeout=10
        )
    assert answer[0].params.get("text") == say("verdict.stale")
    assert [call for call in emulator.calls if call.status != 200] == []
    with database(tmp_path)() as session:
        assert session.scalars(select(Feedback)).all() == []


async def test_a_broken_model_pointer_is_reported_as_broken_not_as_no_model(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    (model_dir / "current").write_text("20990101-000000-small-cnn\n")  # a version that is not there
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_text(ADMIN_ID, "/start")  # the admin's chat must exist before the bot can write to it
        await emulator.wait_for(lambda: emulator.messages(ADMIN_ID))
        for seed in range(2):
            emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 3)], seed=seed))
        replies = await emulator.wait_for(
            lambda: len(replies_to(emulator, USER_ID)) == 2 and replies_to(emulator, USER_ID), timeout=20
        )
        notes = await emulator.wait_for(
            lambda: [m for m in emulator.messages(ADMIN_ID) if "can't be loaded" in m.get("text", "")]
        )
    assert [reply["text"] for reply in replies] == [say("model_broken")] * 2
    assert "20990101-000000-small-cnn" in notes[0]["text"] and len(notes) == 1  # told once, not per photo
