"""DiscordEmulator: Discord's REST API and gateway for one bot in one server, on 127.0.0.1."""

import asyncio
import copy
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from . import payloads
from .errors import DiscordApiError
from .gateway import MESSAGE_CONTENT_ENABLED
from .server import API_PREFIX, DiscordServer
from .spec import load_spec
from .state import DM, GUILD_TEXT, ApiCall, Channel, DiscordState, Interaction, StoredFile

T = TypeVar("T")

TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.GtestX.emulator-token-for-the-local-discord-api-01"
BOT_ID = 1_000_000_000_000_000_001
GUILD_ID = 1_100_000_000_000_000_001
MAX_USER_ATTACHMENT_BYTES = 10 * 1024 * 1024  # what a person without Nitro may attach
_POLL_INTERVAL_S = 0.02
_CALLS_SHOWN_ON_TIMEOUT = 10
# Application command option types (Discord's numbers) and what a client sends for each.
_OPTION_TYPES = {3: str, 4: int, 5: bool, 10: float}
ATTACHMENT_OPTION = 11
APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5


class DiscordEmulator:
    """A local stand-in for Discord that a real discord.py client talks to over HTTP and a WebSocket.

    Point discord.py at it with `api_base_url` (REST) and the gateway URL `GET /gateway/bot` answers.
    People act through `send_message`, `use_command`, `press_button`, `choose` and `submit_modal`;
    what the bot did is in `calls`, `messages` and `interaction`. Every method is thread-safe.
    """

    def __init__(
        self,
        token: str = TOKEN,
        *,
        bot_id: int = BOT_ID,
        message_content_intent_enabled: bool = True,
        heartbeat_interval_ms: int = 41_250,
        check_spec: bool = True,
    ) -> None:
        """`check_spec=False` skips the OpenAPI checks of every body (benchmarks: they cost CPU)."""
        bot_user = {
            "id": str(bot_id),
            "username": "mnist-digit-bot",
            "avatar": None,
            "discriminator": "0",
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "global_name": None,
            "primary_guild": None,
        }
        self.token = token
        self._state = DiscordState(
            spec=load_spec(),
            bot_user=bot_user,
            guild={"id": str(GUILD_ID), "name": "Digit Lovers", "icon": None, "owner_id": "1"},
            application_flags=MESSAGE_CONTENT_ENABLED if message_content_intent_enabled else 0,
        )
        self.admin_role_id = self._state.snowflake()
        self._state.guild["roles"] = [
            payloads.role(GUILD_ID, "@everyone", 0, payloads.MEMBER_PERMISSIONS),
            payloads.role(self.admin_role_id, "digit admins", 1, payloads.MEMBER_PERMISSIONS),
        ]
        self.channel_id = self.add_channel("digits")
        self._server = DiscordServer(self._state, token, heartbeat_interval_ms, check_spec=check_spec)

    # Lifecycle

    def start(self) -> None:
        """Start serving on a free port of 127.0.0.1."""
        self._server.start()

    def stop(self) -> None:
        """Close the gateway sessions and stop serving."""
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def api_base_url(self) -> str:
        """The REST base to give discord.py (its `Route.BASE`)."""
        if self._server.port is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        return self._state.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The gateway's WebSocket URL (what `GET /gateway/bot` answers)."""
        return self.api_base_url.removesuffix(API_PREFIX).replace("http://", "ws://") + "/gateway"

    @property
    def bot_id(self) -> int:
        """The bot's user id (also its application id)."""
        return int(self._state.bot_user["id"])

    @property
    def guild_id(self) -> int:
        """The one server the bot is in."""
        return GUILD_ID

    # The server

    def add_channel(self, name: str) -> int:
        """Add a text channel to the server (before the bot connects, or it will not know it)."""
        with self._state.lock:
            channel = Channel(id=self._state.snowflake(), type=GUILD_TEXT, name=name)
            self._state.channels[channel.id] = channel
            self._state.messages[channel.id] = []
            return channel.id

    def add_member(self, user_id: int, *, roles: list[int] | None = None, name: str | None = None) -> None:
        """Make a person a member of the server, with roles."""
        with self._state.lock:
            self._state.user(user_id, name)
            self._state.member_roles[user_id] = list(roles or [])

    def dm_channel_id(self, user_id: int) -> int:
        """The id of the DM channel between the bot and a person (opened if needed)."""
        with self._state.lock:
            self._state.user(user_id)
            return self._state.dm_channel(user_id).id

    # What people do

    def send_message(
        self,
        user_id: int,
        content: str = "",
        *,
        channel_id: int | None = None,
        attachments: list[tuple[str, bytes, str | None]] | None = None,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """A person posts a message (in a DM unless a server channel is named), with files attached."""
        files = attachments or []
        if not content and not files:
            raise ValueError("Discord clients do not send empty messages")
        if len(content) > 2000:
            raise ValueError("a message holds at most 2000 characters (4000 with Nitro)")
        for filename, data, _ in files:
            if len(data) > MAX_USER_ATTACHMENT_BYTES:
                raise ValueError(f"{filename} is over the 10 MB a person may attach without Nitro")
        with self._state.lock:
            author = self._state.user(user_id)
            channel = self._channel_for(user_id, channel_id)
            mentions = []
            if mention_bot:
                content = f"<@{self.bot_id}> {content}".strip()
                mentions = [copy.deepcopy(self._state.bot_user)]
            stored_files = [self._store_file(channel.id, *file) for file in files]
            message = payloads.message(
                self._state,
                channel.id,
                author,
                content=content,
                attachments=[payloads.attachment(stored) for stored in stored_files],
                mentions=mentions,
            )
            self._state.add_message(message, from_bot=False)
            event = copy.deepcopy(message)
            if channel.type != DM:
                event["guild_id"] = str(GUILD_ID)
                event["member"] = payloads.member(self._state, user_id, with_user=False)
            self._state.dispatch("MESSAGE_CREATE", event)
            return copy.deepcopy(message)

    def use_command(
        self,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        channel_id: int | None = None,
        attachment: tuple[str, bytes, str | None] | None = None,
    ) -> str:
        """A person runs a slash command; `attachment` fills its attachment option. Returns the token."""
        options = dict(options or {})
        with self._state.lock:
            channel = self._channel_for(user_id, channel_id)
            command = self._command(name, in_guild=channel.type != DM)
            resolved: dict[str, Any] = {}
            sent_options = []
            for option in command["options"]:
                if option["type"] == ATTACHMENT_OPTION and attachment is not None:
                    stored = self._store_file(channel.id, *attachment)
                    options[option["name"]] = str(stored.id)
                    resolved.setdefault("attachments", {})[str(stored.id)] = payloads.attachment(stored)
                if option["name"] not in options:
                    if option.get("required"):
                        raise ValueError(f"/{name} needs its {option['name']!r} option; the client insists")
                    continue
                value = _option_value(option, options.pop(option["name"]))
                sent_options.append({"name": option["name"], "type": option["type"], "value": value})
            if options:
                raise ValueError(f"/{name} has no options {sorted(options)}")
            data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": sent_options}
            if resolved:
                data["resolved"] = resolved
            if "guild_id" in command:
                data["guild_id"] = command["guild_id"]
            return self._interaction(APPLICATION_COMMAND, user_id, channel, data)

    def press_button(self, user_id: int, message: dict[str, Any], custom_id: str) -> str:
        """A person presses a button of a bot message as it is now. Returns the interaction's token."""
        return self._use_component(user_id, message, custom_id, component_type=2)

    def choose(self, user_id: int, message: dict[str, Any], custom_id: str, values: list[str]) -> str:
        """A person picks options of a select menu of a bot message as it is now."""
        return self._use_component(user_id, message, custom_id, component_type=3, values=values)

    def submit_modal(self, user_id: int, token: str, values: dict[str, str]) -> str:
        """A person fills in and submits the modal the bot opened in answer to interaction `token`."""
        with self._state.lock:
            opener = self._state.interactions[token]
            if opener.modal is None:
                raise ValueError("the bot did not answer that interaction with a modal")
            if opener.user_id != user_id:
                raise ValueError("a modal is shown only to the person whose interaction opened it")
            inputs = {item["custom_id"]: item for item in _modal_inputs(opener.modal["components"])}
            unknown = set(values) - set(inputs)
            if unknown:
                raise ValueError(f"the modal has no inputs {sorted(unknown)}; it has {sorted(inputs)}")
            for custom_id, item in inputs.items():
                value = values.get(custom_id, "")
                if item.get("required", True) and not value:
                    raise ValueError(f"the modal's input {custom_id!r} is required; the client insists")
                if len(value) > item.get("max_length", 4000) or len(value) < item.get("min_length", 0):
                    raise ValueError(f"{value!r} breaks the length limits of input {custom_id!r}")
            rows = [
                {
                    "type": 1,
                    "components": [{"type": 4, "custom_id": custom_id, "value": values.get(custom_id, "")}],
                }
                for custom_id in inputs
            ]
            data = {"custom_id": opener.modal["custom_id"], "components": rows}
            channel = self._state.channel(opener.channel_id)
            message = None if opener.message_id is None else self._state.find_message(opener.message_id)
            return self._interaction(
                MODAL_SUBMIT,
                user_id,
                channel,
                data,
                message=None if message is None else message.message,
                opener_token=token,
            )

    # What the bot did

    @property
    def calls(self) -> list[ApiCall]:
        """Every REST call so far, rejected ones included, oldest first (a snapshot)."""
        with self._state.lock:
            return list(self._state.calls)

    @property
    def is_connected(self) -> bool:
        """Whether a bot has identified on the gateway and is connected now."""
        return any(session.intents is not None for session in self._server.sessions)

    @property
    def gateway_sessions(self) -> list[dict[str, Any]]:
        """The connected sessions: their intents and how many heartbeats each sent."""
        return [
            {"intents": session.intents, "heartbeats": session.heartbeats, "session_id": session.session_id}
            for session in self._server.sessions
        ]

    def disconnect_bot(self) -> None:
        """Drop the bot's gateway connections (as a network failure would)."""
        for session in list(self._server.sessions):
            self._server.run(session.socket.close(code=4000, message=b"Unknown error"))

    def messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a channel as they are now (ephemeral ones included), oldest first."""
        with self._state.lock:
            return [copy.deepcopy(s.message) for s in self._state.messages.get(channel_id, []) if s.from_bot]

    def message(self, channel_id: int, message_id: int | str) -> dict[str, Any]:
        """Any message of a channel as it is now."""
        with self._state.lock:
            stored = self._state.stored(channel_id, int(message_id))
            if stored is None:
                raise KeyError(f"channel {channel_id} has no message {message_id}")
            return copy.deepcopy(stored.message)

    def edits(self, channel_id: int, message_id: int | str) -> int:
        """How many times the bot edited a message."""
        with self._state.lock:
            stored = self._state.stored(channel_id, int(message_id))
            return 0 if stored is None else stored.edits

    def interaction(self, token: str) -> Interaction:
        """An interaction and how the bot answered it (a snapshot)."""
        with self._state.lock:
            return copy.deepcopy(self._state.interactions[token])

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The slash commands the bot registered globally, or in a server."""
        with self._state.lock:
            return copy.deepcopy(self._state.commands.get(guild_id, []))

    def file(self, url: str) -> bytes:
        """The bytes behind an attachment URL."""
        with self._state.lock:
            for stored in self._state.files.values():
                if stored.url == url:
                    return stored.data
        raise KeyError(url)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll `predicate` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(predicate, timeout))
            await asyncio.sleep(_POLL_INTERVAL_S)
        return result

    def _timeout_message(self, predicate: Callable[[], Any], timeout: float) -> str:
        recent = self.calls[-_CALLS_SHOWN_ON_TIMEOUT:]
        lines = [f"  {call.route} -> {call.status} {call.error or ''}" for call in recent]
        name = getattr(predicate, "__qualname__", repr(predicate))
        return f"{name} stayed falsy for {timeout}s; the bot's last REST calls:\n" + (
            "\n".join(lines) or "  (none)"
        )

    # Fault injection

    def fail_next(
        self,
        route: str,
        *,
        status: int = 429,
        retry_after: float = 1.0,
        code: int = 0,
        message: str = "",
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of a route fail.

        `route` as the spec names it: "PATCH /channels/{channel_id}/messages/{message_id}".
        """
        if not any(known.key == route for known in self._state.spec.routes):
            raise ValueError(f"{route!r} is not a route of the committed spec subset")
        error = (
            DiscordApiError.rate_limited(retry_after)
            if status == 429
            else DiscordApiError(status, code, message or f"{status} error")
        )
        with self._state.lock:
            self._state.failures.setdefault(route, deque()).extend([error] * times)

    # Helpers

    def _channel_for(self, user_id: int, channel_id: int | None) -> Channel:
        if channel_id is None:
            return self._state.dm_channel(user_id)
        channel = self._state.channel(channel_id)
        if channel.type == DM and channel.recipient_id != user_id:
            raise ValueError(f"user {user_id} is not in DM channel {channel_id}")
        if channel.type != DM and user_id not in self._state.member_roles:
            raise ValueError(f"user {user_id} is not a member of the server; add_member first")
        return channel

    def _store_file(
        self, channel_id: int, filename: str, data: bytes, content_type: str | None
    ) -> StoredFile:
        file_id = self._state.snowflake()
        url = f"{self._state.base_url}/attachments/{channel_id}/{file_id}/{filename}"
        stored = StoredFile(file_id, channel_id, filename, content_type, data, url)
        self._state.files[file_id] = stored
        return stored

    def _command(self, name: str, *, in_guild: bool) -> dict[str, Any]:
        scopes = [GUILD_ID, None] if in_guild else [None]
        for scope in scopes:
            for command in self._state.commands.get(scope, []):
                if command["name"] == name:
                    if not in_guild and command.get("contexts") is not None and 1 not in command["contexts"]:
                        raise ValueError(f"/{name} is not offered in direct messages")
                    return command
        raise ValueError(
            f"the bot registered no command /{name} here (guild commands only show in their server)"
        )

    def _use_component(
        self,
        user_id: int,
        message: dict[str, Any],
        custom_id: str,
        *,
        component_type: int,
        values: list[str] | None = None,
    ) -> str:
        with self._state.lock:
            channel = self._channel_for(user_id, int(message["channel_id"]))
            stored = self._state.stored(channel.id, int(message["id"]))
            if stored is None:
                raise ValueError(f"message {message['id']} does not exist (deleted or never sent)")
            if stored.message["flags"] & payloads.EPHEMERAL and not _is_for(stored.message, user_id):
                raise ValueError("an ephemeral message is shown only to the person it answered")
            components = payloads.component_custom_ids(stored.message["components"])
            component = components.get(custom_id)
            if component is None or component["type"] != component_type:
                raise ValueError(
                    f"message {message['id']} has no component {custom_id!r} now; it has {sorted(components)}"
                )
            if component.get("disabled"):
                raise ValueError(f"component {custom_id!r} is disabled")
            data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
            if values is not None:
                allowed = {option["value"] for option in component.get("options", [])}
                if not set(values) <= allowed or not component.get("min_values", 1) <= len(
                    values
                ) <= component.get("max_values", 1):
                    raise ValueError(f"{values} is not a valid choice of {sorted(allowed)}")
                data["values"] = values
            return self._interaction(MESSAGE_COMPONENT, user_id, channel, data, message=stored.message)

    def _interaction(
        self,
        kind: int,
        user_id: int,
        channel: Channel,
        data: dict[str, Any],
        *,
        message: dict[str, Any] | None = None,
        opener_token: str | None = None,
    ) -> str:
        state = self._state
        interaction = Interaction(
            id=state.snowflake(),
            token=state.token(),
            type=kind,
            channel_id=channel.id,
            user_id=user_id,
            created=time.monotonic(),
            data=data,
            message_id=None if message is None else int(message["id"]),
            opener_token=opener_token,
        )
        state.interactions[interaction.token] = interaction
        payload: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": state.bot_user["id"],
            "type": kind,
            "data": copy.deepcopy(data),
            "channel": payloads.channel(state, channel),
            "channel_id": str(channel.id),
            "token": interaction.token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": payloads.MEMBER_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": MAX_USER_ATTACHMENT_BYTES,
        }
        if channel.type == DM:
            payload.update(
                user=state.user(user_id), context=1, authorizing_integration_owners={"0": str(GUILD_ID)}
            )
        else:
            member = payloads.member(state, user_id)
            member["permissions"] = payloads.MEMBER_PERMISSIONS
            payload.update(
                guild_id=str(GUILD_ID),
                guild={"id": str(GUILD_ID), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member,
                context=0,
                authorizing_integration_owners={"0": str(GUILD_ID)},
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        state.dispatch("INTERACTION_CREATE", payload)
        return interaction.token


def _option_value(option: dict[str, Any], value: Any) -> Any:
    """A value as the client sends it for an option, checked as the client checks it."""
    if option["type"] == ATTACHMENT_OPTION:
        return value
    expected = _OPTION_TYPES.get(option["type"])
    if expected is None or not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"option {option['name']!r} takes a {expected}, not {value!r}")
    choices = [choice["value"] for choice in option.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"option {option['name']!r} offers only {choices}")
    if ("min_value" in option and value < option["min_value"]) or (
        "max_value" in option and value > option["max_value"]
    ):
        raise ValueError(
            f"option {option['name']!r} takes {option.get('min_value')}..{option.get('max_value')}"
        )
    return value


def _modal_inputs(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The text inputs of a modal, in action rows (classic) or in labels (type 18)."""
    inputs = []
    for item in components:
        children = item.get("components") or ([item["component"]] if "component" in item else [])
        inputs += [child for child in children if child.get("type") == 4]
    return inputs


def _is_for(message: dict[str, Any], user_id: int) -> bool:
    metadata = message.get("interaction_metadata") or {}
    return str(metadata.get("user", {}).get("id")) == str(user_id)
