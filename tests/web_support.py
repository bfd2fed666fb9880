"""Helpers for the web front end's tests: the service running as `python -m bot` runs it, and a
browser-like HTTP client that reads the page's tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bot.core.services import Services

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "test-signing-key-0123456789-0123456789"
PAGE_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@dataclass
class RunningWeb:
    """The running service and the web app's address."""

    services: Services
    url: str


def web_environment(tmp_path: Path, model_dir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """A service with the web app alone on a free port, a temporary database and small training runs."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "MNIST_MODEL_DIR": str(model_dir),
        "MNIST_DATA_DIR": str(data_dir),
        "WEB_PORT": "0",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "WEB_SECRET_KEY": SECRET_KEY,
        "PHOTOS_PER_MINUTE": "1000",
        "RETRAIN_ARCHITECTURE": "dense",
        "TRAINING_TRAIN_LIMIT": "4000",
        "TRAINING_VALIDATION_SIZE": "1000",
        "TRAINING_TEST_LIMIT": "1000",
        "PROMOTION_TOLERANCE": "0.1",
        **extra,
    }


@asynccontextmanager
async def running_web(environment: dict[str, str]) -> AsyncIterator[RunningWeb]:
    """Start the service as `python -m bot` does (every front end its settings ask for); stop it after."""
    from bot.core.services import build_services
    from bot.service import front_ends, prepare_database, running_services
    from bot.settings import load_settings
    from bot.web.server import WebServer

    saved = dict(os.environ)
    for name in [name for name in os.environ if name.startswith(("TELEGRAM_", "WEB_", "ADMIN_"))]:
        del os.environ[name]
    os.environ.update(environment)
    try:
        settings = load_settings(_env_file=None)
        services = build_services(settings, prepare_database(settings))
        async with AsyncExitStack() as stack:
            started = [await stack.enter_async_context(front_end) for front_end in front_ends(services)]
            await stack.enter_async_context(running_services(services))
            server = next(front_end for front_end in started if isinstance(front_end, WebServer))
            yield RunningWeb(services, server.url)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def page_data(html: str) -> dict:
    """The JSON the page hands its script: the CSRF token, the texts, the limits."""
    match = PAGE_DATA.search(html)
    if match is None:
        raise AssertionError("the page has no page-data block")
    return json.loads(match.group(1))


@asynccontextmanager
async def visitor(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client that opened the home page like a browser: its cookie jar, and the page's CSRF token."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        page = await client.get("/")
        yield client, page_data(page.text)["csrf"]


@asynccontextmanager
async def signed_in_admin(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in to the dashboard, and the dashboard's first CSRF token."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client, await sign_in(client)


async def sign_in(client: httpx.AsyncClient) -> str:
    """Sign a client in; return the dashboard's first CSRF token."""
    form = await client.get("/admin")
    form_token = FORM_TOKEN.search(form.text)
    if form_token is None:
        raise AssertionError("the sign-in page has no form token")
    signed = await client.post("/admin/sign-in", data={"form_token": form_token[1], "token": ADMIN_TOKEN})
    if signed.status_code != 303:
        raise AssertionError(f"sign-in answered {signed.status_code}")
    dashboard = await client.get("/admin")
    return str(page_data(dashboard.text)["csrf"])


def sign_init_data(fields: dict[str, str], bot_token: str) -> str:
    """initData as Telegram signs it for a bot (the tests play Telegram's part)."""
    data_check_string = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret_key = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    signature = hmac.new(secret_key, data_check_string.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": signature})
