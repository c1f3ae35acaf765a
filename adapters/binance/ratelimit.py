"""One rate-limit budget per exchange IP and per exchange account, shared by every thread.

Binance counts REQUEST_WEIGHT per minute per IP and ORDERS per 10 s (and per day) per
account, tells us its counts in every answer (`X-MBX-USED-WEIGHT-1M`,
`X-MBX-ORDER-COUNT-10S`, `X-MBX-ORDER-COUNT-1D`), answers 429 with `Retry-After` when a
limit is broken and bans the IP (418, 2 minutes up to 3 days) when the client keeps going.
So the budget:

- counts what this process sends (orders in a sliding 10 s log per account, weight in the
  exchange's one-minute window) and takes the exchange's counts from the headers, which
  include what other processes on the same IP or account sent;
- after a 429 / 418 lets no request at all through until `Retry-After` has passed, and
  publishes that back-off to the other worker processes (`SharedBackoff`, a Postgres row);
- paces new orders: `order_delay` says how long until an order may go.

Every call is O(1) (amortised for the order log) under one lock; nothing here does I/O
except the shared back-off's refresh, at most once per `refresh_every` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

# Binance's defaults (exchangeInfo rateLimits), used until the exchange tells us its own.
DEFAULT_WEIGHT_PER_MINUTE = 6000
DEFAULT_ORDERS_PER_10S = 100
DEFAULT_ORDERS_PER_DAY = 200_000
# Keep this share of each limit unused: other tools on the same key or IP, clock skew
# between our window and the exchange's.
HEADROOM = 0.9
# Without a Retry-After, wait this long after a 429 (Binance always sends one).
DEFAULT_RETRY_AFTER = 10.0

# Binance's request weights for the calls the worker makes (spot API docs).
WEIGHTS = {
    "submit order": 1, "cancel order": 1, "query order": 4, "order trades": 20,
    "open orders": 80, "account": 20, "all orders": 20, "my trades": 20,
    "exchange info": 20, "server time": 1,
}
# Calls that may use only this share of the weight (the rest is kept for orders).
LOW_PRIORITY = {"account": 0.5}


class SharedBackoff(Protocol):
    """Back-offs (no requests until a time) shared by every worker process."""

    def publish(self, scope: str, until: float, reason: str) -> None:
        """Record that nothing may be sent to `scope` before `until` (epoch seconds)."""
        ...

    def read(self) -> Mapping[str, float]:
        """Return every back-off still running: {scope: until (epoch seconds)}."""
        ...


@dataclass(frozen=True)
class Limits:
    """The limits one exchange sets (exchangeInfo rateLimits)."""

    weight_per_minute: int = DEFAULT_WEIGHT_PER_MINUTE
    orders_per_10s: int = DEFAULT_ORDERS_PER_10S
    orders_per_day: int = DEFAULT_ORDERS_PER_DAY

    @classmethod
    def from_exchange_info(cls, rate_limits: list[dict[str, object]]) -> Limits:
        """Read Binance's `rateLimits` list; what it does not name keeps Binance's default."""
        weight, per_10s, per_day = (DEFAULT_WEIGHT_PER_MINUTE, DEFAULT_ORDERS_PER_10S,
                                    DEFAULT_ORDERS_PER_DAY)
        for item in rate_limits:
            kind, interval = item.get("rateLimitType"), item.get("interval")
            num, limit = int(str(item.get("intervalNum", 1))), int(str(item.get("limit", 0)))
            if limit <= 0:
                continue
            if kind == "REQUEST_WEIGHT" and interval == "MINUTE" and num == 1:
                weight = limit
            elif kind == "ORDERS" and interval == "SECOND" and num == 10:
                per_10s = limit
            elif kind == "ORDERS" and interval == "DAY" and num == 1:
                per_day = limit
        return cls(weight, per_10s, per_day)


class Throttled(Exception):
    """The budget lets nothing through for `wait` seconds (nothing was sent)."""

    def __init__(self, wait: float, reason: str) -> None:
        super().__init__(f"{reason}: nothing is sent for {wait:.1f} s")
        self.wait = wait
        self.reason = reason


class _Account:
    __slots__ = ("day", "day_count", "header_count", "header_window", "sent")

    def __init__(self) -> None:
        self.sent: deque[float] = deque()  # when our orders left, the last 10 s
        self.header_count = 0  # the exchange's X-MBX-ORDER-COUNT-10S, in header_window
        self.header_window = -1
        self.day_count = 0
        self.day = -1


class RateBudget:
    """The budget of one exchange (one IP) and its accounts, for every thread of a process."""

    def __init__(self, limits: Limits | None = None, *, scope: str = "exchange",
                 shared: SharedBackoff | None = None, refresh_every: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or Limits()
        self.scope = scope
        self.shared = shared
        self.refresh_every = refresh_every
        self.clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._weight_minute = -1
        self._weight_used = 0
        self._until: dict[str, float] = {}  # scope -> no request before (epoch seconds)
        self._shared_read_at = float("-inf")
        self._refreshing = False
        self.throttled_calls = 0  # calls refused by the budget (metrics, tests)

    # ---- scopes ---------------------------------------------------------------------
    def ip_scope(self) -> str:
        return f"{self.scope}:ip"

    def account_scope(self, account: str) -> str:
        return f"{self.scope}:account:{account}"

    def set_limits(self, limits: Limits) -> None:
        """Take the exchange's own limits (from exchangeInfo)."""
        with self._lock:
            self.limits = limits

    # ---- before a call ----------------------------------------------------------------
    def acquire(self, account: str, weight: int, share: float = 1.0) -> None:
        """Count a request of `weight` for `account`, or raise Throttled if it may not go.

        `share` < 1 keeps a call of low priority (balances) under that share of the weight,
        so it never uses up what orders and their queries need.
        """
        self._refresh_shared()
        now = self.clock()
        with self._lock:
            wait, reason = self._blocked(account, now)
            if wait <= 0:
                minute = int(now // 60)
                if minute != self._weight_minute:
                    self._weight_minute, self._weight_used = minute, 0
                if (self._weight_used + weight
                        > self.limits.weight_per_minute * HEADROOM * share):
                    wait, reason = (minute + 1) * 60 - now, "request weight of this minute used"
                else:
                    self._weight_used += weight
                    return
            self.throttled_calls += 1
        raise Throttled(wait, reason)

    def order_delay(self, account: str, reserve: bool = True) -> float:
        """Return how long until a new order of `account` may go; 0 reserves its slot."""
        self._refresh_shared()
        now = self.clock()
        with self._lock:
            wait, _ = self._blocked(account, now)
            if wait > 0:
                return wait
            state = self._accounts.setdefault(account, _Account())
            while state.sent and state.sent[0] <= now - 10:
                state.sent.popleft()
            allowed = max(1, int(self.limits.orders_per_10s * HEADROOM))
            window = int(now // 10)
            exchange_count = state.header_count if state.header_window == window else 0
            if len(state.sent) >= allowed or exchange_count >= allowed:
                # The oldest of our orders leaves the window then; the exchange's fixed
                # window (the header's count, which includes other processes) ends at the
                # next multiple of 10 s.
                local = state.sent[0] + 10 - now if len(state.sent) >= allowed else 0.0
                fixed = (window + 1) * 10 - now if exchange_count >= allowed else 0.0
                return max(local, fixed, 0.01)
            day = int(now // 86400)
            if state.day == day and state.day_count >= self.limits.orders_per_day * HEADROOM:
                return (day + 1) * 86400 - now
            if reserve:
                state.sent.append(now)
            return 0.0

    def _blocked(self, account: str, now: float) -> tuple[float, str]:
        wait = 0.0
        reason = ""
        for scope in (self.ip_scope(), self.account_scope(account)):
            until = self._until.get(scope, 0.0)
            if until - now > wait:
                wait, reason = until - now, f"backing off ({scope})"
        return wait, reason

    # ---- after a call -----------------------------------------------------------------
    def observe(self, account: str, headers: Mapping[str, str]) -> None:
        """Take the exchange's counts from an answer's headers (a case-insensitive map)."""
        if not headers:
            return
        now = self.clock()
        weight = _header_int(headers, "X-MBX-USED-WEIGHT-1M")
        orders_10s = _header_int(headers, "X-MBX-ORDER-COUNT-10S")
        orders_day = _header_int(headers, "X-MBX-ORDER-COUNT-1D")
        with self._lock:
            if weight is not None:
                minute = int(now // 60)
                if minute != self._weight_minute:
                    self._weight_minute, self._weight_used = minute, 0
                # The exchange's count includes other processes on this IP; ours may include
                # requests it has not counted yet: keep the larger.
                self._weight_used = max(self._weight_used, weight)
            if orders_10s is not None or orders_day is not None:
                state = self._accounts.setdefault(account, _Account())
                if orders_10s is not None:
                    window = int(now // 10)
                    if window != state.header_window or orders_10s > state.header_count:
                        state.header_window, state.header_count = window, orders_10s
                if orders_day is not None:
                    state.day, state.day_count = int(now // 86400), orders_day

    def back_off(self, account: str | None, status: int, code: int,
                 headers: Mapping[str, str]) -> float:
        """Stop every request to the IP (418, -1003) or account (-1015) until Retry-After."""
        retry_after = _header_float(headers, "Retry-After")
        wait = retry_after if retry_after is not None and retry_after > 0 else DEFAULT_RETRY_AFTER
        scope = (self.account_scope(account) if code == -1015 and account and status != 418
                 else self.ip_scope())
        until = self.clock() + wait
        with self._lock:
            if until <= self._until.get(scope, 0.0):
                return self._until[scope] - self.clock()
            self._until[scope] = until
        log.warning("exchange said %d %d: no request to %s for %.1f s", status, code, scope, wait)
        if self.shared is not None:
            try:
                self.shared.publish(scope, until, f"{status} {code}")
            except Exception:  # the local back-off holds anyway
                log.warning("could not share the back-off", exc_info=True)
        return wait

    def _refresh_shared(self) -> None:
        if self.shared is None:
            return
        now = self.clock()
        with self._lock:
            if self._refreshing or now - self._shared_read_at < self.refresh_every:
                return
            self._refreshing = True  # one thread reads; the others use what is known
            self._shared_read_at = now
        try:
            rows = self.shared.read()
        except Exception:
            log.debug("shared back-offs not read", exc_info=True)
            rows = {}
        with self._lock:
            self._refreshing = False
            for scope, until in rows.items():
                if scope.startswith(self.scope + ":") and until > self._until.get(scope, 0.0):
                    self._until[scope] = until


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
