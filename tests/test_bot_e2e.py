"""End to end over real HTTP: the real Application, a local Bot API emulator, real models and SQLite."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from bot_support import (
    ADMIN_ID,
    TOKEN,
    USER_ID,
    blank_photo,
    bot_environment,
    button_data,
    database,
    digit_photo,
    mnist_digit,
    replies_to,
    running_bot,
)
from emulator import BotApiEmulator
from sqlalchemy import select

from db import repository
from db.models import DigitSample, Feedback, Prediction, RunStatus, TrainingRun
from db.session import upgrade
from mnist_engine.registry import ModelRegistry
from mnist_engine.training.dataset import Mnist

pytestmark = pytest.mark.slow


def no_api_errors(emulator: BotApiEmulator) -> list:
    return [(call.method, call.status, call.error) for call in emulator.calls if call.status != 200]


async def test_photo_is_answered_with_buttons_and_a_verdict_is_stored(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        sent = emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 7)]))
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        assert reply["reply_to_message"]["message_id"] == sent["message_id"]  # quotes the photo
        assert reply["text"].startswith("I read: 7")
        buttons = [button for row in reply["reply_markup"]["inline_keyboard"] for button in row]
        assert [button["text"] for button in buttons] == ["✅ Right", "❌ Wrong — correct it"]

        emulator.press_button(USER_ID, reply, buttons[0]["callback_data"])
        edited = await emulator.wait_for(
            lambda: (
                "recorded as right" in emulator.message(USER_ID, reply["message_id"])["text"]
                and emulator.message(USER_ID, reply["message_id"])
            ),
            timeout=10,
        )
        assert "reply_markup" not in edited  # buttons removed once the verdict is in

    with database(tmp_path)() as session:
        prediction = session.scalars(select(Prediction)).one()
        assert prediction.digits == "7" and prediction.source == "photo"
        assert prediction.message_id == sent["message_id"]
        assert session.scalars(select(Feedback)).one().correct is True
        [sample] = session.scalars(select(DigitSample)).all()
        assert len(sample.pixels) == 784 and sample.label == 7
    assert no_api_errors(emulator) == []


async def test_a_correction_typed_or_tapped_lands_in_the_database(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 4)]))
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        wrong = button_data(reply, "no")
        emulator.press_button(USER_ID, reply, wrong)
        pad = await emulator.wait_for(
            lambda: (
                "Which digit" in emulator.message(USER_ID, reply["message_id"])["text"]
                and emulator.message(USER_ID, reply["message_id"])
            )
        )
        labels = [button["text"] for row in pad["reply_markup"]["inline_keyboard"] for button in row]
        assert sorted(labels) == [str(digit) for digit in range(10)]
        emulator.send_text(USER_ID, "9")  # a typed correction
        await emulator.wait_for(
            lambda: "Corrected to 9" in emulator.message(USER_ID, reply["message_id"])["text"]
        )

        # A second photo, corrected by tapping a digit on the pad.
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 2)], seed=3))
        second = (await emulator.wait_for(lambda: replies_to(emulator, USER_ID)[1:], timeout=20))[0]
        emulator.press_button(USER_ID, second, button_data(second, "no"))
        pad = await emulator.wait_for(
            lambda: (
                emulator.message(USER_ID, second["message_id"]).get("reply_markup")
                and "Which digit" in emulator.message(USER_ID, second["message_id"])["text"]
                and emulator.message(USER_ID, second["message_id"])
            )
        )
        five = next(
            button
            for row in pad["reply_markup"]["inline_keyboard"]
            for button in row
            if button["text"] == "5"
        )
        emulator.press_button(USER_ID, pad, five["callback_data"])
        await emulator.wait_for(
            lambda: "Corrected to 5" in emulator.message(USER_ID, second["message_id"])["text"]
        )

    with database(tmp_path)() as session:
        verdicts = {feedback.prediction_id: feedback for feedback in session.scalars(select(Feedback))}
        assert sorted(feedback.corrected_digits for feedback in verdicts.values()) == ["5", "9"]
        assert all(not feedback.correct for feedback in verdicts.values())
        assert sorted(sample.label for sample in session.scalars(select(DigitSample))) == [5, 9]
    assert no_api_errors(emulator) == []


async def test_a_number_is_read_left_to_right(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    digits = [mnist_digit(mnist, label) for label in (2, 0, 2, 6)]
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_photo(USER_ID, digit_photo(digits, size=(1280, 600)))
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
    assert reply["text"].startswith("I read the number 2026")


async def test_bad_input_gets_a_clear_reply_and_nothing_crashes(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path
) -> None:
    environment = bot_environment(emulator, tmp_path, model_dir, data_dir, MAX_FILE_BYTES="200000")
    async with running_bot(environment):
        emulator.send_sticker(USER_ID)
        emulator.send_animation(USER_ID)
        emulator.send_document(USER_ID, b"just some notes", file_name="notes.txt", mime_type="text/plain")
        emulator.send_document(
            USER_ID, b"\x89PNG\r\n\x1a\n broken", file_name="digit.png", mime_type="image/png"
        )
        emulator.send_document(
            USER_ID, b"\xff\xd8" + bytes(300_000), file_name="huge.jpg", mime_type="image/jpeg"
        )
        emulator.send_photo(USER_ID, blank_photo())
        emulator.send_text(USER_ID, "hello")
        answers = await emulator.wait_for(
            lambda: len(emulator.messages(USER_ID)) >= 7 and emulator.messages(USER_ID), timeout=20
        )
        texts = [message["text"] for message in answers]
    assert "sticker" in texts[0]
    assert "animations" in texts[1]
    assert "isn't an image" in texts[2]
    assert (
        "truncated" in texts[3].lower()
        or "can't read" in texts[3].lower()
        or "not an image" in texts[3].lower()
    )
    assert "I can read images up to" in texts[4]
    assert "couldn't find any digit" in texts[5]
    assert "Send me a photo" in texts[6]
    assert no_api_errors(emulator) == []


async def test_photos_per_minute_are_limited_per_user(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    environment = bot_environment(emulator, tmp_path, model_dir, data_dir, PHOTOS_PER_MINUTE="2")
    photo = digit_photo([mnist_digit(mnist, 1)])
    async with running_bot(environment):
        for _ in range(3):
            emulator.send_photo(USER_ID, photo)
        emulator.send_photo(USER_ID + 1, photo)  # another user is not affected
        answers = await emulator.wait_for(
            lambda: len(replies_to(emulator, USER_ID)) == 3 and replies_to(emulator, USER_ID), timeout=20
        )
        other = await emulator.wait_for(lambda: replies_to(emulator, USER_ID + 1), timeout=20)
    assert [answer["text"].startswith("I read") for answer in answers] == [True, True, False]
    assert "a minute" in answers[2]["text"]
    assert other[0]["text"].startswith("I read")


async def test_admin_commands_are_refused_to_other_users(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path
) -> None:
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        for command in ("/train", "/stats", "/cancel", "/model"):
            emulator.send_text(USER_ID, command)
        answers = await emulator.wait_for(
            lambda: len(emulator.messages(USER_ID)) == 4 and emulator.messages(USER_ID), timeout=10
        )
    assert all("only the bot's administrators" in answer["text"] for answer in answers)
    with database(tmp_path)() as session:
        assert session.scalars(select(TrainingRun)).all() == []


async def test_admin_train_reports_progress_records_promotes_and_reloads(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    before = ModelRegistry(model_dir).current_version()
    async with running_bot(
        bot_environment(emulator, tmp_path, model_dir, data_dir, PROMOTION_TOLERANCE="0.1")
    ) as services:
        emulator.send_text(ADMIN_ID, "/train dense 3")
        # The trainer runs at a lower priority, and sees none of the service's secrets.
        trainer_pid = await emulator.wait_for(lambda: services.trainer.trainer_pid, timeout=30)
        # The child lowers its own priority first thing (os.nice), so give it a moment to get there.
        await emulator.wait_for(lambda: _niceness(trainer_pid) == 10, timeout=30)
        environment = Path(f"/proc/{trainer_pid}/environ").read_bytes()
        assert TOKEN.encode() not in environment and b"DATABASE_URL" not in environment
        summary = await emulator.wait_for(
            lambda: [
                message for message in emulator.messages(ADMIN_ID) if "finished" in message.get("caption", "")
            ],
            timeout=120,
        )
        assert "Promoted" in summary[0]["caption"]
        progress = next(
            message for message in emulator.messages(ADMIN_ID) if "Training run #" in message.get("text", "")
        )
        assert "Epoch 3/3" in progress["text"] and "100%" in progress["text"]
        edits = [
            call
            for call in emulator.calls
            if call.method == "editMessageText"
            and str(call.params.get("message_id")) == str(progress["message_id"])
        ]
        assert edits, "the progress message was never edited"
        edit_times = [call.at for call in edits]
        # At most one edit per 3 seconds (the final one may follow the last throttled edit sooner).
        assert all(later - earlier >= 2.9 for earlier, later in pairwise(edit_times[:-1]))

        after = ModelRegistry(model_dir).current_version()
        assert after != before
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 3)]))
        await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)

    with database(tmp_path)() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.status == RunStatus.SUCCEEDED and run.trigger == "manual" and run.promoted
        assert [epoch.epoch for epoch in run.epochs] == [1, 2, 3]
        assert run.model_version == after and run.test_accuracy > 0.7
        assert session.scalars(select(Prediction)).one().model_version == after
    assert no_api_errors(emulator) == []


def _niceness(pid: int) -> int:
    """A process's nice value, from /proc (field 19 of its stat line)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


