"""Connecting a plain discord.py client to the emulator (the bot itself does it from its settings)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import yarl

from .emulator import DiscordEmulator

_READY_TIMEOUT_S = 30.0


@contextlib.asynccontextmanager
async def connected(client: discord.Client, emulator: DiscordEmulator) -> AsyncIterator[discord.Client]:
    """Point discord.py at the emulator, start the client and wait until it is ready; close it after.

    Whatever ends the connection before it is ready (a wrong token, a refused intent) is raised.
    """
    discord.http.Route.BASE = emulator.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emulator.gateway_url)
    async with client:
        connection = asyncio.create_task(client.start(emulator.token))
        ready = asyncio.create_task(client.wait_until_ready())
        await asyncio.wait({connection, ready}, timeout=_READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if connection.done():
            ready.cancel()
            connection.result()
        if not ready.done():
            ready.cancel()
            raise TimeoutError(f"the client was not ready within {_READY_TIMEOUT_S} s")
        try:
            yield client
        finally:
            await client.close()
            await connection
