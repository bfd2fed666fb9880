"""uvicorn inside the service's event loop, beside the chat front ends.

The service owns the signals (Ctrl-C, SIGTERM) and stops every front end in order, so uvicorn's
own signal handling is left out; the socket is bound here first, so a port in use is one clear
error and WEB_PORT=0 (any free port, for tests) is reported with the port it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette

logger = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 3.0


class WebServerError(RuntimeError):
    """The web app cannot listen where the settings say; the message says what to change."""


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the service it runs in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """The service's own handlers stay in place."""
        yield


class WebServer:
    """Serves a Starlette app on host:port from a task of the running event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where the app answers (with the port actually bound)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind the socket and start serving; raise WebServerError when the address is taken."""
        listener = self._bind()
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",  # the service starts and stops what the app uses
            log_config=None,  # the service's logging
            access_log=False,
            proxy_headers=True,
            server_header=False,
            timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_SECONDS),
        )
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]), name="web-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises what stopped it
                raise WebServerError("the web server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (a few seconds at most), and close."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named, not left 0: asyncio switches Nagle's algorithm off only on sockets that
        # say they are TCP, and with it on, every answer after a connection's first waited ~40 ms
        # for the browser's delayed ACK (56 ms instead of 14 ms per upload, measured).
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as error:
            listener.close()
            raise WebServerError(
                f"cannot listen on {self.host}:{self.port} ({error.strerror}); "
                "set WEB_PORT to a free port, or WEB_HOST to an address of this machine"
            ) from None
        listener.listen(2048)
        listener.setblocking(False)
        return listener
