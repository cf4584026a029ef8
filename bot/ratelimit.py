"""The one sliding-window limiter: at most `limit` events per `period` seconds for each key. Used for the
per-user flood limit, the outbox's per-chat and per-second send windows and WeCom's per-user quotas."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class SlidingWindow:
    """At most `limit` events per `period` seconds for each key; `reserve` is all-or-nothing.
    Times come from `clock` (monotonic seconds) unless a caller passes `now`."""

    def __init__(self, limit: int, period: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}
        self._sweep_at = 1024

    def _live(self, key: Hashable, now: float) -> deque[float]:
        q = self._events.get(key)
        if q is not None:
            while q and q[0] <= now - self.period:
                q.popleft()
            if not q:
                del self._events[key]
        return q or deque()

    def _sweep(self, now: float) -> None:
        # Idle keys are forgotten, so a window per user or chat does not grow forever; sweeping when the
        # table has doubled keeps the cost per event constant.
        for key in list(self._events):
            self._live(key, now)
        self._sweep_at = max(1024, 2 * len(self._events))

    def wait_time(self, key: Hashable = "", n: int = 1, *, now: float | None = None) -> float:
        """Seconds until n more events fit (0.0: they fit now). Records nothing."""
        if n > self.limit:
            raise ValueError(f"{n} events can never fit in a window of {self.limit}")
        now = self._clock() if now is None else now
        q = self._live(key, now)
        if len(q) + n <= self.limit:
            return 0.0
        # Room for n appears when the (len+n-limit)-th oldest event leaves the window.
        return max(q[len(q) + n - self.limit - 1] + self.period - now, 0.001)

    def take(self, key: Hashable = "", n: int = 1, *, now: float | None = None) -> int:
        """Record n events whether or not they fit; returns how many the window now holds."""
        now = self._clock() if now is None else now
        q = self._live(key, now)
        q.extend([now] * n)
        self._events[key] = q
        if len(self._events) > self._sweep_at:
            self._sweep(now)
        return len(q)

    def reserve(self, key: Hashable = "", n: int = 1, *, now: float | None = None) -> float:
        """Record n events and return 0.0, or record nothing and return the seconds to wait for room."""
        now = self._clock() if now is None else now
        wait = self.wait_time(key, n, now=now)
        if wait == 0.0:
            self.take(key, n, now=now)
        return wait

    def release(self, key: Hashable = "", n: int = 1) -> None:
        """Give back the newest n reservations (the calls were never made)."""
        q = self._events.get(key)
        for _ in range(min(n, len(q) if q else 0)):
            assert q is not None
            q.pop()
