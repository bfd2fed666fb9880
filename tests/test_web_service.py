"""The web app in the running service: `python -m bot` without a token, a run followed live over
server-sent events, the per-client picture limit, and the canvas as a Telegram Web App."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bot_support import TOKEN, USER_ID, bot_environment, digit_photo, mnist_digit, replies_to
from emulator import BotApiEmulator
from sqlalchemy import select
from web_support import running_web, sign_init_data, signed_in_admin, visitor, web_environment

from bot.core.texts import say
from bot.web.keys import admin_token
from bot.web.telegram_web_app import InitDataInvalid, verify_init_data
from db.models import Prediction, TrainingRun
from mnist_engine.registry import ModelRegistry
from mnist_engine.training.dataset import Mnist

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# --- Telegram's initData, checked as Telegram specifies ------------------------------------------


def test_init_data_signed_by_telegram_is_accepted_and_anything_else_refused() -> None:
    # A known answer from aiogram's test suite: initData signed for the token "42:TEST".
    signed = (
        "auth_date=1650385342&user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D&query_id=test"
        "&hash=46d2ea5e32911ec8d30999b56247654460c0d20949b6277af519e76271182803"
    )
    user = verify_init_data(signed, "42:TEST", now=1650385342 + 60)
    assert (user.id, user.first_name) == (42, "Test")
    with pytest.raises(InitDataInvalid, match="signature"):
        verify_init_data(signed, "42:OTHER", now=1650385342 + 60)
    with pytest.raises(InitDataInvalid, match="signature"):
        verify_init_data(signed.replace("%3A42", "%3A43"), "42:TEST", now=1650385342 + 60)
    with pytest.raises(InitDataInvalid, match="too old"):
        verify_init_data(signed, "42:TEST", now=1650385342 + 2 * 24 * 3600)
    for hostile in ("", "no-equals-sign", "hash=" + "0" * 64, "x" * 5000):
        with pytest.raises(InitDataInvalid):
            verify_init_data(hostile, "42:TEST")


def test_an_unset_admin_token_is_generated_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from bot.settings import load_settings

    settings = load_settings(_env_file=None, ADMIN_TOKEN="")
    with caplog.at_level("WARNING", logger="bot.web.keys"):
        token = admin_token(settings)
    assert len(token) >= 24 and [record.getMessage().count(token) for record in caplog.records] == [1]
    assert admin_token(load_settings(_env_file=None, ADMIN_TOKEN="x" * 20)) == "x" * 20


# --- The service --------------------------------------------------------------------------------

pytestmark = pytest.mark.slow


def test_make_run_without_a_token_serves_the_web_app(tmp_path: Path, model_dir: Path, data_dir: Path) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("TELEGRAM_", "WEB_"))
    }
    environment.update(
        PYTHONPATH=str(PROJECT_ROOT),
        WEB_PORT="0",
        MNIST_MODEL_DIR=str(model_dir),
        MNIST_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        WEB_SECRET_KEY="k" * 40,
    )
    service = subprocess.Popen(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        address = None
        while address is None and time.monotonic() < deadline:
            line = service.stderr.readline()
            lines.append(line)
            found = re.search(r"Web app on (http://127\.0\.0\.1:\d+)", line)
            address = found.group(1) if found else None
        assert address is not None, "".join(lines)
        assert any("running the web app only" in line for line in lines)
        assert any("Admin sign-in token (generated for this start, shown once)" in line for line in lines)
        assert httpx.get(address + "/").status_code == 200
    finally:
        service.send_signal(signal.SIGTERM)
        _, rest = service.communicate(timeout=60)
    assert service.returncode == 0, rest
    assert "Traceback" not in rest


async def test_a_busy_port_is_one_clear_line(tmp_path: Path, model_dir: Path, data_dir: Path) -> None:
    from bot.service import FrontEndError

    async with running_web(web_environment(tmp_path, model_dir, data_dir)) as web:
        port = web.url.rsplit(":", 1)[1]
        with pytest.raises(FrontEndError, match=f"cannot listen on 127.0.0.1:{port}.*WEB_PORT"):
            async with running_web(web_environment(tmp_path / "second", model_dir, data_dir, WEB_PORT=port)):
                pass


async def test_a_run_started_on_the_dashboard_streams_its_epochs_and_promotion(
    tmp_path: Path, model_dir: Path, data_dir: Path
) -> None:
    before = ModelRegistry(model_dir).current_version()
    # The stream sends the newest state at most every 0.25 s: epochs of about a second each are
    # each seen (on 4,000 images an epoch took less, and one could be passed over on a busy machine).
    environment = web_environment(tmp_path, model_dir, data_dir, TRAINING_TRAIN_LIMIT="40000")
    async with (
        running_web(environment) as web,
        signed_in_admin(web.url) as (client, csrf),
        client.stream("GET", "/admin/api/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        started = await client.post(
            "/admin/api/train", json={"architecture": "dense", "epochs": 3}, headers={"X-CSRF-Token": csrf}
        )
        assert started.status_code == 200 and started.json()["text"].startswith("Started training run #")
        again = await client.post(
            "/admin/api/train", json={}, headers={"X-CSRF-Token": started.headers["x-csrf-token"]}
        )
        assert again.status_code == 409 and "already in progress" in again.json()["text"]
        epochs_seen: list[int] = []
        final = None
        async with asyncio.timeout(180):
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                run = json.loads(line[6:])["run"]
                if run is None:
                    continue
                epochs_seen.append(len(run["history"]))
                if run["finished"]:
                    final = run
                    break
    assert final is not None and final["status"] == "succeeded"
    assert set(epochs_seen) >= {1, 2, 3}
    assert epochs_seen == sorted(epochs_seen)  # the curves grow as epochs arrive
    assert [epoch["epoch"] for epoch in final["history"]] == [1, 2, 3]
    assert final["report"]["promoted"] and "Promoted" in final["text"]
    assert ModelRegistry(model_dir).current_version() == final["report"]["version"] != before


async def test_pictures_per_minute_are_limited_per_visitor(
    tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    photo = digit_photo([mnist_digit(mnist, 1)])
    environment = web_environment(tmp_path, model_dir, data_dir, PHOTOS_PER_MINUTE="2")
    async with (
        running_web(environment) as web,
        visitor(web.url) as (client, csrf),
        visitor(web.url) as (other, other_csrf),
    ):
        statuses = [
            (await client.post("/api/read", content=photo, headers={"X-CSRF-Token": csrf})).status_code
            for _ in range(4)
        ]
        fifth = await client.post("/api/read", content=photo, headers={"X-CSRF-Token": csrf})
        others = await other.post("/api/read", content=photo, headers={"X-CSRF-Token": other_csrf})
    assert statuses == [200, 200, 429, 429]
    assert fifth.headers["retry-after"] == "60"
    assert others.status_code == 200  # another visitor is not affected


async def test_a_drawing_from_the_telegram_web_app_comes_back_to_the_chat(
    tmp_path: Path, model_dir: Path, data_dir: Path, mnist: Mnist
) -> None:
    with BotApiEmulator(token=TOKEN) as emulator:
        environment = {
            **bot_environment(emulator, tmp_path, model_dir, data_dir),
            **web_environment(tmp_path, model_dir, data_dir),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "WEB_PUBLIC_URL": "https://digits.example.org",
        }
        async with running_web(environment) as web, httpx.AsyncClient(base_url=web.url) as client:
            emulator.send_text(USER_ID, "/start")
            [start] = await emulator.wait_for(lambda: emulator.messages(USER_ID), timeout=10)
            [[draw]] = start["reply_markup"]["inline_keyboard"]
            assert draw["web_app"]["url"] == "https://digits.example.org/telegram/draw"
            menu = [call for call in emulator.calls if call.method == "setChatMenuButton"]
            assert menu and menu[0].params["menu_button"]["web_app"]["url"] == draw["web_app"]["url"]

            user = json.dumps({"id": USER_ID, "first_name": "Ada"}, separators=(",", ":"))
            init_data = sign_init_data({"auth_date": str(int(time.time())), "user": user}, TOKEN)
            drawing = digit_photo([mnist_digit(mnist, 7)])
            forged = await client.post(
                "/telegram/drawing",
                content=drawing,
                headers={"X-Telegram-Init-Data": init_data.replace("Ada", "Eve")},
            )
            assert forged.status_code == 401 and forged.json()["text"] == say("web.telegram.not_verified")
            sent = await client.post(
                "/telegram/drawing", content=drawing, headers={"X-Telegram-Init-Data": init_data}
            )
            assert sent.status_code == 200 and sent.json()["text"].startswith("I read: 7")
            [answer] = await emulator.wait_for(lambda: replies_to(emulator, USER_ID), timeout=10)
            assert answer["text"].startswith("I read: 7") and "photo" in answer["reply_to_message"]
            right = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            emulator.press_button(USER_ID, answer, right)  # judged in Telegram like any answer
            await emulator.wait_for(
                lambda: "recorded as right" in emulator.message(USER_ID, answer["message_id"])["text"]
            )
    with web.services.sessions() as session:
        [prediction] = session.scalars(select(Prediction)).all()
        assert (prediction.channel, prediction.source, prediction.user_id) == (
            "telegram",
            "drawing",
            str(USER_ID),
        )
        assert prediction.feedback.correct
        assert session.scalars(select(TrainingRun)).all() == []
