"""The paper exchange's rate limiter on a fixed clock: windows, Retry-After, growing bans."""

from __future__ import annotations

import pytest

from adapters.paper_exchange.errors import BinanceError
from adapters.paper_exchange.limits import MAX_BAN_SECONDS, LimitSettings, RateLimiter

IP = "10.0.0.1"


def refused(call: object) -> BinanceError:
    """Run a zero-argument call that must raise and return its BinanceError."""
    with pytest.raises(BinanceError) as info:
        call()  # type: ignore[operator]
    return info.value


def test_weight_counts_in_fixed_minute_windows() -> None:
    limiter = RateLimiter(LimitSettings(weight_per_minute=10))
    assert limiter.weight(IP, 6, now=60.0) == 6
    assert limiter.weight(IP, 4, now=100.0) == 10
    err = refused(lambda: limiter.weight(IP, 1, now=110.5))
    assert (err.status, err.code, err.retry_after) == (429, -1003, 10)  # 119.99.. -> 120
    assert limiter.weight(IP, 1, now=120.0) == 1  # a new minute starts from nothing
    assert limiter.weight("10.0.0.2", 10, now=120.0) == 10  # per IP


def test_orders_count_per_key_in_ten_seconds_and_per_day() -> None:
    limiter = RateLimiter(LimitSettings(orders_per_10s=2, orders_per_day=3))
    assert limiter.order(IP, "a", now=0.0) == (1, 1)
    assert limiter.order(IP, "a", now=1.0) == (2, 2)
    assert limiter.order(IP, "b", now=1.0) == (1, 1)
    err = refused(lambda: limiter.order(IP, "a", now=2.0))
    assert (err.code, err.retry_after) == (-1015, 8)
    assert err.msg == "Too many new orders; current limit is 2 orders per TEN_SECONDS."
    assert limiter.order(IP, "a", now=10.0) == (1, 3)
    err = refused(lambda: limiter.order(IP, "a", now=20.0))
    assert err.msg == "Too many new orders; current limit is 3 orders per DAY."
    assert limiter.order_counts("a", now=20.0) == (0, 3)  # a refused order is not counted


def test_ignoring_429s_earns_bans_that_double_up_to_three_days() -> None:
    limiter = RateLimiter(LimitSettings(weight_per_minute=1, ban_seconds=120,
                                        backoff_tolerance=1))
    now = 0.0
    for ban in (120, 240, 480):
        limiter.weight(IP, 1, now=now)
        assert refused(lambda: limiter.weight(IP, 1, now=now)).status == 429
        # Already on its way when the 429 was sent: refused, but no strike.
        assert refused(lambda: limiter.weight(IP, 1, now=now + 0.5)).status == 429
        assert refused(lambda: limiter.weight(IP, 1, now=now + 1)).status == 429  # tolerated
        err = refused(lambda: limiter.weight(IP, 1, now=now + 2))
        assert (err.status, err.code, err.retry_after) == (418, -1003, ban)
        assert err.msg.startswith(f"Way too much request weight used; IP banned until "
                                  f"{int((now + 2 + ban) * 1000)}.")
        # Banned: refused whatever the weight, until the ban ends
        assert refused(lambda: limiter.weight(IP, 0, now=now + 2 + ban - 1)).status == 418
        now += 2 + ban + 60.0 - (now + 2 + ban) % 60  # the next minute after the ban
    assert limiter.bans_issued == 3
    assert limiter.snapshot(now=now)["bans"] == 3
    limiter.settings.ban_seconds = MAX_BAN_SECONDS
    limiter.weight(IP, 1, now=now)
    refused(lambda: limiter.weight(IP, 1, now=now))
    refused(lambda: limiter.weight(IP, 1, now=now + 1))
    assert refused(lambda: limiter.weight(IP, 1, now=now + 2)).retry_after == MAX_BAN_SECONDS


def test_a_client_that_waits_out_retry_after_is_never_banned() -> None:
    limiter = RateLimiter(LimitSettings(weight_per_minute=1, backoff_tolerance=0))
    for minute in range(5):
        limiter.weight(IP, 1, now=minute * 60.0)
        err = refused(lambda: limiter.weight(IP, 1, now=minute * 60.0 + 1))
        assert err.status == 429
    assert limiter.bans_issued == 0


def test_configure_restarts_counters_and_lifts_bans() -> None:
    limiter = RateLimiter(LimitSettings(weight_per_minute=1, backoff_tolerance=0))
    limiter.weight(IP, 1, now=0.0)
    refused(lambda: limiter.weight(IP, 1, now=0.0))
    assert refused(lambda: limiter.weight(IP, 1, now=1.0)).status == 418
    limiter.configure(LimitSettings(weight_per_minute=5))
    assert limiter.weight(IP, 5, now=2.0) == 5
    assert limiter.snapshot(now=2.0)["bans"] == 0


def test_each_key_is_told_off_for_its_own_orders_and_only_its_own_persistence_bans() -> None:
    limiter = RateLimiter(LimitSettings(orders_per_10s=1, backoff_tolerance=1))
    keys = [f"key{i}" for i in range(5)]
    for key in keys:  # every key's first order fits, its second is its first 429
        limiter.order(IP, key, now=0.0)
    for key in keys:
        assert refused(lambda key=key: limiter.order(IP, key, now=1.0)).status == 429
    assert limiter.bans_issued == 0  # five keys each told once: nobody kept going
    assert refused(lambda: limiter.order(IP, "key0", now=2.0)).status == 429  # tolerated
    err = refused(lambda: limiter.order(IP, "key0", now=3.0))  # key0 kept sending: a ban
    assert (err.status, limiter.bans_issued) == (418, 1)
    assert refused(lambda: limiter.weight(IP, 1, now=4.0)).status == 418  # for the whole IP


def test_requests_already_in_flight_when_told_off_earn_no_strike() -> None:
    # Chaos run of 2026-12-05 22:57: four lanes sent one key's orders at once into a freshly
    # squeezed ORDERS limit, and the three refused together banned the IP.
    limiter = RateLimiter(LimitSettings(orders_per_10s=1, backoff_tolerance=1))
    limiter.order(IP, "k", now=0.0)
    for _ in range(4):  # sent together, all refused within the grace
        assert refused(lambda: limiter.order(IP, "k", now=0.3)).status == 429
    assert limiter.bans_issued == 0
    assert refused(lambda: limiter.order(IP, "k", now=1.5)).status == 429  # tolerated
    assert refused(lambda: limiter.order(IP, "k", now=2.0)).status == 418  # kept going
