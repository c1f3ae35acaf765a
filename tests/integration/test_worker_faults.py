"""The worker against the paper exchange's Binance failure modes (late execution, query lag,
squeezed rate limits, the Testnet reset), all real: Postgres, the relay, a Kafka-protocol
broker, the consumer and python-binance over HTTP.

The module runs its own paper exchange: it squeezes limits and wipes every order, which
must not reach the session's shared exchange.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.binance.gateway import BinanceGateway
from adapters.paper_exchange import BackgroundPaperExchange
from adapters.paper_exchange.runner import admin_get, admin_post
from commands.execution import exchange_client_order_id
from commands.ports import ExchangeCredentials
from domain.errors import ExchangeThrottled
from domain.values import OrderStatus
from tests.support.paper_exchange import PaperExchangeHandle
from tests.support.worker import Stack, wait_for, worker_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BINANCE_LIMITS = {"weightPerMinute": 6000, "ordersPer10s": 100, "ordersPerDay": 200000,
                  "banSeconds": 120}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaperExchangeHandle]:
    """A paper exchange of this module's own."""
    state_dir: Path = tmp_path_factory.mktemp("paper-worker-faults")
    server = BackgroundPaperExchange(state_dir, tick_ms=100, history_days=1).start()
    try:
        yield PaperExchangeHandle(server)
    finally:
        server.stop()


@pytest.fixture
def stack(pg_url: str, pg_schema: str, tmp_path: Path, kafka_bootstrap: str,
          kafka_topic: str, exchange: PaperExchangeHandle) -> Iterator[Stack]:
    admin_post(exchange.url, "/admin/limits", BINANCE_LIMITS)
    try:
        # A resting order counts as wiped after 5 s of "does not exist" (60 s in production:
        # the reset test would otherwise wait a minute; query lag is the chaos suite's).
        with worker_stack(pg_url, pg_schema, tmp_path, kafka_bootstrap, kafka_topic,
                          exchange.url, gone_confirm=5.0) as s:
            yield s
    finally:
        admin_post(exchange.url, "/admin/faults", {"mode": "none"})
        admin_post(exchange.url, "/admin/limits", BINANCE_LIMITS)


def exchange_orders(exchange: PaperExchangeHandle, order_id: Any) -> list[dict[str, Any]]:
    """Every order the exchange holds under our clientOrderId (across keys)."""
    orders: list[dict[str, Any]] = admin_get(
        exchange.url, "/admin/orders?clientOrderId=" + exchange_client_order_id(order_id))
    return orders


def admin_limits(exchange: PaperExchangeHandle) -> dict[str, Any]:
    limits: dict[str, Any] = admin_get(exchange.url, "/admin/limits")
    return limits


def ready_account(stack: Stack) -> Any:
    account_id = stack.account()
    wait_for(lambda: stack.app.get_account(account_id).has_exchange_keys, 10, "paper keys")
    return account_id


def test_market_order_executed_late_after_a_1007_ends_with_one_exchange_order(
        stack: Stack, exchange: PaperExchangeHandle) -> None:
    stack.start()
    account_id = ready_account(stack)
    # Answered 503 -1007 at once, executed 12 s later, invisible to queries until then.
    admin_post(exchange.url, "/admin/faults", {"mode": "late", "seconds": 3, "delayMs": 12000})
    order_id = stack.place(account_id, quantity="0.05")
    wait_for(lambda: stack.app.get_order(order_id).outcome_unknown, 10,
             "the order to show its outcome as unknown")
    order = stack.wait_status(order_id, OrderStatus.FILLED, timeout=60)
    assert order.filled_quantity == order.quantity
    [exchange_order] = exchange_orders(exchange, order_id)
    assert exchange_order["status"] == "FILLED"
    assert order.exchange_order_id == str(exchange_order["orderId"])
    assert order.send_attempts == 1


