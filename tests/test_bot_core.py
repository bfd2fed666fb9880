"""The bot's decisions and words, without Telegram: settings, replies, limits, progress."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.app import RedactToken
from bot.core import replies
from bot.core.progress import RunProgress, Throttle, progress_bar, progress_text, summary_text
from bot.core.ratelimit import SlidingWindowLimiter
from bot.settings import SettingsError, load_settings
from mnist_engine.photo import DigitCrop
from mnist_engine.recognize import ReadDigit, Recognition

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
    handler_filter = RedactToken(TOKEN)
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
    assert TOKEN not in record.getMessage() and "<TOKEN>" in record.getMessage()


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


def test_buttons_fit_telegram_limits() -> None:
    pad = replies.correction_pad(2**40, "2026", "20261234")
    data = [button.data for row in pad.buttons for button in row]
    assert all(len(item.encode()) <= 64 for item in data)
    assert "sv:1099511627776:20261234" in data
    single = replies.correction_pad(5, "7", "")
    assert sorted(button.data for row in single.buttons for button in row) == [f"sv:5:{d}" for d in range(10)]


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


def test_sliding_window_limit_per_user() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(limit=2, window_seconds=60, clock=lambda: now[0])
    assert limiter.try_acquire(1) == 0 and limiter.try_acquire(1) == 0
    assert limiter.try_acquire(1) == pytest.approx(60)
    assert limiter.try_acquire(2) == 0  # other users are not affected
    now[0] = 61
    assert limiter.try_acquire(1) == 0


def test_throttle_allows_one_action_per_interval() -> None:
    now = [100.0]
    throttle = Throttle(3.0, clock=lambda: now[0])
    assert throttle.ready() and not throttle.ready()
    now[0] = 102.0
    assert not throttle.ready() and throttle.seconds_until_ready() == pytest.approx(1.0)
    now[0] = 103.0
    assert throttle.ready()


def test_progress_and_summary_texts() -> None:
    run = RunProgress(run_id=3, trigger="manual", architecture="dense", total_epochs=4, requested_by="Ada")
    run.apply(
        {
            "event": "epoch",
            "epoch": 2,
            "total_epochs": 4,
            "progress": 0.5,
            "eta_seconds": 90,
            "elapsed_seconds": 90,
            "metrics": {"loss": 0.1, "accuracy": 0.97, "val_accuracy": 0.98, "learning_rate": 0.001},
        }
    )
    run.apply({"event": "lr_reduced", "epoch": 2, "message": "Learning rate reduced to 0.0005"})
    text = progress_text(run)
    assert progress_bar(0.5) in text and "Epoch 2/4" in text and "ETA 2 min" in text
    assert "val accuracy 98.00%" in text and "Learning rate reduced" in text
    run.status = "succeeded"
    run.result = {
        "test_accuracy": 0.981,
        "test_loss": 0.06,
        "best_val_accuracy": 0.983,
        "epochs_done": 4,
        "seconds": 300,
        "promoted": False,
        "promotion_reason": "test accuracy below the current model",
        "version": "v1",
        "extra_train_samples": 40,
        "extra_holdout_accuracy": 0.9,
    }
    summary = summary_text(run)
    assert "Not promoted: test accuracy below" in summary and "40 user samples" in summary


def test_core_never_imports_telegram() -> None:
    for source in (PROJECT_ROOT / "bot" / "core").glob("*.py"):
        text = source.read_text()
        assert "import telegram" not in text and "from telegram" not in text, source.name
