"""The service's decisions and words, without any chat library: settings, replies, limits, progress."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.core import replies
from bot.core.progress import RunProgress, Throttle, progress_bar, progress_text, summary_text
from bot.core.rate_limit import PictureRateLimit
from bot.core.replies import MAX_ACTION_LENGTH, Action, parse_action
from bot.core.texts import ENGLISH, TEXTS, say
from bot.logs import RedactSecrets
from bot.settings import SettingsError, load_settings
from db.models import RunStatus, RunTrigger
from mnist_engine.photo import MAX_DIGITS, DigitCrop, ReadDigit, Recognition
from mnist_engine.training.events import RunReport, TrainingEvent

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAE-test-token-for-the-local-emulator01"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "ADMIN_", "RETRAIN_", "PHOTOS_", "HASH_", "DATABASE_URL")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_settings_explain_every_problem_in_one_line_each(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("TELEGRAM_BOT_TOKEN", "not-a-token")
    clean_environment.setenv("ADMIN_USER_IDS", "12, bob")
    clean_environment.setenv("RETRAIN_SCHEDULE", "every sunday")
    clean_environment.setenv("RETRAIN_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    lines = str(error.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("TELEGRAM_BOT_TOKEN is not a bot token")
    assert any(line.startswith("ADMIN_USER_IDS must be Telegram user ids") for line in lines)
    assert any(line.startswith("RETRAIN_SCHEDULE is not a crontab line") for line in lines)
    assert any(line.startswith("RETRAIN_TIMEZONE is not a time zone") for line in lines)


def test_settings_defaults_and_parsing(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    clean_environment.setenv("ADMIN_USER_IDS", "12, 34")
    clean_environment.setenv("MNIST_DATA_DIR", str(tmp_path))
    settings = load_settings(_env_file=None)
    assert settings.admin_user_ids == {12, 34}
    assert settings.progress_chat_ids == [12, 34]
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.as_posix()}/bot.sqlite3"
    trigger = settings.retrain_trigger()
    assert str(trigger.fields[4]) == "sun"  # day names: in APScheduler 3, 0 is Monday
    assert TOKEN not in repr(settings)


def test_hashing_ids_needs_a_secret(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    clean_environment.setenv("HASH_USER_IDS", "true")
    with pytest.raises(SettingsError, match="USER_ID_SECRET"):
        load_settings(_env_file=None)


def test_running_without_a_token_prints_one_clear_line(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")}
    completed = subprocess.run(
        [sys.executable, "-m", "bot"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=60,
    )
    assert completed.returncode == 2
    assert "@BotFather" in completed.stderr and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 2  # "cannot start:" and the reason


def test_the_token_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("httpx")
    handler_filter = RedactSecrets([TOKEN])
    record = logger.makeRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: POST %s",
        (f"https://api.telegram.org/bot{TOKEN}/getUpdates",),
        None,
    )
    assert handler_filter.filter(record)
    assert TOKEN not in record.getMessage() and "<SECRET>" in record.getMessage()


def reading(*digits: tuple[int, float, int, float]) -> Recognition:
    crops = [
        DigitCrop(image=np.zeros((28, 28), np.uint8), box=(index * 30, 0, index * 30 + 20, 20), line=0)
        for index in range(len(digits))
    ]
    read = [
        ReadDigit(digit, confidence, runner_up, runner_up_confidence, crop)
        for (digit, confidence, runner_up, runner_up_confidence), crop in zip(digits, crops, strict=True)
    ]
    return Recognition(digits=read, text="".join(str(digit.digit) for digit in read))


def test_a_sure_reading_and_an_unsure_one() -> None:
    assert replies.reading_text(reading((7, 0.98, 1, 0.01))) == "I read: 7 (98% sure)."
    unsure = replies.reading_text(reading((7, 0.55, 1, 0.40)))
    assert "It might also be 1 (40%)" in unsure
    number = replies.reading_text(reading((2, 0.99, 7, 0.01), (0, 0.6, 6, 0.3)))
    assert number.startswith("I read the number 20 (59% sure).")
    assert "digit 2 could be 0 (60%) or 6 (30%)" in number


def test_an_unsure_answer_offers_its_two_best_readings() -> None:
    sure = replies.reading_reply(reading((7, 0.98, 1, 0.01)), prediction_id=5)
    assert [[button.action for button in row] for row in sure.buttons] == [["ok:5", "no:5"]]
    unsure = replies.reading_reply(reading((2, 0.99, 7, 0.01), (0, 0.6, 6, 0.3)), prediction_id=5)
    labels = [[button.label for button in row] for row in unsure.buttons]
    actions = [[button.action for button in row] for row in unsure.buttons]
    # The second reading changes the least sure digit; choosing it stores it as the correction.
    assert labels == [["✅ 20", "✅ 26"], ["❌ Neither — correct it"]]
    assert actions == [["ok:5", "sv:5:26"], ["no:5"]]


def test_buttons_fit_telegram_limits_however_long_the_typed_number() -> None:
    # The longest prediction id Telegram's 64 bytes must hold, and far more digits than allowed.
    pad = replies.correction_pad(10**12 - 1, "2026", "9" * 40)
    actions = [button.action for row in pad.buttons for button in row]
    assert max(len(action.encode()) for action in actions) <= min(64, MAX_ACTION_LENGTH)
    save = next(action for action in actions if action.startswith("sv:"))
    pressed = parse_action(save)
    assert pressed is not None and pressed.typed == "9" * MAX_DIGITS
    # A full number offers no more digits, only ⌫ and Save.
    assert not any(action.startswith("fx:") and len(action.split(":")[2]) > MAX_DIGITS for action in actions)
    single = replies.correction_pad(5, "7", "")
    assert sorted(button.action for row in single.buttons for button in row) == [
        f"sv:5:{d}" for d in range(10)
    ]


def test_action_strings_round_trip_and_foreign_ones_are_ignored() -> None:
    assert parse_action("ok:42") == replies.PressedButton(Action.RIGHT, 42)
    assert parse_action("fx:42:20") == replies.PressedButton(Action.TYPE, 42, "20")
    assert parse_action("fx:42:") == replies.PressedButton(Action.TYPE, 42, "")
    for foreign in ("", "ok", "zz:1", "ok:abc", "sv:1:12a", "sv:1:" + "1" * (MAX_DIGITS + 1), "ok:1:2:3"):
        assert parse_action(foreign) is None, foreign


def test_every_language_has_every_text() -> None:
    for language, texts in TEXTS.items():
        assert set(texts) == set(ENGLISH), language
    assert say("rate_limited", limit=20, seconds=3).startswith("You're sending pictures faster")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026", "2026"),
        (" 20 26 ", "2026"),
        ("7", "7"),
        ("two", None),
        ("", None),
        ("1" * 25, None),
        ("١٢", None),
    ],
)
def test_typed_corrections(typed: str, expected: str | None) -> None:
    assert replies.parse_correction(typed) == expected


def test_rate_limit_per_person_tells_a_flood_once() -> None:
    limit = PictureRateLimit(per_minute=2)
    assert limit.admit("telegram:1") is None and limit.admit("telegram:1") is None
    refused = limit.admit("telegram:1")
    assert refused is not None and refused.tell and 0 < refused.wait_seconds <= 60
    again = limit.admit("telegram:1")
    assert again is not None and not again.tell  # a flood hears it once a minute, not per picture
    assert limit.admit("telegram:2") is None  # other people are not affected


def test_throttle_allows_one_action_per_interval() -> None:
    now = [100.0]
    throttle = Throttle(3.0, clock=lambda: now[0])
    assert throttle.ready() and not throttle.ready()
    now[0] = 102.0
    assert not throttle.ready() and throttle.seconds_until_ready() == pytest.approx(1.0)
    now[0] = 103.0
    assert throttle.ready()


def test_progress_and_summary_texts() -> None:
    run = RunProgress(
        run_id=3, trigger=RunTrigger.MANUAL, architecture="dense", total_epochs=4, requested_by="Ada"
    )
    run.apply(
        TrainingEvent(
            kind="epoch",
            epoch=2,
            total_epochs=4,
            progress=0.5,
            eta_seconds=90,
            elapsed_seconds=90,
            metrics={"loss": 0.1, "accuracy": 0.97, "val_accuracy": 0.98, "learning_rate": 0.001},
        )
    )
    run.apply(TrainingEvent(kind="lr_reduced", epoch=2, metrics={"learning_rate": 0.0005}))
    text = progress_text(run)
    assert progress_bar(0.5) in text and "Epoch 2/4" in text and "ETA 2 min" in text
    assert "val accuracy 98.00%" in text and "Learning rate reduced to 0.0005" in text
    assert run.history == [
        {"epoch": 2.0, "loss": 0.1, "accuracy": 0.97, "val_accuracy": 0.98, "learning_rate": 0.001}
    ]
    run.status = RunStatus.SUCCEEDED
    run.report = RunReport(
        version="v1",
        architecture="dense",
        epochs_done=4,
        cancelled=False,
        promoted=False,
        promotion_reason="does not read users' digits better",
        seconds=300,
        best_val_accuracy=0.983,
        test_accuracy=0.981,
        test_loss=0.06,
        extra_train_samples=40,
        users_accuracy=0.9,
        current_test_accuracy=0.985,
        current_users_accuracy=0.92,
    )
    summary = summary_text(run)
    assert "Not promoted: does not read users' digits better" in summary and "40 user samples" in summary
    assert "MNIST 98.50%, users' digits 92.00%" in summary


def test_core_never_imports_a_chat_library_or_a_web_framework() -> None:
    forbidden = ("telegram", "discord", "starlette", "fastapi", "uvicorn", "aiohttp")
    for source in (PROJECT_ROOT / "bot" / "core").glob("*.py"):
        text = source.read_text()
        for library in forbidden:
            assert f"import {library}" not in text and f"from {library}" not in text, (source.name, library)
