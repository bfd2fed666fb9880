"""How many pictures a person may send: a moving one-minute window per person (the `limits` package).

Entries expire with their window, so the limiter keeps nothing for people who stopped sending.
The storage is memory by default; a `redis://` URI shares the limit across service instances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Refused:
    """A picture over the limit: how long to wait, and whether to say so (once a minute at most)."""

    wait_seconds: float
    tell: bool


class PictureRateLimit:
    """At most `per_minute` pictures per person in any minute."""

    def __init__(self, per_minute: int, storage_uri: str = "memory://") -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self.per_minute = per_minute
        self._pictures = RateLimitItemPerMinute(per_minute, namespace="pictures")
        # A flood is told once a minute that it is too fast, not once per picture.
        self._notices = RateLimitItemPerMinute(1, namespace="rate-notices")
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def admit(self, person: str) -> Refused | None:
        """Count a picture from `person`; None if it may be read, else how it was refused."""
        if self._limiter.hit(self._pictures, person):
            return None
        reset_at = self._limiter.get_window_stats(self._pictures, person).reset_time
        return Refused(
            wait_seconds=max(0.0, reset_at - time.time()), tell=self._limiter.hit(self._notices, person)
        )