async def test_a_crashing_run_is_marked_failed_and_admins_are_told_why(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path
) -> None:
    broken_data = tmp_path / "broken-data"
    broken_data.mkdir()
    (broken_data / "mnist.npz").write_bytes(b"this is not MNIST")
    before = ModelRegistry(model_dir).current_version()
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, broken_data)):
        emulator.send_text(ADMIN_ID, "/train dense 1")
        failure = await emulator.wait_for(
            lambda: [
                message for message in emulator.messages(ADMIN_ID) if "failed" in message.get("text", "")
            ],
            timeout=60,
        )
    assert "mnist.npz" in failure[0]["text"]
    assert ModelRegistry(model_dir).current_version() == before
    with database(tmp_path)() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.status == RunStatus.FAILED and "mnist.npz" in run.error


async def test_burst_from_twenty_users_is_answered_in_order_while_training(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    photos = [digit_photo([mnist_digit(mnist, index % 10, index // 10)], seed=index) for index in range(10)]
    environment = bot_environment(
        emulator, tmp_path, model_dir, data_dir, PHOTOS_PER_MINUTE="100", TRAINING_TRAIN_LIMIT="30000"
    )
    async with running_bot(environment) as services:
        emulator.send_text(ADMIN_ID, "/train dense 20")
        trainer = services.trainer
        await emulator.wait_for(lambda: trainer.active is not None and trainer.active.epoch >= 1, timeout=60)
        users = [USER_ID + number for number in range(20)]
        sent = {user: [emulator.send_photo(user, photo)["message_id"] for photo in photos] for user in users}
        for user in users:
            await emulator.wait_for(lambda user=user: len(replies_to(emulator, user)) == 10, timeout=60)
        assert trainer.active is not None, "the run should still be going during the burst"
        emulator.send_text(ADMIN_ID, "/cancel")
        await emulator.wait_for(lambda: trainer.active is None, timeout=60)

    for user in users:
        answered = [reply["reply_to_message"]["message_id"] for reply in replies_to(emulator, user)]
        assert answered == sent[user], f"user {user} got answers out of order"
    with database(tmp_path)() as session:
        assert len(session.scalars(select(Prediction)).all()) == 200
        assert session.scalars(select(TrainingRun)).one().status == RunStatus.CANCELLED
    assert no_api_errors(emulator) == []


async def test_first_run_trains_a_model_and_answers_warming_up_meanwhile(
    emulator: BotApiEmulator, tmp_path: Path, data_dir: Path, mnist: Mnist
) -> None:
    empty_models = tmp_path / "no-models-yet"
    async with running_bot(
        bot_environment(
            emulator, tmp_path, empty_models, data_dir, TRAINING_TRAIN_LIMIT="8000", RETRAIN_EPOCHS="2"
        )
    ) as services:
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 0)]))
        [warming] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        assert "warming up" in warming["text"]
        trainer = services.trainer
        await emulator.wait_for(lambda: trainer.active is None, timeout=120)
        assert ModelRegistry(empty_models).current_version() is not None
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 0)]))
        answers = await emulator.wait_for(lambda: replies_to(emulator, USER_ID)[1:], timeout=20)
    assert answers[0]["text"].startswith("I read")
    with database(tmp_path)() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.trigger == "first_run" and run.status == RunStatus.SUCCEEDED


