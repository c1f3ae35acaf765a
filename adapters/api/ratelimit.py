"""Per-user token buckets for order placement, in process memory.

Each API worker keeps its own buckets, so N workers allow up to N times the rate; that is
the price of not paying a database round trip per order (docs/api.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1) -> float:
        """Take `cost` tokens; return 0 on success or the seconds to wait until they are there.

        A cost above the burst passes on a full bucket and leaves it in debt, so it is
        possible at all and the average rate still holds.
        """
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(cost, self.burst)
        if self.tokens >= need:
            self.tokens -= cost
            return 0.0
        return (need - self.tokens) / self.rate


class RateLimiter:
    """A token bucket per key (an account id), created on first use."""

    MAX_KEYS = 100_000

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._buckets: dict[Any, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: Any, cost: float = 1) -> float:
        """Return 0 when `key` may go ahead (spending `cost` tokens), else the seconds it
        should wait."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.MAX_KEYS:
                    self._buckets.clear()  # a full bucket set forgets; it never blocks anyone
                bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            return bucket.take(now, cost)
