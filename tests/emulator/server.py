"""The HTTP side: an aiohttp server speaking the Bot API, in its own thread with its own event loop.

Running apart from the test's event loop means a bot under test that blocks for a moment (a model
prediction, a database call) does not stall Telegram's side, just as with the real servers.
"""

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from .errors import BotApiError
from .files import UploadedFile
from .methods import HANDLERS, MAX_UPLOAD_BYTES, begin_get_updates
from .state import ApiCall, TelegramState

logger = logging.getLogger(__name__)

GET_UPDATES = "getUpdates"
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]+")
# Headroom over Telegram's 50 MB upload limit so an oversized upload still gets Telegram's JSON answer.
_CLIENT_MAX_SIZE = MAX_UPLOAD_BYTES + 5 * 1024 * 1024
_START_TIMEOUT_S = 10.0
WEBHOOK_TIMEOUT_S = 30.0  # how long Telegram waits for a webhook's answer
WEBHOOK_RETRY_S = 0.2  # Telegram retries a failed delivery after a while; the emulator soon


class _ClientLeft(Exception):
    """The bot dropped a long poll before it was answered, so there is nobody to answer."""


class BotApiServer:
    """Serves `/bot<token>/<method>` and `/file/bot<token>/<file_path>` on a free port of 127.0.0.1."""

    def __init__(self, state: TelegramState, token: str) -> None:
        self._state = state
        self._token = token
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wakeup = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self.port: int | None = None
        # getUpdates calls being answered right now (read from other threads; an int is safe to read).
        self.polls_in_progress = 0

    def start(self) -> None:
        """Start the event loop thread and listen; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bot-api-emulator", daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(_START_TIMEOUT_S)
        self._state.on_new_update = self._notify_new_update

    def stop(self) -> None:
        """End pending long polls, close the server and its thread."""
        if self._loop is None or self._thread is None:
            return
        self._state.on_new_update = lambda: None
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(_START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT_S)
        self._loop.close()
        self._loop, self._thread, self.port = None, None, None

    async def _serve(self) -> int:
        self._wakeup = asyncio.Event()
        # A connection per delivery, so that a load balancer in front of several instances spreads them.
        self._webhook_session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S),
            connector=aiohttp.TCPConnector(force_close=True),
        )
        self._deliverer = asyncio.create_task(self._deliver_to_webhook())
        app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        # handler_cancellation: a long poll the bot abandons (at shutdown) ends here too.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, listener).start()
        return listener.getsockname()[1]

    async def _shutdown(self) -> None:
        self._closing = True
        self._wake_pollers()
        self._deliverer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._deliverer
        await self._webhook_session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _notify_new_update(self) -> None:
        """Called from any thread when an update is queued."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_pollers)

    def _wake_pollers(self) -> None:
        """Wake every waiting getUpdates; each then checks what changed."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    # Webhook delivery

    async def _deliver_to_webhook(self) -> None:
        """With a webhook set, POST each update there, at most `max_connections` at a time, until a 2xx.

        As Telegram does, an update whose delivery fails is tried again later (never dropped), and
        the next ones wait behind it when only one connection is allowed.
        """
        posting: set[asyncio.Task[None]] = set()
        while not self._closing:
            with self._state.lock:
                webhook = self._state.webhook
                updates = self._state.updates_to_post()
            for update in updates:
                if webhook is None:
                    break
                task = asyncio.create_task(self._post_update(webhook.url, webhook.secret_token, update))
                posting.add(task)
                task.add_done_callback(posting.discard)
            wakeup = self._wakeup
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), WEBHOOK_RETRY_S)

    async def _post_update(self, url: str, secret: str | None, update: dict[str, Any]) -> None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        error: str | None = None
        try:
            async with self._webhook_session.post(url, json=update, headers=headers) as response:
                if not 200 <= response.status < 300:
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as failure:
            error = f"Connection failed: {failure!r}"
        with self._state.lock:
            self._state.update_posted(update["update_id"], error)
        if error is not None:
            await asyncio.sleep(WEBHOOK_RETRY_S)  # then the next loop round tries it again
        self._wake_pollers()

    # Bot API calls

    async def _handle_api(self, request: web.Request) -> web.Response:
        method_name = request.match_info["method"]
        started = time.time()
        params: dict[str, Any] = {}
        try:
            self._check_token(request.match_info["token"])
            method = self._state.spec.method(method_name)
            if method is None:
                raise BotApiError(404, "Not Found")
            method_name = method.name
            if method_name != GET_UPDATES and method_name not in HANDLERS:
                logger.error("the bot called %s, which the Bot API emulator does not implement", method_name)
                raise BotApiError(
                    501, f"Not Implemented: the Bot API emulator does not implement {method_name}"
                )
            raw, files = await _read_params(request)
            params = {**raw, **files}
            params = self._state.spec.decode_params(method, raw, files)
            with self._state.lock:
                failure = self._state.take_failure(method_name)
            if failure is not None:
                raise failure
            if method_name == GET_UPDATES:
                result = await self._get_updates(request, params)
            else:
                with self._state.lock:
                    result = HANDLERS[method_name](self._state, params)
        except BotApiError as error:
            self._record(method_name, params, started, error.status, error.description)
            return web.json_response(error.payload(), status=error.status)
        except _ClientLeft:
            return web.Response(status=204)
        except Exception as error:
            logger.exception("the Bot API emulator failed on %s", method_name)
            failure = BotApiError(500, f"Internal Server Error: emulator bug: {error!r}")
            self._record(method_name, params, started, failure.status, failure.description)
            return web.json_response(failure.payload(), status=failure.status)
        self._record(method_name, params, started, 200)
        return web.json_response({"ok": True, "result": result})

    def _check_token(self, token: str) -> None:
        """Telegram answers 401 for a well-formed but wrong token and 404 for a malformed one."""
        if token == self._token:
            return
        if TOKEN_PATTERN.fullmatch(token):
            raise BotApiError(401, "Unauthorized")
        raise BotApiError(404, "Not Found")

    def _record(
        self, method: str, params: dict[str, Any], at: float, status: int, error: str | None = None
    ) -> None:
        with self._state.lock:
            self._state.calls.append(ApiCall(method=method, params=params, at=at, status=status, error=error))

    async def _get_updates(self, request: web.Request, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Long polling: answer as soon as updates are pending, or with [] once `timeout` passes."""
        with self._state.lock:
            limit = begin_get_updates(self._state, params)
        # A newer getUpdates ends any older one still waiting, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(params.get("timeout", 0), 0)
        self.polls_in_progress += 1
        try:
            while True:
                if generation != self._poll_generation:
                    await self._raise_if_client_left(request)
                    raise BotApiError(409, CONFLICT)
                with self._state.lock:
                    updates = self._state.pending_updates(limit)
                if updates or self._closing or loop.time() >= deadline:
                    return updates
                wakeup = self._wakeup
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), deadline - loop.time())
        finally:
            self.polls_in_progress -= 1

    @staticmethod
    async def _raise_if_client_left(request: web.Request) -> None:
        """A poll superseded because its client gave up on it needs no 409 (nobody would read it)."""
        await asyncio.sleep(0.05)  # let the server notice a connection the client has just closed
        if request.transport is None or request.transport.is_closing():
            raise _ClientLeft

    # File downloads

    async def _handle_file(self, request: web.Request) -> web.Response:
        # PTB percent-encodes the token's colon in file URLs; accept it either way.
        token = unquote(request.match_info["token"])
        try:
            self._check_token(token)
        except BotApiError as error:
            return web.json_response(error.payload(), status=error.status)
        with self._state.lock:
            stored = self._state.files.by_path(unquote(request.match_info["file_path"]))
        if stored is None:
            return web.json_response(BotApiError(404, "Not Found").payload(), status=404)
        return web.Response(body=stored.data, content_type="application/octet-stream")


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from the query string and a form, multipart or JSON body, as Telegram accepts them."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as error:
            raise BotApiError.bad_request(f"can't parse JSON body: {error}") from error
        if not isinstance(body, dict):
            raise BotApiError.bad_request("the JSON body must be an object")
        raw.update({name: value for name, value in body.items() if value is not None})
    elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge as error:
            raise BotApiError(413, "Request Entity Too Large") from error
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = UploadedFile(value.filename or name, value.content_type, value.file.read())
            else:
                raw[name] = value
    return raw, files