def test_query_lag_never_doubles_an_order(stack: Stack, exchange: PaperExchangeHandle) -> None:
    stack.start()
    account_id = ready_account(stack)
    admin_post(exchange.url, "/admin/faults", {"mode": "query_lag", "seconds": 20,
                                               "lagMs": 8000})
    # Lose the answers of the first sends too, so the worker has to ask while queries lag.
    admin_post(exchange.url, "/admin/faults", {"mode": "timeout", "seconds": 2,
                                               "execute": True, "endpoints": ["order"]})
    order_ids = [stack.place(account_id, quantity="0.01") for _ in range(3)]
    for order_id in order_ids:
        stack.wait_status(order_id, OrderStatus.FILLED, timeout=90)
    for order_id in order_ids:
        assert len(exchange_orders(exchange, order_id)) == 1


def test_squeezed_orders_limit_delays_orders_but_rejects_none_and_earns_no_ban(
        stack: Stack, exchange: PaperExchangeHandle) -> None:
    admin_post(exchange.url, "/admin/limits", {"ordersPer10s": 3, "weightPerMinute": 6000,
                                               "banSeconds": 120})
    stack.start()
    account_id = ready_account(stack)
    started = time.monotonic()
    order_ids = [stack.place(account_id, quantity="0.01") for _ in range(20)]
    for order_id in order_ids:
        stack.wait_status(order_id, OrderStatus.FILLED, OrderStatus.REJECTED, timeout=150)
    statuses = [stack.app.get_order(o).status for o in order_ids]
    assert statuses == [OrderStatus.FILLED] * 20
    assert admin_limits(exchange)["bans"] == 0
    # 20 orders at 3 per 10 s (we keep 90 %: 2) cannot all have gone in under a minute.
    assert time.monotonic() - started > 60
    for order_id in order_ids:
        assert len(exchange_orders(exchange, order_id)) == 1


def test_resting_order_wiped_by_a_testnet_reset_ends_canceled(
        stack: Stack, exchange: PaperExchangeHandle) -> None:
    exchange.set_price("LINKUSDT", "20.000")
    stack.start()
    account_id = ready_account(stack)
    order_id = stack.place(account_id, "LIMIT", symbol="LINKUSDT", quantity="1.00",
                           price="15.000")
    stack.wait_status(order_id, OrderStatus.NEW)
    admin_post(exchange.url, "/admin/reset", {})
    order = stack.wait_status(order_id, OrderStatus.CANCELED, timeout=60)
    assert order.status is OrderStatus.CANCELED
    [canceled] = [e for e in stack.app.events.get(order_id)
                  if type(e).__name__ == "OrderCanceled"]
    assert "no longer has" in canceled.reason
    exchange.set_price("LINKUSDT", "20.000", freeze=False)


def test_gateway_sends_nothing_while_a_429_is_waited_out(
        stack: Stack, exchange: PaperExchangeHandle) -> None:
    admin_post(exchange.url, "/admin/limits", {"ordersPer10s": 100, "weightPerMinute": 40,
                                               "banSeconds": 120})
    keys = exchange.issue_keys()
    creds = ExchangeCredentials(keys.api_key, keys.secret_key, "paper")
    gateway = BinanceGateway("paper", exchange.api_url, backoff=0.01)
    try:
        with pytest.raises(ExchangeThrottled) as caught:
            for _ in range(40):  # weight 4 each: the exchange's 429 comes within 11 calls
                gateway.query_order(creds, "BTCUSDT", "tl" + "0" * 32)
        assert caught.value.retry_after > 0
        refused = admin_limits(exchange)["rejected"]
        for _ in range(5):  # refused by our own budget: nothing reaches the exchange
            with pytest.raises(ExchangeThrottled):
                gateway.query_order(creds, "BTCUSDT", "tl" + "0" * 32)
        limits = admin_limits(exchange)
        assert limits["rejected"] == refused and limits["bans"] == 0
    finally:
        gateway.close()
