"""Sliding-window send quotas (per WeCom user, per group robot), checked before a call is made.

WeCom silently drops app messages past 30/min to one user, so we must refuse them ourselves.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most `limit` events per `period` seconds for each key; reservations are all-or-nothing."""

    def __init__(
        self, limit: int, period: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def reserve(self, key: str, n: int = 1) -> float:
        """Record n events and return 0.0, or record nothing and return the seconds to wait for room."""
        if n > self.limit:
            raise ValueError(f"{n} events can never fit in a window of {self.limit}")
        now = self._clock()
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - self.period:
            q.popleft()
        if len(q) + n > self.limit:
            # Room for n appears when the (len+n-limit)-th oldest event leaves the window.
            return max(q[len(q) + n - self.limit - 1] + self.period - now, 0.001)
        q.extend([now] * n)
        return 0.0

    def release(self, key: str, n: int = 1) -> None:
        """Give back the newest n reservations (the calls were never made)."""
        q = self._events.get(key)
        for _ in range(min(n, len(q) if q else 0)):
            assert q is not None
            q.pop()
