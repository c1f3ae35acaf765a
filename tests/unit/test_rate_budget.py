"""The rate-limit budget (adapters/binance/ratelimit.py) on a fake clock."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from requests.structures import CaseInsensitiveDict

from adapters.binance.ratelimit import Limits, RateBudget, Throttled


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeShared:
    """SharedBackoff in memory: what several worker processes would see in Postgres."""

    def __init__(self) -> None:
        self.rows: dict[str, float] = {}
        self.reads = 0

    def publish(self, scope: str, until: float, reason: str) -> None:
        self.rows[scope] = max(until, self.rows.get(scope, 0.0))

    def read(self) -> Mapping[str, float]:
        self.reads += 1
        return dict(self.rows)


def test_orders_are_paced_under_the_orders_limit_of_ten_seconds() -> None:
    clock = Clock()
    budget = RateBudget(Limits(orders_per_10s=10), clock=clock)
    # 90 % of 10 per 10 s: 9 go at once, the 10th waits until the first leaves the window.
    assert [budget.order_delay("a") for _ in range(9)] == [0.0] * 9
    clock.now += 4
    assert budget.order_delay("a") == pytest.approx(6.0)
    assert budget.order_delay("b") == 0.0  # per account
    clock.now += 6
    assert budget.order_delay("a") == 0.0


def test_limits_are_read_from_exchange_info() -> None:
    limits = Limits.from_exchange_info([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 3},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1000},
    ])
    assert limits == Limits(weight_per_minute=1200, orders_per_10s=3, orders_per_day=1000)
    assert Limits.from_exchange_info([]) == Limits()  # Binance's 6000 / 100 / 200000


def test_a_squeezed_limit_still_lets_one_order_through_per_window() -> None:
    clock = Clock(1_000_000.0)
    budget = RateBudget(Limits(orders_per_10s=1), clock=clock)
    assert budget.order_delay("a") == 0.0
    assert budget.order_delay("a") > 0


def test_order_count_header_from_another_process_holds_orders_to_the_next_window() -> None:
    clock = Clock(1_000_003.0)  # 3 s into a 10 s window
    budget = RateBudget(Limits(orders_per_10s=10), clock=clock)
    budget.observe("a", CaseInsensitiveDict({"x-mbx-order-count-10s": "9"}))
    assert budget.order_delay("a") == pytest.approx(7.0)
    clock.now += 7.0
    assert budget.order_delay("a") == 0.0


def test_weight_of_the_minute_is_counted_and_taken_from_headers() -> None:
    clock = Clock(1_000_040.0)  # 20 s into a minute (minutes start at 1_000_020)
    budget = RateBudget(Limits(weight_per_minute=100), clock=clock)
    budget.acquire("a", 20)
    budget.observe("a", CaseInsensitiveDict({"X-MBX-USED-WEIGHT-1M": "85"}))  # other processes
    with pytest.raises(Throttled) as caught:
        budget.acquire("a", 10)
    assert caught.value.wait == pytest.approx(40.0)
    clock.now += 40
    budget.acquire("a", 10)


def test_429_stops_every_request_to_the_exchange_until_retry_after() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock)
    budget.back_off("a", 429, -1003, CaseInsensitiveDict({"Retry-After": "30"}))
    for account in ("a", "b"):  # -1003 is the IP's weight: every account waits
        with pytest.raises(Throttled):
            budget.acquire(account, 1)
        assert budget.order_delay(account) == pytest.approx(30.0)
    clock.now += 30
    budget.acquire("a", 1)


def test_418_ban_holds_for_its_retry_after_and_too_many_orders_only_for_the_account() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock)
    budget.back_off("a", 429, -1015, CaseInsensitiveDict({"Retry-After": "5"}))
    assert budget.order_delay("a") == pytest.approx(5.0)
    assert budget.order_delay("b") == 0.0
    budget.back_off("b", 418, -1003, CaseInsensitiveDict({"Retry-After": "120"}))
    with pytest.raises(Throttled) as caught:
        budget.acquire("b", 1)
    assert caught.value.wait == pytest.approx(120.0)
    assert budget.order_delay("c") == pytest.approx(120.0)


def test_back_off_is_shared_with_other_worker_processes() -> None:
    clock = Clock()
    shared = FakeShared()
    one = RateBudget(scope="paper", shared=shared, clock=clock)
    other = RateBudget(scope="paper", shared=shared, clock=clock, refresh_every=1.0)
    other.acquire("a", 1)  # reads the (empty) shared back-offs
    one.back_off("a", 429, -1003, CaseInsensitiveDict({"Retry-After": "10"}))
    other.acquire("a", 1)  # within refresh_every: not read again yet
    assert shared.reads == 1
    clock.now += 1.0
    with pytest.raises(Throttled):
        other.acquire("a", 1)
    assert shared.reads == 2
    # Another exchange's back-off is not ours.
    RateBudget(scope="testnet", shared=shared, clock=clock).acquire("a", 1)


def test_no_retry_after_means_a_default_pause() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock)
    wait = budget.back_off(None, 429, -1003, {})
    assert wait > 0 and budget.order_delay("a") == pytest.approx(wait)


def test_balance_reads_keep_to_half_the_weight_so_orders_always_have_room() -> None:
    clock = Clock(1_000_040.0)
    budget = RateBudget(Limits(weight_per_minute=100), clock=clock)
    budget.acquire("a", 40, share=0.5)
    with pytest.raises(Throttled):
        budget.acquire("a", 20, share=0.5)  # 60 would pass half of the 90 usable
    budget.acquire("a", 40)  # an order's call still goes


def test_the_gateway_reads_the_limits_again_so_a_squeeze_does_not_pace_it_for_ever(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.binance import gateway as gateway_module
    from adapters.binance.gateway import BinanceGateway
    from commands.ports import ExchangeCredentials

    now = [1000.0]
    monkeypatch.setattr(gateway_module.time, "monotonic", lambda: now[0])
    served = [Limits(orders_per_10s=2), Limits(orders_per_10s=100)]
    gateway = BinanceGateway("paper", api_url="http://127.0.0.1:9", limits_refresh=60.0)

    def load_limits() -> Limits:  # exchangeInfo's rateLimits, as the exchange serves them
        gateway._limits_read_at = now[0]
        limits = served.pop(0)
        gateway.budget.set_limits(limits)
        return limits

    monkeypatch.setattr(gateway, "load_limits", load_limits)
    creds = ExchangeCredentials("k" * 64, "s" * 64, "paper")
    assert gateway.order_delay(creds) == 0  # read during a squeeze: 2 per 10 s (1 with room)
    assert gateway.order_delay(creds) > 0
    now[0] += 30
    gateway.order_delay(creds)
    assert gateway.budget.limits.orders_per_10s == 2  # not read again within the minute
    now[0] += 31  # the squeeze is over and a minute has passed: read again, 100 per 10 s
    gateway.order_delay(creds)
    assert gateway.budget.limits.orders_per_10s == 100