async def test_a_first_start_serves_the_shipped_model_at_once(
    emulator: BotApiEmulator, tmp_path: Path, data_dir: Path, mnist: Mnist
) -> None:
    empty_models = tmp_path / "no-models-yet"
    environment = bot_environment(emulator, tmp_path, empty_models, data_dir, SHIPPED_MODEL="1")
    async with running_bot(environment) as services:
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 7)]))
        [answer] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        assert services.trainer.active is None  # no first run: nothing to wait for
    assert answer["text"].startswith("I read: 7")
    served = ModelRegistry(empty_models).current_metadata()
    assert served is not None and "shipped_as" in served
    with database(tmp_path)() as session:
        assert session.scalars(select(TrainingRun)).all() == []


async def test_shutdown_cancels_a_running_training_and_records_it(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path
) -> None:
    async with running_bot(
        bot_environment(emulator, tmp_path, model_dir, data_dir, TRAINING_TRAIN_LIMIT="30000")
    ) as services:
        emulator.send_text(ADMIN_ID, "/train dense 50")
        trainer = services.trainer
        await emulator.wait_for(lambda: trainer.active is not None and trainer.active.epoch >= 1, timeout=60)
        emulator.send_text(ADMIN_ID, "/train")
        busy = await emulator.wait_for(
            lambda: [
                message
                for message in emulator.messages(ADMIN_ID)
                if "already in progress" in message.get("text", "")
            ]
        )
        assert "% done" in busy[0]["text"]
    with database(tmp_path)() as session:
        assert session.scalars(select(TrainingRun)).one().status == RunStatus.CANCELLED


