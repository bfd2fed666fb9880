"""The gateway: one WebSocket session per connected bot, speaking Discord's opcodes.

HELLO → the bot's HEARTBEAT (ACKed) and IDENTIFY → READY and GUILD_CREATE, then every event the
emulator dispatches (MESSAGE_CREATE, MESSAGE_UPDATE, INTERACTION_CREATE), filtered by the intents
the bot identified with, and with message content withheld in server channels unless the bot has
the privileged MESSAGE_CONTENT intent or is mentioned, as on Discord. zlib-stream (or zstd-stream)
compression is used when the bot asks for it, as discord.py does by default.
"""

import asyncio
import contextlib
import copy
import importlib.util
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from . import payloads
from .state import DiscordState

logger = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0,
    1,
    2,
    6,
    7,
    9,
    10,
    11,
)

GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
PRIVILEGED = (1 << 1) | (1 << 8) | MESSAGE_CONTENT  # members, presences, message content
# Application flags saying the privileged message-content intent is enabled in the developer portal.
MESSAGE_CONTENT_ENABLED = (1 << 18) | (1 << 19)

CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014


class GatewaySession:
    """One bot connection."""

    def __init__(
        self,
        state: DiscordState,
        socket: web.WebSocketResponse,
        token: str,
        *,
        compress: str | None,
        heartbeat_interval_ms: int,
    ) -> None:
        self.state = state
        self.socket = socket
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._compressor = _compressor(compress)
        self._sequence = 0
        self._cursor: int | None = None  # index into state.events once identified
        self.intents: int | None = None
        self.session_id = secrets.token_hex(16)
        self.heartbeats = 0
        self.new_events = asyncio.Event()

    async def run(self) -> None:
        """Greet, then answer the bot's messages while forwarding events, until either side closes."""
        await self._send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        forwarder = asyncio.create_task(self._forward_events())
        try:
            async for message in self.socket:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._receive(json.loads(message.data))
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder

    async def _receive(self, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await self._send({"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(data)
        elif op == RESUME:
            # A resumed session would replay missed events; the emulator keeps none per session.
            await self._send({"op": INVALID_SESSION, "d": False})
        else:
            logger.debug("gateway: ignoring op %s", op)

    async def _identify(self, data: dict[str, Any]) -> None:
        if self._cursor is not None:
            await self.socket.close(code=CLOSE_ALREADY_AUTHENTICATED, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await self.socket.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await self.socket.close(code=CLOSE_INVALID_INTENTS, message=b"Invalid intent(s).")
            return
        with self.state.lock:
            if intents & MESSAGE_CONTENT and not self.state.application_flags & MESSAGE_CONTENT_ENABLED:
                await self.socket.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
                return
            self.intents = intents
            ready = {
                "v": 10,
                "user": copy.deepcopy(self.state.bot_user),
                "guilds": [{"id": self.state.guild["id"], "unavailable": True}],
                "session_id": self.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.state.base_url.replace("http://", "ws://") + "/gateway",
                "shard": [0, 1],
                "application": {"id": self.state.bot_user["id"], "flags": self.state.application_flags},
                "private_channels": [],
                "presences": [],
                "relationships": [],
                "guild_join_requests": [],
                "user_settings": {},
                "geo_ordered_rtc_regions": [],
            }
            guild = payloads.guild_create(self.state)
            self._cursor = len(self.state.events)
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", guild)
        self.new_events.set()

    async def _forward_events(self) -> None:
        while True:
            await self.new_events.wait()
            self.new_events.clear()
            if self._cursor is None:
                continue
            with self.state.lock:
                pending = self.state.events[self._cursor :]
                self._cursor = len(self.state.events)
            for name, data in pending:
                shown = self._as_seen(name, data)
                if shown is not None:
                    await self._dispatch(name, shown)

    def _as_seen(self, name: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """The event as this session may see it, or None if its intents exclude it."""
        intents = self.intents or 0
        if name not in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            return data
        in_dm = "guild_id" not in data
        if not intents & (DIRECT_MESSAGES if in_dm else GUILD_MESSAGES):
            return None
        bot_id = self.state.bot_user["id"]
        mentioned = any(user["id"] == bot_id for user in data.get("mentions", []))
        if in_dm or intents & MESSAGE_CONTENT or mentioned or data["author"]["id"] == bot_id:
            return data
        withheld = copy.deepcopy(data)
        withheld.update(content="", embeds=[], attachments=[], components=[])
        return withheld

    async def _dispatch(self, name: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        await self._send({"op": DISPATCH, "t": name, "s": self._sequence, "d": data})

    async def _send(self, payload: dict[str, Any]) -> None:
        if self.socket.closed:
            return
        text = json.dumps(payload)
        if self._compressor is None:
            await self.socket.send_str(text)
            return
        await self.socket.send_bytes(self._compressor(text.encode()))


def compression(request: web.Request) -> str | None:
    """The transport compression the bot asked for: zlib-stream, zstd-stream (discord.py's choice
    when the `zstandard` package is installed), or None."""
    compress = request.query.get("compress")
    if compress == "zstd-stream" and importlib.util.find_spec("zstandard") is None:
        raise web.HTTPBadRequest(text="zstd-stream needs the zstandard package on the emulator's side")
    if compress not in (None, "zlib-stream", "zstd-stream"):
        raise web.HTTPBadRequest(text=f"unsupported compress={compress}")
    return compress


def _compressor(compress: str | None) -> Callable[[bytes], bytes] | None:
    """One message at a time into the connection's shared compression stream, flushed whole."""
    if compress == "zlib-stream":
        stream = zlib.compressobj()
        return lambda data: stream.compress(data) + stream.flush(zlib.Z_SYNC_FLUSH)
    if compress == "zstd-stream":
        import zstandard

        zstd_stream = zstandard.ZstdCompressor().compressobj()
        return lambda data: zstd_stream.compress(data) + zstd_stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return None
