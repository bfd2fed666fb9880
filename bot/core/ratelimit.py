"""A per-user limit on photos per minute (a sliding window, kept in memory)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Allows at most `limit` events per `window_seconds` for each key."""

    def __init__(
        self, limit: int, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._events: defaultdict[int, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def try_acquire(self, key: int) -> float:
        """Record an event for `key` and return 0, or return the seconds to wait if over the limit."""
        now = self._clock()
        with self._lock:
            events = self._events[key]
            while events and events[0] <= now - self.window_seconds:
                events.popleft()
            if len(events) >= self.limit:
                return events[0] + self.window_seconds - now
            events.append(now)
            return 0.0
