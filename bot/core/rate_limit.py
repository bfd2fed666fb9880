"""How many pictures a person may send: a moving one-minute window per person (the `limits` package).

Entries expire with their window, so the limiter keeps nothing for people who stopped sending.
The storage is memory in a single process; with REDIS_URL it is Redis, so every instance counts
the same pictures. While Redis cannot be reached pictures are let through (a limit that fails
open: reading on is better than refusing everyone), and that is said once in the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5  # a picture waits no longer than this for an unreachable Redis


@dataclass(frozen=True)
class Refused:
    """A picture over the limit: how long to wait, and whether to say so (once a minute at most)."""

    wait_seconds: float
    tell: bool


class PictureRateLimit:
    """At most `per_minute` pictures per person in any minute."""

    def __init__(self, per_minute: int, redis_url: str | None = None) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self.per_minute = per_minute
        self._pictures = RateLimitItemPerMinute(per_minute, namespace="pictures")
        # A flood is told once a minute that it is too fast, not once per picture.
        self._notices = RateLimitItemPerMinute(1, namespace="rate-notices")
        storage = (
            storage_from_string(
                redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            if redis_url
            else storage_from_string("memory://")
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._unreachable = False

    def admit(self, person: str) -> Refused | None:
        """Count a picture from `person`; None if it may be read, else how it was refused."""
        try:
            if self._limiter.hit(self._pictures, person):
                self._reachable()
                return None
            reset_at = self._limiter.get_window_stats(self._pictures, person).reset_time
            return Refused(
                wait_seconds=max(0.0, reset_at - time.time()), tell=self._limiter.hit(self._notices, person)
            )
        except (StorageError, RedisError, OSError) as error:
            if not self._unreachable:
                logger.error("The rate limit's storage is unreachable (%s): pictures are let through", error)
                self._unreachable = True
            return None

    def _reachable(self) -> None:
        if self._unreachable:
            logger.warning("The rate limit's storage is reachable again")
            self._unreachable = False
