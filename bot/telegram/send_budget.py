"""Telegram's overall send limit (about 30 messages a second for a bot), shared by every instance.

With several instances each would otherwise spend the whole budget by itself. The count is a
moving one-second window in Redis (the `limits` package); PTB's AIORateLimiter does the rest as
in a single process (group limits, waiting out Telegram's RetryAfter answers). While Redis cannot
be reached, messages go out at once (Telegram's own 429s still hold them back), said once in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError
from telegram.ext import AIORateLimiter

from bot.core.rate_limit import REDIS_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)

MESSAGES_PER_SECOND = 30
# The calls that count against the budget: the ones that send or change a message.
COUNTED_ENDPOINTS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
    }
)
Answer = bool | dict[str, Any] | list[dict[str, Any]]


class SharedSendBudget(AIORateLimiter):
    """AIORateLimiter with the overall budget counted in Redis, across instances."""

    def __init__(self, redis_url: str, per_second: int = MESSAGES_PER_SECOND, max_retries: int = 3) -> None:
        super().__init__(overall_max_rate=0, max_retries=max_retries)
        storage = RedisStorage(
            redis_url,
            implementation="redispy",
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._window = MovingWindowRateLimiter(storage)
        self._budget = RateLimitItemPerSecond(per_second, namespace="telegram-sends")
        self._unreachable = False

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Answer]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Answer:
        """Wait for room in the shared budget, then send as AIORateLimiter does."""
        if endpoint in COUNTED_ENDPOINTS:
            await self._take_one()
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

    async def _take_one(self) -> None:
        while True:
            try:
                if await self._window.hit(self._budget, "all"):
                    self._reachable()
                    return
                stats = await self._window.get_window_stats(self._budget, "all")
            except (StorageError, RedisError, OSError) as error:
                if not self._unreachable:
                    logger.error("Redis is unreachable (%s): Telegram's send budget is not shared now", error)
                    self._unreachable = True
                return
            await asyncio.sleep(max(0.005, stats.reset_time - time.time()))

    def _reachable(self) -> None:
        if self._unreachable:
            logger.warning("Redis is reachable again: Telegram's send budget is shared again")
            self._unreachable = False
