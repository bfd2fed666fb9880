"""The web front end over real HTTP: every route, bad input, and the admin's protections.

One service (the web app alone, real reading workers, a real model, SQLite) serves the whole
module; each test uses its own visitors, so their answers and verdicts do not mix.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from bot_support import blank_photo, digit_photo, mnist_digit
from sqlalchemy import select
from web_support import (
    ADMIN_TOKEN,
    FORM_TOKEN,
    RunningWeb,
    page_data,
    running_web,
    signed_in_admin,
    visitor,
    web_environment,
)

from bot.core.texts import say
from db.models import ModelChange, Prediction
from mnist_engine.registry import ModelRegistry
from mnist_engine.training.dataset import Mnist

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MAX_FILE_BYTES = 300_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(
    tmp_path_factory: pytest.TempPathFactory, trained_model_dir: Path, data_dir: Path
) -> AsyncIterator[RunningWeb]:
    """The service with the web app alone, for the whole module."""
    folder = tmp_path_factory.mktemp("web-http")
    model_dir = Path(shutil.copytree(trained_model_dir, folder / "models"))
    environment = web_environment(folder, model_dir, data_dir, MAX_FILE_BYTES=str(MAX_FILE_BYTES))
    async with running_web(environment) as running:
        yield running


def seven(mnist: Mnist) -> bytes:
    return digit_photo([mnist_digit(mnist, 7)], size=(1280, 960))


async def read(
    client: httpx.AsyncClient, csrf: str, picture: bytes, source: str | None = None
) -> httpx.Response:
    headers = {"X-CSRF-Token": csrf, "Content-Type": "image/jpeg"}
    if source is not None:
        headers["X-Picture-Source"] = source
    return await client.post("/api/read", content=picture, headers=headers)


# --- The page and its headers ----------------------------------------------------------------------


async def test_the_page_sets_an_anonymous_cookie_and_strict_security_headers(web: RunningWeb) -> None:
    async with httpx.AsyncClient(base_url=web.url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("visitor=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        # Only the page's own script files, and the data block the scripts read.
        scripts = [line.strip() for line in page.text.splitlines() if "<script" in line]
        assert all('src="/static/' in line or 'type="application/json"' in line for line in scripts)
        data = page_data(page.text)
        assert data["maxFileBytes"] == MAX_FILE_BYTES
        assert data["texts"]["web.reading"] == say("web.reading")
        again = await client.get("/")
        assert "set-cookie" not in again.headers  # the same visitor keeps its id
        script = await client.get("/static/home.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]


async def test_the_telegram_canvas_may_be_framed_by_telegram_only(web: RunningWeb) -> None:
    async with httpx.AsyncClient(base_url=web.url) as client:
        page = await client.get("/telegram/draw")
    assert page.status_code == 200
    assert "frame-ancestors 'self' https://web.telegram.org" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers


async def test_the_health_check_answers_ok_without_making_a_visitor(web: RunningWeb) -> None:
    """The proxy and the container ask every few seconds: a plain 200, and no cookie minted for it."""
    async with httpx.AsyncClient(base_url=web.url) as client:
        health = await client.get("/healthz")
        head = await client.head("/healthz")
        posted = await client.post("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert "set-cookie" not in health.headers
    assert head.status_code == 200
    assert posted.status_code == 405


async def test_the_images_health_check_passes_while_the_app_answers_and_fails_when_it_does_not(
    web: RunningWeb,
) -> None:
    """The Dockerfile's HEALTHCHECK command, run as Docker runs it (exec form, WEB_PORT from the image)."""
    dockerfile = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()
    instruction = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", dockerfile, re.S | re.M)
    assert instruction is not None
    program, *arguments = json.loads(instruction.group(1))
    command = [sys.executable if program == "python" else program, *arguments]
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]

    def check(port: int) -> int:
        environment = {**os.environ, "WEB_PORT": str(port)}
        return subprocess.run(command, env=environment, capture_output=True, timeout=30).returncode

    assert await asyncio.to_thread(check, urlsplit(web.url).port or 0) == 0
    assert await asyncio.to_thread(check, closed_port) != 0


# --- Reading and judging -------------------------------------------------------------------------


