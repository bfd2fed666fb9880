"""What the emulator remembers: people, channels, one server, messages, files, interactions, calls."""

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import DiscordApiError
from .spec import DiscordApiSpec

DISCORD_EPOCH_MS = 1_420_070_400_000

# Channel types (Discord's numbers).
GUILD_TEXT = 0
DM = 1


@dataclass(frozen=True)
class ApiCall:
    """One REST call the bot made: the route ("PATCH /channels/{channel_id}/messages/{message_id}"),
    the concrete path, the JSON body (multipart calls: their payload_json), when, and the answer."""

    route: str
    path: str
    body: Any
    at: float
    status: int
    error: str | None = None
    files: tuple[str, ...] = ()


@dataclass
class StoredFile:
    """A file a person attached or the bot uploaded, served at `url`."""

    id: int
    channel_id: int
    filename: str
    content_type: str | None
    data: bytes
    url: str


@dataclass
class Channel:
    """A direct-message channel with one person, or a text channel of the server."""

    id: int
    type: int
    name: str | None = None
    recipient_id: int | None = None


@dataclass
class Interaction:
    """A slash command, a button press, a select or a modal submission, and how the bot answered it."""

    id: int
    token: str
    type: int
    channel_id: int
    user_id: int
    created: float
    data: dict[str, Any]
    message_id: int | None = None  # the message whose component was used
    response_type: int | None = None  # the bot's callback type (4, 5, 6, 7, 9)
    response_at: float | None = None
    original_message_id: int | None = None  # the message the response created (4 or 5)
    modal: dict[str, Any] | None = None  # the modal the bot opened (callback 9)
    followups: list[int] = field(default_factory=list)
    opener_token: str | None = None  # for a modal submission: the interaction that opened the modal


@dataclass
class StoredMessage:
    """A message as it is now; `edits` counts the bot's edits."""

    message: dict[str, Any]
    from_bot: bool
    loading: bool = False  # a deferred interaction response the bot has not filled yet
    edits: int = 0


@dataclass
class DiscordState:
    """Everything the emulator knows, behind one lock that REST, the gateway and the tests share."""

    spec: DiscordApiSpec
    bot_user: dict[str, Any]
    guild: dict[str, Any]
    base_url: str = ""
    # The application's flags: whether the message-content intent is enabled in the developer portal.
    application_flags: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    member_roles: dict[int, list[int]] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    messages: dict[int, list[StoredMessage]] = field(default_factory=dict)
    files: dict[int, StoredFile] = field(default_factory=dict)
    interactions: dict[str, Interaction] = field(default_factory=dict)
    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    failures: dict[str, deque[DiscordApiError]] = field(default_factory=dict)
    # Gateway: every dispatched event, numbered; sessions read from here.
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    on_new_event: Callable[[], None] = lambda: None
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    # Ids and times

    def snowflake(self) -> int:
        """A fresh id in Discord's format: milliseconds since 2015 in the high bits, then a counter."""
        milliseconds = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (milliseconds << 22) | (next(self._counter) & 0x3FFFFF)

    @staticmethod
    def token() -> str:
        """An interaction token (opaque, URL-safe)."""
        return "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)

    @staticmethod
    def now() -> str:
        """A timestamp as Discord writes them."""
        return datetime.now(UTC).isoformat()

    # People and channels

    def user(self, user_id: int, name: str | None = None) -> dict[str, Any]:
        """A person (created on first sight), as Discord's User object; the bot's own for its id."""
        if str(user_id) == self.bot_user["id"]:
            return self.bot_user
        if user_id not in self.users:
            username = name or f"user{user_id}"
            self.users[user_id] = {
                "id": str(user_id),
                "username": username,
                "avatar": None,
                "discriminator": "0",
                "public_flags": 0,
                "flags": 0,
                "global_name": username.title(),
                "primary_guild": None,
            }
        return self.users[user_id]

    def dm_channel(self, user_id: int) -> Channel:
        """The direct-message channel between the bot and a person, opened on first use."""
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient_id == user_id:
                return channel
        channel = Channel(id=self.snowflake(), type=DM, recipient_id=user_id)
        self.channels[channel.id] = channel
        self.messages[channel.id] = []
        return channel

    def channel(self, channel_id: int) -> Channel:
        """A channel that exists, or Discord's 404."""
        channel = self.channels.get(channel_id)
        if channel is None:
            raise DiscordApiError.unknown("Channel", 10003)
        return channel

    # Messages

    def add_message(self, message: dict[str, Any], *, from_bot: bool, loading: bool = False) -> StoredMessage:
        """Store a message in its channel."""
        stored = StoredMessage(message, from_bot=from_bot, loading=loading)
        self.messages.setdefault(int(message["channel_id"]), []).append(stored)
        return stored

    def stored(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """A message of a channel by id."""
        for stored in self.messages.get(channel_id, []):
            if int(stored.message["id"]) == message_id:
                return stored
        return None

    def find_message(self, message_id: int) -> StoredMessage | None:
        """A message by id, in whichever channel it is."""
        for channel_messages in self.messages.values():
            for stored in channel_messages:
                if int(stored.message["id"]) == message_id:
                    return stored
        return None

    # Gateway events

    def dispatch(self, name: str, data: dict[str, Any]) -> None:
        """Queue a gateway event for every connected session."""
        self.events.append((name, data))
        self.on_new_event()

    # Fault injection

    def take_failure(self, route: str) -> DiscordApiError | None:
        """The next injected failure for a route, if any."""
        queue = self.failures.get(route)
        return queue.popleft() if queue else None
