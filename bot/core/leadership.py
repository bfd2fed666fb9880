"""Which service instance leads: the one that relays shared work (a worker's run to the admins).

A Redis lock with a short expiry, renewed while the instance lives: if the leader dies, another
instance takes over within LEASE_SECONDS. While Redis cannot be reached nobody leads, and that is
said once in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

logger = logging.getLogger(__name__)

LEADER_KEY = "digitbot:leader"
LEASE_SECONDS = 10.0
RENEW_SECONDS = 3.0
# Stopping waits at most this long for Redis: redis-py's asyncio client can wait forever to close
# a connection that a cancelled blocking read left behind (redis/redis-py#2579, #3941), and a
# stopping service must not hang on it (seen once in the tests, under load).
STOP_SECONDS = 5.0


class Leadership:
    """Tries to lead, and keeps leading while it can."""

    def __init__(self, redis: Redis, key: str = LEADER_KEY) -> None:
        # thread_local=False: the token must survive the asyncio tasks that acquire and renew it.
        self._lock = Lock(redis, key, timeout=LEASE_SECONDS, blocking=False, thread_local=False)
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        self._unreachable = False

    def start(self) -> None:
        """Campaign in the background."""
        self._task = asyncio.create_task(self._campaign(), name="leadership")

    async def stop(self) -> None:
        """Stop campaigning and hand the lead over at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=STOP_SECONDS)
        if self.is_leader:
            # Bounded: a release stuck on a broken connection only delays the lease's expiry.
            with contextlib.suppress(LockError, RedisError, TimeoutError):
                async with asyncio.timeout(STOP_SECONDS):
                    await self._lock.release()
        self.is_leader = False

    async def _campaign(self) -> None:
        while True:
            await self._try_once()
            await asyncio.sleep(RENEW_SECONDS)

    async def _try_once(self) -> None:
        try:
            if self.is_leader:
                await self._lock.reacquire()
            else:
                self.is_leader = await self._lock.acquire()
                if self.is_leader:
                    logger.info("This instance now leads")
            if self._unreachable:
                logger.warning("Redis is reachable again")
                self._unreachable = False
        except LockError:
            logger.warning("This instance lost the lead")
            self.is_leader = False
        except (RedisError, OSError) as error:
            if not self._unreachable:
                logger.error("Redis is unreachable (%s); no instance leads until it is back", error)
                self._unreachable = True
            self.is_leader = False