async def test_a_photo_is_read_with_its_boxes_and_a_right_verdict_is_stored(
    web: RunningWeb, mnist: Mnist
) -> None:
    async with visitor(web.url) as (client, csrf):
        answer = (await read(client, csrf, seven(mnist))).json()
        assert answer["text"].startswith("I read: 7") and answer["read"] == "7"
        [digit] = answer["digits"]
        left, top, right, bottom = digit["box"]
        assert 0 <= left < right <= 1280 and 0 <= top < bottom <= 960
        assert [choice["label"] for choice in answer["choices"]] == [say("button.right"), say("button.wrong")]
        verdict = await client.post(
            "/api/verdict",
            json={"prediction_id": answer["prediction_id"], "right": True},
            headers={"X-CSRF-Token": csrf},
        )
    assert verdict.status_code == 200 and "recorded as right" in verdict.json()["text"]
    with web.services.sessions() as session:
        prediction = session.get(Prediction, answer["prediction_id"])
        assert (prediction.channel, prediction.source, prediction.digits) == ("web", "file", "7")
        assert prediction.user_id.startswith("w-") and prediction.chat_id == prediction.user_id
        assert prediction.feedback is not None and prediction.feedback.correct


async def test_a_correction_labels_the_digits_for_retraining(web: RunningWeb, mnist: Mnist) -> None:
    async with visitor(web.url) as (client, csrf):
        answer = (await read(client, csrf, digit_photo([mnist_digit(mnist, 4)]), "photo")).json()
        verdict = await client.post(
            "/api/verdict",
            json={"prediction_id": answer["prediction_id"], "digits": " 9 "},
            headers={"X-CSRF-Token": csrf},
        )
    assert "Corrected to 9" in verdict.json()["text"]
    with web.services.sessions() as session:
        prediction = session.get(Prediction, answer["prediction_id"])
        assert prediction.source == "photo"
        assert [sample.label for sample in prediction.samples] == [9]
        assert prediction.feedback.corrected_digits == "9"


async def test_drawings_are_recorded_as_drawings_and_unknown_sources_as_files(
    web: RunningWeb, mnist: Mnist
) -> None:
    async with visitor(web.url) as (client, csrf):
        drawn = (await read(client, csrf, seven(mnist), "drawing")).json()
        unknown = (await read(client, csrf, seven(mnist), "carrier-pigeon")).json()
    with web.services.sessions() as session:
        assert session.get(Prediction, drawn["prediction_id"]).source == "drawing"
        assert session.get(Prediction, unknown["prediction_id"]).source == "file"


async def test_pictures_that_cannot_be_read_get_the_same_texts_as_in_telegram(web: RunningWeb) -> None:
    async with visitor(web.url) as (client, csrf):
        notes = (await read(client, csrf, b"just some notes")).json()
        broken = (await read(client, csrf, b"\x89PNG\r\n\x1a\n broken")).json()
        empty = (await read(client, csrf, b"")).json()
        blank = (await read(client, csrf, blank_photo())).json()
    assert notes["text"] == say("image.not_an_image") and notes["prediction_id"] is None
    assert "not an image I can read" in broken["text"]
    assert empty["text"] == say("image.empty")
    assert blank["text"] == say("no_digit") and blank["choices"] == []


