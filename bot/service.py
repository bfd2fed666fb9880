"""Run the service: settings, logging, the database, the shared services, then every front end.

`python -m bot` (`make run`) calls `main`, which runs until SIGINT or SIGTERM and then stops the
front ends, cancels and records a run in progress, and stops the reading workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.core.services import Services, build_services, start_services, stop_services
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from db import repository
from db.session import make_engine, make_session_factory, upgrade

if TYPE_CHECKING:
    from bot.discord.client import DigitBot
    from bot.telegram.application import TelegramApplication
    from bot.web.server import WebServer

logger = logging.getLogger("bot")


class FrontEndError(Exception):
    """A front end cannot start; the message says why and what to change, in one line."""


def prepare_database(settings: Settings) -> sessionmaker[Session]:
    """Migrate the schema to head and mark runs a previous crash left running as interrupted."""
    url = settings.resolved_database_url
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with sessions.begin() as session:
        # Only the runs this instance was training: other instances' and workers' runs go on.
        interrupted = repository.mark_interrupted_runs(session, trainer=settings.instance_name)
    if interrupted:
        logger.warning("Marked %d training run(s) left running by a restart as interrupted", interrupted)
    return sessions


def main() -> int:
    """Run the service until SIGINT or SIGTERM."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"mnist-digit-bot: cannot start:\n{error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        sessions = prepare_database(settings)
    except Exception as error:
        # One clear line for the operator, and the whole cause in the log below it.
        where = settings.resolved_database_url.split("@")[-1]
        first_line = str(error).splitlines()[0] if str(error) else ""
        print(
            f"mnist-digit-bot: cannot open the database {where}: {error.__class__.__name__}: {first_line}",
            file=sys.stderr,
        )
        logger.error("Preparing the database failed", exc_info=error)
        return 2
    try:
        asyncio.run(serve(build_services(settings, sessions)))
    except FrontEndError as error:
        print(f"mnist-digit-bot: cannot start: {error}", file=sys.stderr)
        return 2
    return 0


async def serve(services: Services) -> None:
    """Start the services and the front ends, wait for a stop signal, stop them in reverse order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        # The front ends first, so that their admin channels follow a first run the services start;
        # on the way out the services stop first, and the front ends still tell the admins.
        for front_end in front_ends(services):
            await stack.enter_async_context(front_end)
        await stack.enter_async_context(running_services(services))
        logger.info("Running; stop with Ctrl-C or SIGTERM")
        await stop.wait()
    logger.info("Stopped")


def front_ends(services: Services) -> list[contextlib.AbstractAsyncContextManager[object]]:
    """Every front end the settings ask for, not yet started: the web app always, the chats with a token."""
    settings = services.settings
    starting: list[contextlib.AbstractAsyncContextManager[object]] = []
    if settings.telegram_bot_token:
        starting.append(running_telegram(services))
    if settings.discord_bot_token:
        starting.append(running_discord(services))
    if not settings.telegram_bot_token and not settings.discord_bot_token:
        logger.info("No chat token (TELEGRAM_BOT_TOKEN, DISCORD_BOT_TOKEN): running the web app only")
    starting.append(running_web(services))
    return starting


@contextlib.asynccontextmanager
async def running_services(services: Services) -> AsyncIterator[Services]:
    """The shared services, started and, on the way out, stopped."""
    await start_services(services)
    try:
        yield services
    finally:
        await stop_services(services)


@contextlib.asynccontextmanager
async def running_telegram(services: Services, poll_timeout: int = 10) -> AsyncIterator[TelegramApplication]:
    """The Telegram front end, as PTB's docs show for an application inside another event loop:
    polling, or with TELEGRAM_WEBHOOK_URL taking updates from the web app's webhook route."""
    from bot.telegram.application import build_telegram_application  # PTB loads only when it runs
    from bot.telegram.webhook import ALLOWED_UPDATES

    application = build_telegram_application(services)
    settings = services.settings
    logger.info(
        "Telegram: admins %s, progress to %s", sorted(settings.admin_user_ids), settings.progress_chat_ids
    )
    async with application:
        # PTB runs post_init only from run_polling(); started by hand, the application runs it here.
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        if settings.telegram_webhook_url:
            async with telegram_webhook(services, application):
                yield application
        else:
            if application.updater is None:
                raise FrontEndError("the Telegram application has no updater to poll with")
            await application.updater.start_polling(timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES)
            try:
                yield application
            finally:
                await application.updater.stop()
        await application.stop()


@contextlib.asynccontextmanager
async def telegram_webhook(services: Services, application: TelegramApplication) -> AsyncIterator[None]:
    """Updates from the web app's webhook route: into PTB's queue, or queued per chat in Redis."""
    from bot.telegram.webhook import DirectInbox, OrderedInbox, set_webhook_once

    settings = services.settings
    if settings.telegram_webhook_url is None or settings.telegram_webhook_secret is None:
        raise FrontEndError("TELEGRAM_WEBHOOK_URL is not set")
    ordered = OrderedInbox(application, settings.redis_url) if settings.redis_url else None
    services.telegram_inbox = ordered or DirectInbox(application)
    if ordered is not None:
        ordered.start()
    try:
        await set_webhook_once(
            application, settings.telegram_webhook_url, settings.telegram_webhook_secret, settings.redis_url
        )
        yield
    finally:
        services.telegram_inbox = None
        if ordered is not None:
            await ordered.stop()


@contextlib.asynccontextmanager
async def running_web(services: Services) -> AsyncIterator[WebServer]:
    """The web front end: the page at /, the dashboard at /admin, served by uvicorn in this event loop."""
    from bot.web.application import build_web_application  # Starlette loads only when it runs
    from bot.web.live_progress import LiveProgress
    from bot.web.server import WebServer, WebServerError

    settings = services.settings
    live = LiveProgress()
    server = WebServer(build_web_application(services, live), settings.web_host, settings.web_port)
    try:
        await server.start()
    except WebServerError as error:
        services.admins.remove(live)
        raise FrontEndError(str(error)) from None
    logger.info(
        "Web app on %s (admin dashboard at %s/admin; WEB_HOST and WEB_PORT move it)", server.url, server.url
    )
    if settings.web_public_url:
        logger.info("Web app's public address: %s", settings.web_public_url)
    try:
        yield server
    finally:
        await live.close()  # ends the dashboards' event streams, which would hold the server open
        await server.stop()
        services.admins.remove(live)


@contextlib.asynccontextmanager
async def running_discord(services: Services) -> AsyncIterator[DigitBot]:
    """The Discord front end, connected to the gateway, as discord.py's docs show for `async with client`."""
    from bot.discord.client import build_discord_bot  # discord.py loads only when it runs

    settings = services.settings
    if settings.discord_bot_token is None:
        raise ValueError("DISCORD_BOT_TOKEN is not set; the Discord front end cannot start")
    bot = build_discord_bot(services)
    logger.info(
        "Discord: admins %s, admin role %s, progress to %s",
        sorted(settings.discord_admin_user_ids),
        settings.discord_admin_role_id,
        settings.discord_progress_channel_id or "the admins' direct messages",
    )
    async with bot:
        connection = asyncio.create_task(bot.start(settings.discord_bot_token), name="discord-gateway")
        ready = asyncio.create_task(bot.wait_until_ready(), name="discord-ready")
        await asyncio.wait({connection, ready}, return_when=asyncio.FIRST_COMPLETED)
        if connection.done():  # it ended before READY: a wrong token, a refused intent, no network
            ready.cancel()
            raise discord_start_error(connection)
        connection.add_done_callback(_log_discord_end)
        try:
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await connection


def discord_start_error(connection: asyncio.Task[None]) -> FrontEndError:
    """Why the Discord connection ended before it was ready, in the operator's words."""
    import discord

    error = connection.exception()
    if isinstance(error, discord.LoginFailure):
        return FrontEndError(
            "Discord refused DISCORD_BOT_TOKEN; copy it again from the Bot page of the developer portal"
        )
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return FrontEndError(
            "Discord refused the message-content intent: enable it on the Bot page of the developer "
            "portal (Privileged Gateway Intents), or leave DISCORD_READING_CHANNEL_IDS empty"
        )
    return FrontEndError(f"the Discord connection ended before it was ready: {error!r}")


def _log_discord_end(connection: asyncio.Task[None]) -> None:
    """The gateway connection ended while the service runs: say so (discord.py reconnects by itself
    after network failures, so this is a failure it gave up on)."""
    if not connection.cancelled() and connection.exception() is not None:
        logger.error("The Discord connection ended; Discord is not served", exc_info=connection.exception())