async def test_stats_and_model_for_admins(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 8)]))
        await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        emulator.send_text(ADMIN_ID, "/model")
        emulator.send_text(ADMIN_ID, "/stats")
        await emulator.wait_for(lambda: len(emulator.messages(ADMIN_ID)) >= 2, timeout=30)
        model_reply, stats_reply = emulator.messages(ADMIN_ID)[:2]
    assert "Serving model" in model_reply["text"] and "Test accuracy" in model_reply["text"]
    assert "photo" in stats_reply and "Predictions: 1 today" in stats_reply["caption"]
    assert emulator.uploaded_files(ADMIN_ID)[0][:4] == b"\x89PNG"


async def test_scheduled_retraining_skips_without_corrections_then_learns_from_them(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    environment = bot_environment(
        emulator,
        tmp_path,
        model_dir,
        data_dir,
        RETRAIN_MIN_NEW_SAMPLES="1",
        RETRAIN_SCHEDULE="30 2 * * mon-fri",
        RETRAIN_TIMEZONE="Europe/Berlin",
        RETRAIN_ARCHITECTURE="small-cnn",  # the serving model's: the scheduled run fine-tunes it
    )
    serving = ModelRegistry(model_dir).current_version()
    async with running_bot(environment) as services:
        job = services.schedule.scheduler.get_job("scheduled-retraining")
        assert job.misfire_grace_time == 6 * 3600 and job.coalesce
        assert (
            job.next_run_time is not None
            and job.next_run_time.weekday() < 5
            and str(job.next_run_time.tzinfo) == "Europe/Berlin"
        )
        emulator.send_text(ADMIN_ID, "/start")  # the admin's chat must exist before the bot can write to it
        await emulator.wait_for(lambda: emulator.messages(ADMIN_ID))

        await services.schedule.retrain()
        await emulator.wait_for(
            lambda: any("skipped" in message.get("text", "") for message in emulator.messages(ADMIN_ID))
        )

        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 5)]))
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=20)
        emulator.press_button(USER_ID, reply, button_data(reply, "ok"))
        await emulator.wait_for(lambda: "recorded" in emulator.message(USER_ID, reply["message_id"])["text"])
        await services.schedule.retrain()
        trainer = services.trainer
        await emulator.wait_for(
            lambda: (
                trainer.active is None
                and [
                    message
                    for message in emulator.messages(ADMIN_ID)
                    if "finished" in message.get("caption", "") + message.get("text", "")
                ]
            ),
            timeout=120,
        )
    with database(tmp_path)() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.trigger == "scheduled" and run.user_samples == 1 and run.status == RunStatus.SUCCEEDED
    registry = ModelRegistry(model_dir)
    newest = registry.metadata(registry.versions()[-1])
    assert newest["parameters"]["initial_model"] == str(model_dir / str(serving) / "model.keras")
    assert newest["epochs_done"] == 2


async def test_a_run_left_running_by_a_restart_is_marked_interrupted(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path
) -> None:
    upgrade(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    with database(tmp_path).begin() as session:
        repository.start_run(
            session, trigger="manual", requested_by="Ada", architecture="dense", parameters={}
        )
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        pass
    with database(tmp_path)() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.status == RunStatus.INTERRUPTED and run.finished_at is not None


async def test_in_a_group_only_the_sender_can_judge_an_answer(
    emulator: BotApiEmulator, tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    group = -1001234
    async with running_bot(bot_environment(emulator, tmp_path, model_dir, data_dir)):
        emulator.send_photo(USER_ID, digit_photo([mnist_digit(mnist, 3)]), chat_id=group)
        [reply] = await emulator.wait_for(lambda: replies_to(emulator, group), timeout=20)
        right = button_data(reply, "ok")
        emulator.press_button(USER_ID + 5, reply, right, chat_id=group)
        refusal = await emulator.wait_for(
            lambda: [call for call in emulator.calls if call.method == "answerCallbackQuery"]
        )
        assert "Only the person who sent the picture" in refusal[0].params["text"]
        assert "reply_markup" in emulator.message(group, reply["message_id"])  # still open
        emulator.press_button(USER_ID, reply, right, chat_id=group)
        await emulator.wait_for(
            lambda: "recorded as right" in emulator.message(group, reply["message_id"])["text"]
        )
