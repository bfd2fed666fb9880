"""The Discord emulator, driven by a bare discord.py client over HTTP and the gateway WebSocket."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from discord_emulator import DiscordEmulator
from discord_emulator import rest as emulator_rest
from discord_emulator.clients import connected
from discord_emulator.rest import HANDLERS
from discord_emulator.spec import SPEC_PATH, load_spec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_SPEC = PROJECT_ROOT.parent / "shared" / "discord" / "openapi.json"
USER = 5001


@pytest.fixture
def emulator() -> Iterator[DiscordEmulator]:
    with DiscordEmulator(heartbeat_interval_ms=200) as running:
        yield running


@contextlib.asynccontextmanager
async def connected_client(
    emulator: DiscordEmulator, intents: discord.Intents | None = None
) -> AsyncIterator[tuple[discord.Client, list[discord.Message]]]:
    """A plain discord.py client connected to the emulator, collecting the messages it sees."""
    client = discord.Client(intents=intents or discord.Intents.default(), guild_ready_timeout=0.1)
    seen: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    async with connected(client, emulator):
        yield client, seen


def rest(emulator: DiscordEmulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bot {emulator.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emulator.api_base_url + path, headers=headers, **kwargs)


def test_committed_subset_matches_the_official_description(tmp_path: Path) -> None:
    if not OFFICIAL_SPEC.exists():
        pytest.skip(f"Discord's OpenAPI description not present at {OFFICIAL_SPEC}")
    out = tmp_path / "subset.json"
    subprocess.run(
        [sys.executable, "scripts/extract_discord_api.py", "--spec", str(OFFICIAL_SPEC), "--out", str(out)],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    assert out.read_text() == SPEC_PATH.read_text(), (
        "run scripts/extract_discord_api.py and commit the result"
    )


def test_every_route_of_the_subset_is_served() -> None:
    assert sorted(HANDLERS) == sorted(route.key for route in load_spec().routes)


async def test_a_client_identifies_gets_ready_and_heartbeats(emulator: DiscordEmulator) -> None:
    async with connected_client(emulator) as (client, _):
        assert client.user is not None and client.user.id == emulator.bot_id
        [guild] = client.guilds
        assert guild.id == emulator.guild_id and guild.get_channel(emulator.channel_id) is not None
        await emulator.wait_for(lambda: emulator.gateway_sessions[0]["heartbeats"] >= 3, timeout=5)
        assert client.latency < 1
    await emulator.wait_for(lambda: not emulator.is_connected)
    assert [call.route for call in emulator.calls] == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert rest(emulator, "GET", "/gateway/bot").json()["url"] == emulator.gateway_url


async def test_message_content_is_withheld_without_the_intent_unless_mentioned(
    emulator: DiscordEmulator,
) -> None:
    emulator.add_member(USER)
    picture = [("d.png", b"\x89PNG-not-really", "image/png")]
    intents = discord.Intents.default()  # no message_content: it is privileged
    async with connected_client(emulator, intents) as (_, seen):
        emulator.send_message(USER, "in the channel", channel_id=emulator.channel_id, attachments=picture)
        emulator.send_message(
            USER, "mentioning", channel_id=emulator.channel_id, attachments=picture, mention_bot=True
        )
        emulator.send_message(USER, "in a DM", attachments=picture)
        await emulator.wait_for(lambda: len(seen) == 3)
        withheld, mentioned, direct = seen
        downloaded = await direct.attachments[0].read()
    assert (withheld.content, withheld.attachments) == ("", [])
    assert mentioned.content.endswith("mentioning") and len(mentioned.attachments) == 1
    assert direct.content == "in a DM" and downloaded == b"\x89PNG-not-really"


async def test_a_privileged_intent_not_enabled_in_the_portal_closes_the_gateway() -> None:
    with DiscordEmulator(message_content_intent_enabled=False) as emulator:
        intents = discord.Intents.default()
        intents.message_content = True
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with connected_client(emulator, intents):
                pass


async def test_a_wrong_token_is_refused(emulator: DiscordEmulator) -> None:
    discord.http.Route.BASE = emulator.api_base_url
    client = discord.Client(intents=discord.Intents.default())
    async with client:
        with pytest.raises(discord.LoginFailure):
            await client.login("MTAwMDAwMDAwMDAwMDAwMDAx.Gwrong.not-the-token-the-emulator-expects-0001")
    assert rest(emulator, "GET", "/users/@me", headers={"Authorization": "Bot nope"}).status_code == 401


def test_bodies_that_break_discords_rules_are_refused_by_field(emulator: DiscordEmulator) -> None:
    channel = f"/channels/{emulator.channel_id}/messages"
    button = {"type": 2, "style": 1, "label": "x", "custom_id": "same"}
    cases = [
        ({"content": "x" * 2001}, "2000 or fewer"),
        ({"content": "hi", "colour": 1}, "unknown field 'colour'"),
        ({"content": 5}, "is not of type"),
        ({"components": [{"type": 1, "components": [button, button]}]}, "cannot be duplicated"),
        (
            {"components": [{"type": 1, "components": [{**button, "custom_id": str(n)} for n in range(6)]}]},
            "is not valid",  # the schema allows five items a row
        ),
        ({}, "empty message"),
    ]
    for body, problem in cases:
        answer = rest(emulator, "POST", channel, json=body)
        assert answer.status_code == 400 and problem in json.dumps(answer.json()), (body, answer.json())
    assert rest(emulator, "POST", "/channels/123/messages", json={"content": "hi"}).json()["code"] == 10003
    assert rest(emulator, "GET", "/no/such/route").status_code == 404


def test_an_injected_429_looks_like_discords(emulator: DiscordEmulator) -> None:
    emulator.fail_next("POST /channels/{channel_id}/messages", retry_after=0.25)
    answer = rest(emulator, "POST", f"/channels/{emulator.channel_id}/messages", json={"content": "hi"})
    assert answer.status_code == 429
    assert answer.json() == {"message": "You are being rate limited.", "retry_after": 0.25, "global": False}
    assert answer.headers["Via"] and answer.headers["X-RateLimit-Scope"] == "user"
    assert rest(
        emulator, "POST", f"/channels/{emulator.channel_id}/messages", json={"content": "hi"}
    ).is_success


async def test_interactions_need_one_response_within_three_seconds(
    emulator: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.add_member(USER)
    async with connected_client(emulator) as (client, _):
        sent = await client.get_partial_messageable(emulator.channel_id).send("pick", view=_one_button_view())
        message = emulator.message(emulator.channel_id, sent.id)
        on_time = emulator.press_button(USER, message, "press")
        late = emulator.press_button(USER, message, "press")
    interaction = emulator.interaction(on_time)
    callback = f"/interactions/{interaction.id}/{on_time}/callback"
    assert rest(emulator, "POST", callback, json={"type": 6}).status_code == 204
    second = rest(emulator, "POST", callback, json={"type": 6})
    assert second.status_code == 400 and second.json()["code"] == 40060
    monkeypatch.setattr(emulator_rest, "INTERACTION_ACK_SECONDS", 0.0)
    too_late = rest(
        emulator, "POST", f"/interactions/{emulator.interaction(late).id}/{late}/callback", json={"type": 6}
    )
    assert too_late.status_code == 404 and too_late.json()["code"] == 10062


async def test_a_deferred_response_is_filled_by_the_first_follow_up_and_edited(
    emulator: DiscordEmulator,
) -> None:
    emulator.add_member(USER)
    async with connected_client(emulator) as (client, _):
        sent = await client.get_partial_messageable(emulator.channel_id).send("pick", view=_one_button_view())
        token = emulator.press_button(USER, emulator.message(emulator.channel_id, sent.id), "press")
    interaction = emulator.interaction(token)
    deferred = rest(
        emulator, "POST", f"/interactions/{interaction.id}/{token}/callback?with_response=1", json={"type": 5}
    )
    assert deferred.json()["interaction"]["response_message_loading"] is True
    webhook = f"/webhooks/{emulator.bot_id}/{token}"
    filled = rest(emulator, "POST", webhook + "?wait=true", json={"content": "done"}).json()
    assert filled["id"] == deferred.json()["interaction"]["response_message_id"]
    edited = rest(emulator, "PATCH", webhook + "/messages/@original", json={"content": "done, edited"}).json()
    assert edited["content"] == "done, edited" and edited["edited_timestamp"] is not None
    second = rest(emulator, "POST", webhook + "?wait=true", json={"content": "and more"}).json()
    assert second["id"] != filled["id"]
    assert [message["content"] for message in emulator.messages(emulator.channel_id)] == [
        "pick",
        "done, edited",
        "and more",
    ]


async def test_what_the_gateway_sends_matches_the_rest_shapes(emulator: DiscordEmulator) -> None:
    emulator.add_member(USER)
    async with connected_client(emulator) as (_, seen):
        emulator.send_message(
            USER, "hi", channel_id=emulator.channel_id, attachments=[("a.txt", b"a", "text/plain")]
        )
        await emulator.wait_for(lambda: seen)
    events = [data for name, data in emulator._state.events if name == "MESSAGE_CREATE"]
    gateway_only = {"guild_id", "member"}
    for data in events:
        message = {key: value for key, value in data.items() if key not in gateway_only}
        assert load_spec().schema_errors("MessageResponse", message) == []


def _one_button_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="press", custom_id="press"))
    return view


async def test_a_dropped_connection_is_identified_again(emulator: DiscordEmulator) -> None:
    async with connected_client(emulator):
        first = emulator.gateway_sessions[0]["session_id"]
        emulator.disconnect_bot()
        await emulator.wait_for(
            lambda: emulator.is_connected and emulator.gateway_sessions[0]["session_id"] != first, timeout=15
        )


async def test_a_select_choice_reaches_the_view(emulator: DiscordEmulator) -> None:
    emulator.add_member(USER)
    chosen: list[list[str]] = []

    class Pick(discord.ui.View):
        @discord.ui.select(custom_id="digit", options=[discord.SelectOption(label=str(n)) for n in range(10)])
        async def digit(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
            chosen.append(select.values)
            await interaction.response.edit_message(content=f"picked {select.values[0]}", view=None)

    async with connected_client(emulator) as (client, _):
        view = Pick(timeout=None)
        client.add_view(view)
        sent = await client.get_partial_messageable(emulator.channel_id).send("pick one", view=view)
        with pytest.raises(ValueError, match="not a valid choice"):
            emulator.choose(USER, emulator.message(emulator.channel_id, sent.id), "digit", ["11"])
        emulator.choose(USER, emulator.message(emulator.channel_id, sent.id), "digit", ["7"])
        await emulator.wait_for(lambda: chosen)
        edited = await emulator.wait_for(
            lambda: (
                emulator.message(emulator.channel_id, sent.id)["content"] == "picked 7"
                and emulator.message(emulator.channel_id, sent.id)
            )
        )
    assert chosen == [["7"]] and edited["components"] == []
