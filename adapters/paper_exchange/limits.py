"""Binance's rate limits for the paper exchange: request weight per IP, orders per account.

Fixed windows, as Binance counts them: REQUEST_WEIGHT per minute per IP, ORDERS per 10 s and
per day per account. Each check is a few dict lookups and integer divisions (no scan, no
per-request allocation beyond the window's first use), since it runs on every request.

Over a limit the request gets 429 with `Retry-After` (the seconds until its window ends). A
client that keeps sending over a limit after that (more than `backoff_tolerance` requests
while told to back off) is banned: 418 for every request of that IP, for `ban_seconds`,
doubled at each new ban of the same IP up to 3 days (Binance: "from 2 minutes to 3 days").
Who was told to back off follows the limit broken: the IP for its request weight, the
account (key) for its orders. Another key's first -1015 is not "still sending"; the same
key's next orders before its Retry-After are, and they cost the IP a ban.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from adapters.paper_exchange import errors as e

MAX_BAN_SECONDS = 3 * 24 * 3600
# Over-limit requests this soon after the 429 were already on their way (a client with
# several connections cannot stop those): refused, but no strike towards a ban.
IN_FLIGHT_GRACE = 1.0
MINUTE = 60
TEN_SECONDS = 10
DAY = 86_400


@dataclass
class LimitSettings:
    """The limits in force (Binance's production numbers by default)."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    ban_seconds: int = 120
    backoff_tolerance: int = 2

    def rate_limits(self) -> list[dict[str, Any]]:
        """Return the `rateLimits` array of exchangeInfo."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": self.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": self.orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 61000},
        ]


class _Window:
    """A fixed-window counter: `count` for the window numbered `index`."""

    __slots__ = ("count", "index")

    def __init__(self) -> None:
        self.index = -1
        self.count = 0

    def current(self, index: int) -> int:
        """Return the count of window `index` (0 once a new window has begun)."""
        if index != self.index:
            self.index = index
            self.count = 0
        return self.count


class _Client:
    """What the limiter knows about one IP: its weight window, back-off and bans."""

    __slots__ = ("backoff_until", "ban_until", "bans", "strikes", "told_at", "weight")

    def __init__(self) -> None:
        self.weight = _Window()
        self.backoff_until = 0.0
        self.told_at = 0.0
        self.strikes = 0
        self.ban_until = 0.0
        self.bans = 0


class _Orders:
    """One account's order windows and its back-off after a -1015."""

    __slots__ = ("backoff_until", "day", "strikes", "ten", "told_at")

    def __init__(self) -> None:
        self.ten = _Window()
        self.day = _Window()
        self.backoff_until = 0.0
        self.told_at = 0.0
        self.strikes = 0


class RateLimiter:
    """Counts weight per IP and orders per account; raises Binance's 429 / 418 errors."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        self._clients: dict[str, _Client] = {}
        self._orders: dict[str, _Orders] = {}
        self.bans_issued = 0
        self.rejected = 0

    def configure(self, settings: LimitSettings) -> None:
        """Put new limits in force and start every counter afresh (bans are lifted)."""
        self.settings = settings
        self._clients.clear()
        self._orders.clear()
        self.bans_issued = 0
        self.rejected = 0

    def weight(self, ip: str, weight: int, now: float | None = None) -> int:
        """Add a request's weight for `ip` and return the minute's total (429/418 if over)."""
        now = time.time() if now is None else now
        client = self._clients.get(ip)
        if client is None:
            client = self._clients[ip] = _Client()
        if now < client.ban_until:
            raise self._banned(client, now)
        index = int(now // MINUTE)
        used = client.weight.current(index) + weight
        client.weight.count = used
        limit = self.settings.weight_per_minute
        if used > limit:
            retry = (index + 1) * MINUTE - now
            self._told_off(client, client, now, retry)
            raise _limited(-1003, f"Too much request weight used; current limit is {limit} "
                           "request weight per 1 MINUTE. Please use WebSocket Streams for "
                           "live updates to avoid polling the API.", retry, used)
        return used

    def used_weight(self, ip: str, now: float | None = None) -> int:
        """Return the weight `ip` used in the current minute."""
        client = self._clients.get(ip)
        if client is None:
            return 0
        now = time.time() if now is None else now
        return client.weight.current(int(now // MINUTE))

    def order(self, ip: str, api_key: str, now: float | None = None) -> tuple[int, int]:
        """Count a new order of `api_key`; return the 10 s and day counts (429 if over)."""
        now = time.time() if now is None else now
        orders = self._orders.get(api_key)
        if orders is None:
            orders = self._orders[api_key] = _Orders()
        ten_index, day_index = int(now // TEN_SECONDS), int(now // DAY)
        ten = orders.ten.current(ten_index) + 1
        day = orders.day.current(day_index) + 1
        s = self.settings
        if ten > s.orders_per_10s or day > s.orders_per_day:
            client = self._clients.setdefault(ip, _Client())
            if day > s.orders_per_day:
                retry, limit, interval = (day_index + 1) * DAY - now, s.orders_per_day, "DAY"
            else:
                retry = (ten_index + 1) * TEN_SECONDS - now
                limit, interval = s.orders_per_10s, "TEN_SECONDS"
            self._told_off(orders, client, now, retry)
            raise _limited(-1015, f"Too many new orders; current limit is {limit} orders per "
                           f"{interval}.", retry, self.used_weight(ip, now))
        orders.ten.count, orders.day.count = ten, day
        return ten, day

    def order_counts(self, api_key: str, now: float | None = None) -> tuple[int, int]:
        """Return the account's order counts for the current 10 s and day windows."""
        orders = self._orders.get(api_key)
        if orders is None:
            return 0, 0
        now = time.time() if now is None else now
        return orders.ten.current(int(now // TEN_SECONDS)), orders.day.current(int(now // DAY))

    def _told_off(self, told: _Client | _Orders, client: _Client, now: float,
                  retry: float) -> None:
        """Record a 429 to `told` (the IP for weight, the key for orders); still sending
        over the limit while told to back off earns the IP (`client`) a ban."""
        self.rejected += 1
        if now < told.backoff_until:
            if now - told.told_at < IN_FLIGHT_GRACE:
                return  # sent before the 429 could have reached the client
            told.strikes += 1
            if told.strikes > self.settings.backoff_tolerance:
                client.bans += 1
                self.bans_issued += 1
                seconds = min(self.settings.ban_seconds * 2 ** (client.bans - 1),
                              MAX_BAN_SECONDS)
                client.ban_until = now + seconds
                told.strikes = 0
                told.backoff_until = 0.0
                raise self._banned(client, now)
            told.backoff_until = max(told.backoff_until, now + retry)
            return
        told.strikes = 0
        told.told_at = now
        told.backoff_until = now + retry

    @staticmethod
    def _banned(client: _Client, now: float) -> e.BinanceError:
        until_ms = int(client.ban_until * 1000)
        err = e.BinanceError(-1003, f"Way too much request weight used; IP banned until "
                             f"{until_ms}. Please use WebSocket Streams for live updates to "
                             "avoid bans.", 418)
        err.retry_after = max(1, math.ceil(client.ban_until - now))
        return err

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Describe limits, counters and bans for GET /admin/limits."""
        now = time.time() if now is None else now
        s = self.settings
        minute, ten, day = int(now // MINUTE), int(now // TEN_SECONDS), int(now // DAY)
        return {
            "weightPerMinute": s.weight_per_minute, "ordersPer10s": s.orders_per_10s,
            "ordersPerDay": s.orders_per_day, "banSeconds": s.ban_seconds,
            "backoffTolerance": s.backoff_tolerance,
            "bans": self.bans_issued, "rejected": self.rejected,
            "weight": {ip: c.weight.current(minute) for ip, c in self._clients.items()},
            "banned": {ip: math.ceil(c.ban_until - now) for ip, c in self._clients.items()
                       if c.ban_until > now},
            "orders": {key[:8]: {"10s": o.ten.current(ten), "1d": o.day.current(day)}
                       for key, o in self._orders.items()},
        }


def _limited(code: int, msg: str, retry: float, used_weight: int) -> e.BinanceError:
    err = e.BinanceError(code, msg, 429)
    err.retry_after = max(1, math.ceil(retry))
    err.used_weight = used_weight
    return err
