"""Pictures answered concurrently across channels, one at a time and in order within a channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

MAX_CONCURRENT_PICTURES = 256


class ChannelTurns:
    """Lets each channel's work run in the order it arrived, and bounds the work running at once.

    discord.py runs every event handler as its own task, so without this a person's second picture
    could be answered before the first. A handler takes its turn before its first `await`: the
    tasks start in the order of the gateway's events and asyncio's locks are first come, first
    served. As with Telegram's PerChatUpdateProcessor, the overall bound applies only to work whose
    turn has come, so one busy channel cannot hold back the others.
    """

    def __init__(self, max_concurrent: int = MAX_CONCURRENT_PICTURES) -> None:
        self._running = asyncio.BoundedSemaphore(max_concurrent)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: Counter[int] = Counter()

    @contextlib.asynccontextmanager
    async def turn(self, channel_id: int) -> AsyncIterator[None]:
        """Wait for the channel's earlier work to finish, then run."""
        lock = self._locks.setdefault(channel_id, asyncio.Lock())
        self._waiting[channel_id] += 1
        try:
            async with lock, self._running:
                yield
        finally:
            self._waiting[channel_id] -= 1
            if not self._waiting[channel_id]:
                del self._waiting[channel_id]
                del self._locks[channel_id]