async def test_an_upload_over_the_limit_is_refused_before_it_is_read(web: RunningWeb) -> None:
    async with visitor(web.url) as (client, csrf):
        declared = await read(client, csrf, b"\xff\xd8" + bytes(MAX_FILE_BYTES))
        assert declared.status_code == 413
        assert declared.json()["text"] == say(
            "file_too_large", size_mb=(MAX_FILE_BYTES + 2) / 1e6, limit_mb=0.3
        )

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off past the limit
            for _ in range(100):
                yield bytes(64 * 1024)

        streamed = await client.post(
            "/api/read", content=chunks(), headers={"X-CSRF-Token": csrf, "Content-Type": "image/jpeg"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["text"] == say("web.file_over_limit", limit_mb=0.3)

    # A body declared at 10 GB is refused at once, without waiting for a byte of it.
    host, port = web.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /api/read HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
        "Content-Length: 10000000000\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    assert b"413" in status_line


async def test_verdicts_need_the_visitors_cookie_and_token_and_only_the_sender_may_judge(
    web: RunningWeb, mnist: Mnist
) -> None:
    async with visitor(web.url) as (client, csrf), visitor(web.url) as (other, other_csrf):
        answer = (await read(client, csrf, seven(mnist))).json()
        verdict = {"prediction_id": answer["prediction_id"], "right": True}
        async with httpx.AsyncClient(base_url=web.url) as stranger:
            assert (await stranger.post("/api/verdict", json=verdict)).status_code == 403
        assert (await client.post("/api/verdict", json=verdict)).status_code == 403
        wrong_token = await client.post("/api/verdict", json=verdict, headers={"X-CSRF-Token": other_csrf})
        assert wrong_token.status_code == 403
        not_theirs = await other.post("/api/verdict", json=verdict, headers={"X-CSRF-Token": other_csrf})
        assert not_theirs.status_code == 403 and not_theirs.json()["text"] == say("verdict.not_yours")
        headers = {"X-CSRF-Token": csrf}
        for bad in (
            b"not json",
            b"[1, 2]",
            b'{"prediction_id": "1", "right": true}',
            b'{"prediction_id": 1}',
        ):
            response = await client.post("/api/verdict", content=bad, headers=headers)
            assert response.status_code == 400, bad
        letters = await client.post(
            "/api/verdict",
            json={"prediction_id": answer["prediction_id"], "digits": "seven"},
            headers=headers,
        )
        assert letters.status_code == 400 and "Only digits" in letters.json()["text"]
        gone = await client.post(
            "/api/verdict", json={"prediction_id": 10**9, "right": True}, headers=headers
        )
        assert gone.status_code == 403 and gone.json()["text"] == say("verdict.stale")
        stale_cookie = httpx.AsyncClient(base_url=web.url, cookies={"visitor": "forged.cookie"})
        async with stale_cookie:
            forged = await stale_cookie.post("/api/verdict", json=verdict, headers=headers)
        assert forged.status_code == 403
    with web.services.sessions() as session:
        assert session.get(Prediction, answer["prediction_id"]).feedback is None


async def test_a_script_without_the_page_cookie_can_read_and_is_limited_by_its_address(
    web: RunningWeb, mnist: Mnist
) -> None:
    async with httpx.AsyncClient(base_url=web.url) as script:
        response = await script.post("/api/read", content=seven(mnist))
    assert response.status_code == 200 and response.json()["read"] == "7"
    assert response.headers["set-cookie"].startswith("visitor=")  # so it can judge its answer


async def test_requests_from_another_site_are_refused(web: RunningWeb, mnist: Mnist) -> None:
    async with visitor(web.url) as (client, csrf):
        response = await client.post(
            "/api/read",
            content=seven(mnist),
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        same_site = await client.post(
            "/api/read", content=b"x", headers={"X-CSRF-Token": csrf, "Origin": web.url}
        )
    assert response.status_code == 403 and response.json()["text"] == say("web.admin.cross_site")
    assert same_site.status_code == 200


# --- The admin's protections ---------------------------------------------------------------------


async def test_the_dashboard_needs_the_admin_token(web: RunningWeb) -> None:
    async with httpx.AsyncClient(base_url=web.url) as client:
        form = await client.get("/admin")
        assert form.status_code == 200 and 'type="password"' in form.text
        for path in ("/admin/api/runs", "/admin/api/models", "/admin/api/usage", "/admin/api/events"):
            assert (await client.get(path)).status_code == 401, path
        assert (await client.post("/admin/api/train", json={})).status_code == 401

        token = FORM_TOKEN.search(form.text)[1]
        wrong = await client.post("/admin/sign-in", data={"form_token": token, "token": "x" * 27})
        assert wrong.status_code == 401 and say("web.admin.wrong_token") in wrong.text
        assert "admin_session" not in client.cookies
        replayed = await client.post("/admin/sign-in", data={"form_token": token, "token": ADMIN_TOKEN})
        assert replayed.status_code == 403  # each form token signs in once
        no_form = await client.post("/admin/sign-in", data={"token": ADMIN_TOKEN})
        assert no_form.status_code == 403

        fresh = FORM_TOKEN.search((await client.get("/admin")).text)[1]
        signed = await client.post("/admin/sign-in", data={"form_token": fresh, "token": ADMIN_TOKEN})
        assert signed.status_code == 303 and signed.headers["location"] == "/admin"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
        assert (await client.get("/admin/api/runs")).status_code == 200


async def test_sign_in_attempts_are_limited(web: RunningWeb) -> None:
    async with httpx.AsyncClient(base_url=web.url, headers={"X-Forwarded-For": "203.0.113.9"}) as client:
        statuses = []
        for _ in range(12):
            token = FORM_TOKEN.search((await client.get("/admin")).text)[1]
            response = await client.post("/admin/sign-in", data={"form_token": token, "token": "wrong" * 4})
            statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]


async def test_every_admin_change_spends_a_fresh_csrf_token(web: RunningWeb) -> None:
    async with signed_in_admin(web.url) as (client, csrf):
        missing = await client.post("/admin/api/cancel")
        assert missing.status_code == 403 and missing.json()["text"] == say("web.admin.csrf_missing")
        first = await client.post("/admin/api/cancel", headers={"X-CSRF-Token": csrf})
        assert first.status_code == 200 and first.json()["text"] == say("admin.cancel_none")
        replayed = await client.post("/admin/api/cancel", headers={"X-CSRF-Token": csrf})
        assert replayed.status_code == 403 and replayed.json()["text"] == say("web.admin.csrf_replayed")
        forged = await client.post("/admin/api/cancel", headers={"X-CSRF-Token": "made-up"})
        assert forged.status_code == 403
        following = first.headers["x-csrf-token"]
        assert following != csrf
        signed_out = await client.post("/admin/sign-out", headers={"X-CSRF-Token": following})
        assert signed_out.status_code == 200
        after = await client.post(
            "/admin/api/cancel", headers={"X-CSRF-Token": signed_out.headers["x-csrf-token"]}
        )
        assert after.status_code == 401  # the session and its tokens are gone
        assert (await client.get("/admin/api/runs")).status_code == 401


async def test_training_requests_are_checked(web: RunningWeb) -> None:
    async with signed_in_admin(web.url) as (client, csrf):
        for body in ({"architecture": "transformer"}, {"epochs": 0}, {"epochs": "3"}, {"epochs": 500}, [1]):
            response = await client.post("/admin/api/train", json=body, headers={"X-CSRF-Token": csrf})
            assert response.status_code == 400, body
            csrf = response.headers["x-csrf-token"]
        not_json = await client.post("/admin/api/train", content=b"{", headers={"X-CSRF-Token": csrf})
        assert not_json.status_code == 400
    assert web.services.trainer.active is None


async def test_the_dashboard_reads_runs_models_and_usage(web: RunningWeb, mnist: Mnist) -> None:
    async with visitor(web.url) as (user, user_csrf):
        await read(user, user_csrf, seven(mnist))
    async with signed_in_admin(web.url) as (client, _):
        runs = (await client.get("/admin/api/runs")).json()
        models = (await client.get("/admin/api/models")).json()
        usage = (await client.get("/admin/api/usage")).json()
    assert isinstance(runs["runs"], list)
    current = ModelRegistry(web.services.settings.model_dir).current_version()
    assert models["current"] == current and models["serving"] == say("web.admin.serving", version=current)
    assert [version["version"] for version in models["versions"]] == [current]
    assert len(usage["days"]) == 30 and usage["days"][-1]["predictions"] >= 1
    assert len(usage["confusion"]) == 10 and usage["summary"][0].startswith("Predictions:")


async def test_an_admin_promotes_a_version_and_rolls_back_recorded(web: RunningWeb) -> None:
    registry = ModelRegistry(web.services.settings.model_dir)
    first = registry.current_version()
    second = first.replace(first[:15], "20300101-000000")  # a later copy of the same model
    shutil.copytree(registry.path(first), registry.path(second))
    metadata = registry.path(second) / "metadata.json"
    metadata.write_text(metadata.read_text().replace(first, second))
    async with signed_in_admin(web.url) as (client, csrf):
        promoted = await client.post(
            "/admin/api/serve", json={"version": second}, headers={"X-CSRF-Token": csrf}
        )
        assert promoted.status_code == 200 and promoted.json()["kind"] == "promote"
        assert registry.current_version() == second
        csrf = promoted.headers["x-csrf-token"]
        models = (await client.get("/admin/api/models")).json()
        assert (models["current"], models["previous"]) == (second, first)
        rolled = await client.post(
            "/admin/api/serve", json={"version": first}, headers={"X-CSRF-Token": csrf}
        )
        assert rolled.status_code == 200 and rolled.json()["kind"] == "roll_back"
        assert registry.current_version() == first
        csrf = rolled.headers["x-csrf-token"]
        for bad in ("../../etc", "20990101-000000-nothing", first):
            refused = await client.post(
                "/admin/api/serve", json={"version": bad}, headers={"X-CSRF-Token": csrf}
            )
            assert refused.status_code == 409, bad
            csrf = refused.headers["x-csrf-token"]
        models = (await client.get("/admin/api/models")).json()
    assert registry.current_version() == first
    assert len(models["changes"]) == 2 and "roll back" in models["changes"][0]
    with web.services.sessions() as session:
        changes = session.scalars(select(ModelChange).order_by(ModelChange.id)).all()
        assert [(change.kind, change.version, change.previous_version) for change in changes] == [
            ("promote", second, first),
            ("roll_back", first, second),
        ]
        assert all(change.requested_by == "web admin" for change in changes)


async def test_the_web_server_answers_without_waiting_for_delayed_acks() -> None:
    """Nagle's algorithm is off on every connection (asyncio does it only for sockets marked TCP).

    With it on, each answer after a connection's first waited for the client's delayed ACK.
    """
    from starlette.applications import Starlette

    from bot.web.server import WebServer

    server = WebServer(Starlette(), "127.0.0.1", 0)
    await server.start()
    try:
        listening = [sock for running in server._server.servers for sock in running.sockets]  # type: ignore[union-attr]
        assert [sock.proto for sock in listening] == [socket.IPPROTO_TCP]  # accepted connections inherit it
    finally:
        await server.stop()
