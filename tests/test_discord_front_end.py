"""The Discord front end's pieces without a server: settings, intents, which front ends start, views."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import discord
import pytest
from discord_emulator import TOKEN as DISCORD_TOKEN
from discord_emulator import DiscordEmulator

from bot.core.replies import MAX_ACTION_LENGTH, Action, action_string, correction_pad, verdict_buttons
from bot.discord.client import intents_for
from bot.discord.verdicts import TypeNumberButton, VerdictButton, answer_view
from bot.logs import RedactSecrets
from bot.service import front_ends
from bot.settings import SettingsError, load_settings
from mnist_engine.photo import MAX_DIGITS

TELEGRAM_TOKEN = "123456789:AAE-test-token-for-the-local-emulator01"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "DISCORD_", "ADMIN_", "HASH_", "DATABASE_URL")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    return monkeypatch


def test_a_discord_token_alone_is_enough_and_is_a_secret(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
    clean_environment.setenv("DISCORD_ADMIN_USER_IDS", "111, 222")
    clean_environment.setenv("DISCORD_GUILD_IDS", "333")
    settings = load_settings(_env_file=None)
    assert settings.telegram_bot_token is None
    assert settings.discord_admin_user_ids == {111, 222} and settings.discord_guild_ids == {333}
    assert settings.discord_api_base_url == "https://discord.com/api/v10"
    assert DISCORD_TOKEN in settings.secrets and DISCORD_TOKEN not in repr(settings)


def test_bad_discord_settings_are_explained_one_line_each(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("DISCORD_BOT_TOKEN", "123456789:AAE-this-is-a-telegram-token-not-discord")
    clean_environment.setenv("DISCORD_ADMIN_USER_IDS", "12, @bob")
    clean_environment.setenv("DISCORD_PROGRESS_CHANNEL_ID", "#admins")
    clean_environment.setenv("DISCORD_API_BASE_URL", "discord.com/api")
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    lines = str(error.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("DISCORD_BOT_TOKEN is not a Discord bot token")
    assert any(line.startswith("DISCORD_ADMIN_USER_IDS must be Discord ids") for line in lines)
    assert any(line.startswith("DISCORD_PROGRESS_CHANNEL_ID") for line in lines)
    assert any(line.startswith("DISCORD_API_BASE_URL must be an http(s) URL") for line in lines)


def test_an_empty_telegram_token_is_no_token(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("TELEGRAM_BOT_TOKEN", "")
    clean_environment.setenv("DISCORD_BOT_TOKEN", f"Bot {DISCORD_TOKEN}")  # pasted with its prefix
    settings = load_settings(_env_file=None)
    assert settings.telegram_bot_token is None and settings.discord_bot_token == DISCORD_TOKEN


@pytest.mark.parametrize(
    ("tokens", "started"),
    [
        ({}, ["running_web"]),
        ({"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN}, ["running_telegram", "running_web"]),
        ({"DISCORD_BOT_TOKEN": DISCORD_TOKEN}, ["running_discord", "running_web"]),
        (
            {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "DISCORD_BOT_TOKEN": DISCORD_TOKEN},
            ["running_telegram", "running_discord", "running_web"],
        ),
    ],
)
async def test_every_front_end_whose_token_is_set_starts(
    clean_environment: pytest.MonkeyPatch, tokens: dict[str, str], started: list[str]
) -> None:
    for name, value in tokens.items():
        clean_environment.setenv(name, value)

    class JustSettings:
        settings = load_settings(_env_file=None)

    contexts = front_ends(JustSettings())  # type: ignore[arg-type]  # only .settings is read
    names = [context.gen.__name__ for context in contexts]  # type: ignore[attr-defined]
    for context in contexts:
        await context.gen.aclose()  # type: ignore[attr-defined]  # never entered
    assert names == started


def test_the_message_content_intent_is_asked_for_only_with_reading_channels(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
    intents = intents_for(load_settings(_env_file=None))
    assert intents.guilds and intents.guild_messages and intents.dm_messages
    assert not intents.message_content and not intents.members and not intents.presences
    clean_environment.setenv("DISCORD_READING_CHANNEL_IDS", "444")
    assert intents_for(load_settings(_env_file=None)).message_content


def test_the_discord_token_never_reaches_the_log() -> None:
    record = RedactSecrets([DISCORD_TOKEN]).filter
    log_record = logging.getLogger("discord.http").makeRecord(
        "discord.http", logging.DEBUG, __file__, 1, "identify with %s", (DISCORD_TOKEN,), None
    )
    assert record(log_record) and DISCORD_TOKEN not in log_record.getMessage()


def custom_ids(view: discord.ui.View) -> list[str]:
    return [item.custom_id for item in view.children if isinstance(item, discord.ui.DynamicItem)]


async def test_every_button_fits_discord_and_matches_its_persistent_item() -> None:
    longest_pad = correction_pad(10**11, "1" * MAX_DIGITS, "9" * (MAX_DIGITS - 1))
    views = [
        answer_view(longest_pad, pad_for=10**11),
        answer_view(correction_pad(42, "7", "")),
    ]
    verdicts = answer_view(type(longest_pad)("I read 7", verdict_buttons(42)))
    assert verdicts is not None and custom_ids(verdicts) == ["digitbot:ok:42", "digitbot:no:42"]
    for view in views:
        assert view is not None
        rows = {item.row for item in view.children}
        assert len(rows) <= 5 and all(len(custom_id) <= 100 for custom_id in custom_ids(view))
        for custom_id in custom_ids(view):
            persistent = VerdictButton.__discord_ui_compiled_template__.fullmatch(custom_id) or (
                TypeNumberButton.__discord_ui_compiled_template__.fullmatch(custom_id)
            )
            assert persistent, custom_id
    assert "digitbot:ty:100000000000" in custom_ids(views[0])
    assert len("digitbot:" + action_string(Action.TYPE, 10**11, "9" * MAX_DIGITS)) <= 100
    assert MAX_ACTION_LENGTH + len("digitbot:") <= 100
    assert not re.fullmatch(VerdictButton.__discord_ui_compiled_template__, "digitbot:zz:1")


@pytest.mark.parametrize(
    ("setting", "intent_enabled", "said"),
    [
        (
            {"DISCORD_BOT_TOKEN": "MTAwMDAwMDAwMDAwMDAwMDAx.Gwrong.not-the-token-the-emulator-expects-0001"},
            True,
            "refused DISCORD_BOT_TOKEN",
        ),
        ({"DISCORD_READING_CHANNEL_IDS": "1"}, False, "refused the message-content intent"),
    ],
)
def test_a_discord_connection_refused_at_start_is_one_clear_line(
    tmp_path: Path, setting: dict[str, str], intent_enabled: bool, said: str
) -> None:
    with DiscordEmulator(message_content_intent_enabled=intent_enabled) as emulator:
        environment = {
            **{
                name: value
                for name, value in os.environ.items()
                if not name.startswith(("TELEGRAM_", "DISCORD_"))
            },
            "DISCORD_BOT_TOKEN": emulator.token,
            "DISCORD_API_BASE_URL": emulator.api_base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
            "MNIST_MODEL_DIR": str(tmp_path / "models"),
            "PYTHONPATH": str(PROJECT_ROOT),
            **setting,
        }
        completed = subprocess.run(
            [sys.executable, "-m", "bot"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=environment,
            timeout=120,
        )
    assert completed.returncode == 2
    [line] = [line for line in completed.stderr.splitlines() if line.startswith("mnist-digit-bot:")]
    assert said in line and "Traceback" not in completed.stderr
    assert emulator.token not in completed.stderr


def test_front_ends_share_only_the_core() -> None:
    """bot/core imports no chat library; the Discord and Telegram front ends know nothing of each other."""
    rules = {
        "core": ("import discord", "from discord", "import telegram", "from telegram"),
        "discord": ("import telegram", "from telegram", "from bot.telegram", "import bot.telegram"),
        "telegram": ("import discord", "from discord", "from bot.discord", "import bot.discord"),
    }
    for folder, forbidden in rules.items():
        for source in (PROJECT_ROOT / "bot" / folder).rglob("*.py"):
            lines = source.read_text().splitlines()
            for line in lines:
                assert not line.strip().startswith(forbidden), f"bot/{folder}/{source.name}: {line.strip()}"
