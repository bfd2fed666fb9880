"""The HTTP side: an aiohttp server with the REST API, the attachments and the gateway, in its own
thread with its own event loop (so a bot under test that blocks for a moment does not stall Discord's
side, as with the real servers)."""

import asyncio
import hashlib
import json
import logging
import socket
import threading
import time
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import DiscordApiError
from .gateway import GatewaySession, compression
from .rest import HANDLERS, Request, UploadedFile
from .state import ApiCall, DiscordState

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
# Routes an interaction's token authorises; every other route needs the bot token.
TOKEN_FREE_PREFIXES = ("/interactions/", "/webhooks/")
_START_TIMEOUT_S = 10.0
_CLIENT_MAX_SIZE = 30 * 1024 * 1024


class DiscordServer:
    """Serves `/api/v10/...`, `/attachments/...` and the `/gateway` WebSocket on 127.0.0.1."""

    def __init__(
        self, state: DiscordState, token: str, heartbeat_interval_ms: int, *, check_spec: bool = True
    ) -> None:
        self._state = state
        self._check_spec = check_spec
        self._token = token
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.sessions: list[GatewaySession] = []
        self.port: int | None = None

    def start(self) -> None:
        """Start the event loop thread and listen; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="discord-emulator", daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(_START_TIMEOUT_S)
        self._state.base_url = f"http://127.0.0.1:{self.port}"
        self._state.on_new_event = self._wake_sessions

    def stop(self) -> None:
        """Close the gateway sessions, the server and its thread."""
        if self._loop is None or self._thread is None:
            return
        self._state.on_new_event = lambda: None
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(_START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT_S)
        self._loop.close()
        self._loop, self._thread, self.port = None, None, None

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the server's loop from another thread (closing a session, say)."""
        if self._loop is None:
            raise RuntimeError("the emulator is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_START_TIMEOUT_S)

    async def _serve(self) -> int:
        app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
        app.router.add_route("*", API_PREFIX + "/{path:.*}", self._handle_api)
        app.router.add_get("/attachments/{channel_id}/{file_id}/{filename}", self._handle_attachment)
        app.router.add_get("/gateway", self._handle_gateway)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, listener).start()
        return listener.getsockname()[1]

    async def _shutdown(self) -> None:
        for session in list(self.sessions):
            await session.socket.close(code=1001, message=b"Going away")
        if self._runner is not None:
            await self._runner.cleanup()

    def _wake_sessions(self) -> None:
        """Called from any thread when an event is dispatched."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_sessions_now)

    def _wake_sessions_now(self) -> None:
        for session in self.sessions:
            session.new_events.set()

    # REST

    async def _handle_api(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        started = time.time()
        spec = self._state.spec
        route_key, body, files = f"{request.method} {path}", None, {}
        try:
            found = spec.match(request.method, path)
            if found is None:
                if spec.allows_path(path):
                    raise DiscordApiError(405, 0, "405: Method Not Allowed")
                raise DiscordApiError(404, 0, "404: Not Found")
            route, params = found
            route_key = route.key
            if not path.startswith(TOKEN_FREE_PREFIXES):
                self._check_token(request.headers.get("Authorization"))
            if route_key not in HANDLERS:
                logger.error("the bot called %s, which the Discord emulator does not implement", route_key)
                raise DiscordApiError(501, 0, f"the Discord emulator does not implement {route_key}")
            unknown_query = set(request.query) - route.query
            if unknown_query:
                raise DiscordApiError.invalid_form_body(
                    "query", f"unknown query parameters {sorted(unknown_query)}"
                )
            body, files = await _read_body(request)
            problems = spec.request_errors(route, body) if self._check_spec else []
            if problems:
                raise DiscordApiError.invalid_form_body("body", "; ".join(problems))
            with self._state.lock:
                failure = self._state.take_failure(route_key)
                if failure is not None:
                    raise failure
                result = HANDLERS[route_key](
                    self._state,
                    Request(params=params, query=dict(request.query), body=body or {}, files=files),
                )
            checked = self._check_spec and result is not None
            problems = spec.response_errors(route, result) if checked else []
            if problems:
                raise RuntimeError(f"the emulator's answer breaks the spec: {problems}")
        except DiscordApiError as error:
            self._record(route_key, path, body, files, started, error.status, error.message)
            return _json(error.payload(), error.status, _error_headers(error, route_key))
        except Exception as error:
            logger.exception("the Discord emulator failed on %s", route_key)
            self._record(route_key, path, body, files, started, 500, repr(error))
            return _json({"message": f"emulator bug: {error!r}", "code": 0}, 500, {})
        self._record(route_key, path, body, files, started, 200 if result is not None else 204)
        headers = _rate_limit_headers(route_key)
        if result is None:
            return web.Response(status=204, headers=headers)
        return _json(result, 200, headers)

    def _check_token(self, authorization: str | None) -> None:
        if authorization != f"Bot {self._token}":
            raise DiscordApiError(401, 0, "401: Unauthorized")

    def _record(
        self,
        route: str,
        path: str,
        body: Any,
        files: dict[str, UploadedFile],
        at: float,
        status: int,
        error: str | None = None,
    ) -> None:
        call = ApiCall(
            route=route, path=path, body=body, at=at, status=status, error=error, files=tuple(files)
        )
        with self._state.lock:
            self._state.calls.append(call)

    # Attachments (Discord's CDN)

    async def _handle_attachment(self, request: web.Request) -> web.Response:
        with self._state.lock:
            stored = self._state.files.get(int(request.match_info["file_id"]))
        if stored is None or stored.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type=stored.content_type or "application/octet-stream")

    # Gateway

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("v") not in (None, "10") or request.query.get("encoding") not in (None, "json"):
            return web.Response(status=400, text="the emulator speaks gateway v10 with JSON only")
        socket_response = web.WebSocketResponse(max_msg_size=0)
        await socket_response.prepare(request)
        session = GatewaySession(
            self._state,
            socket_response,
            self._token,
            compress=compression(request),
            heartbeat_interval_ms=self._heartbeat_interval_ms,
        )
        self.sessions.append(session)
        try:
            await session.run()
        finally:
            self.sessions.remove(session)
        return socket_response


async def _read_body(request: web.Request) -> tuple[Any, dict[str, UploadedFile]]:
    """A JSON body, or a multipart one (its payload_json and its files[n] parts)."""
    if request.content_type == "application/json":
        try:
            return await request.json(), {}
        except ValueError as error:
            raise DiscordApiError(400, 50109, "The request body contains invalid JSON.") from error
    if request.content_type == "multipart/form-data":
        body: Any = None
        files: dict[str, UploadedFile] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise DiscordApiError.invalid_form_body("body", "nested multipart is not accepted")
            name = part.name or ""
            data = await part.read()
            if name == "payload_json":
                body = json.loads(data)
            elif name.startswith("files["):
                content_type = part.headers.get("Content-Type")
                files[name] = UploadedFile(name, part.filename or name, content_type, bytes(data))
            else:
                raise DiscordApiError.invalid_form_body(name, "unknown multipart part")
        return body, files
    if await request.read():
        raise DiscordApiError(400, 50109, "The request body contains invalid JSON.")
    return None, {}


def _json(data: Any, status: int, headers: dict[str, str]) -> web.Response:
    """A JSON answer with Discord's bare content type (discord.py reads anything else as text)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={**headers, "Content-Type": "application/json"}
    )


def _bucket(route_key: str) -> str:
    return hashlib.sha1(route_key.encode()).hexdigest()[:16]


def _rate_limit_headers(route_key: str) -> dict[str, str]:
    """Headers Discord sends with every answer; a large `remaining` keeps discord.py from waiting."""
    return {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": _bucket(route_key),
    }


def _error_headers(error: DiscordApiError, route_key: str) -> dict[str, str]:
    if error.status != 429:
        return _rate_limit_headers(route_key)
    retry_after = error.retry_after or 0.0
    return {
        "Retry-After": str(max(1, round(retry_after))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": _bucket(route_key),
        "X-RateLimit-Scope": "global" if error.is_global else "user",
        "Via": "1.1 google",  # discord.py takes a 429 without it for Cloudflare's ban
    }
