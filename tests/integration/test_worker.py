"""The execution worker end to end: Postgres, the relay, a Kafka-protocol broker, the consumer
framework and the paper exchange, all real."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.binance.gateway import BinanceGateway
from adapters.kafka.consumer import ConsumerRunner
from adapters.kafka.relay import Relay
from adapters.platform.bootstrap import Runtime, bootstrap
from adapters.postgres.readmodels import create_read_models
from adapters.processes.worker import ExecutionWorker
from commands.execution import NOT_SENT_CODE, RetryPolicy, exchange_client_order_id
from commands.messages import (
    ConnectExchangeKeys,
    PlaceOrder,
    RecordSubmission,
    RegisterAccount,
    RequestCancel,
)
from commands.ports import ExchangeOrderRequest
from domain.values import OrderStatus
from tests.support.postgres import make_test_settings

pytestmark = pytest.mark.integration
D = Decimal


def wait_for(condition: Callable[[], bool], timeout: float,
             what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(0.05)


@dataclass
class Stack:
    """One test's system: runtime, gateway, worker; relay and consumer run in threads."""

    rt: Runtime
    gateway: BinanceGateway
    worker: ExecutionWorker
    bootstrap: str
    topic: str
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def app(self) -> Any:
        return self.rt.app

    def run(self, loop: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=loop, args=(self.stop,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        """Start the worker, the relay and the worker's consumer."""
        self.worker.start()
        relay = Relay(app=self.app, database_url=self.rt.database_url,
                      bootstrap_servers=self.bootstrap, topic=self.topic, partitions=6,
                      poll_interval=0.05)
        runner = ConsumerRunner(database_url=self.rt.database_url,
                                schema=self.rt.settings.database_schema,
                                bootstrap_servers=self.bootstrap, topic=self.topic,
                                handler=self.worker, poll_timeout_ms=20)
        self.run(relay.run)
        self.run(runner.run)

    def account(self, email: str | None = None) -> UUID:
        account_id: UUID = self.app.handle(RegisterAccount(
            email=email or f"{uuid.uuid4().hex[:8]}@example.com", password="p" * 12))
        return account_id

    def place(self, account_id: UUID, order_type: str = "MARKET", symbol: str = "ETHUSDT",
              quantity: str = "0.5", price: str | None = None) -> UUID:
        order_id: UUID = self.app.handle(PlaceOrder(
            account_id=account_id, client_order_id=uuid.uuid4().hex[:20], symbol=symbol,
            side="BUY", order_type=order_type, quantity=quantity, price=price))
        return order_id

    def wait_status(self, order_id: UUID, *statuses: OrderStatus,
                    timeout: float = 15.0) -> Any:
        wait_for(lambda: self.app.get_order(order_id).status in statuses, timeout,
                 lambda: f"order {order_id} to be {'/'.join(s.value for s in statuses)} "
                 f"(is {self.app.get_order(order_id).status.value})")
        return self.app.get_order(order_id)

    def exchange_orders(self, order_id: UUID) -> list[dict[str, Any]]:
        order = self.app.get_order(order_id)
        creds = self.app.exchange_credentials(order.account_id)
        coid = exchange_client_order_id(order_id)
        return [o for o in self.gateway.all_orders(creds, order.symbol)
                if o["clientOrderId"] == coid]


@pytest.fixture
def stack(pg_url: str, pg_schema: str, tmp_path: Path, kafka_bootstrap: str,  # type: ignore[no-untyped-def]
          kafka_topic: str, paper_exchange) -> Iterator[Stack]:
    paper_exchange.clear_faults()
    settings = make_test_settings(pg_url, pg_schema, tmp_path,
                                  paper_exchange_url=paper_exchange.url, kafka_topic=kafka_topic)
    rt = bootstrap(settings, pg_url)
    with psycopg.connect(pg_url) as conn, conn.transaction():
        create_read_models(conn, pg_schema)
    gateway = BinanceGateway.from_settings(settings, backoff=0.05)
    worker = ExecutionWorker(rt, gateway, lanes=4, sweep_interval=1.0, stuck_after=3.0,
                             policy=RetryPolicy(initial_delay=0.05, max_delay=0.5))
    s = Stack(rt, gateway, worker, kafka_bootstrap, kafka_topic)
    try:
        yield s
    finally:
        s.stop.set()
        for thread in s.threads:
            thread.join(10)
        worker.stop()
        gateway.close()
        rt.close()
        paper_exchange.clear_faults()


def test_market_order_is_filled_with_the_exchange_price_and_commission(  # type: ignore[no-untyped-def]
        stack: Stack, paper_exchange) -> None:
    # The session's exchange is shared: pin ETH so 0.5 ETH is worth ~1,700 USDT, which the
    # paper exchange fills in three trades (it splits fills of 1,000 USDT and more).
    paper_exchange.set_price("ETHUSDT", "3450.00")
    stack.start()
    account_id = stack.account()
    try:
        order_id = stack.place(account_id, quantity="0.5")
        order = stack.wait_status(order_id, OrderStatus.FILLED)
    finally:
        paper_exchange.set_price("ETHUSDT", "3450.00", freeze=False)

    [exchange_order] = stack.exchange_orders(order_id)
    assert exchange_order["status"] == "FILLED"
    assert order.average_price == (D(exchange_order["cummulativeQuoteQty"])
                                   / D(exchange_order["executedQty"]))
    assert len(order.trade_ids) == 3
    assert order.commissions == {"ETH": D("0.0005")}  # 0.1 % of 0.5 ETH
    assert order.exchange_order_id == str(exchange_order["orderId"])
    events = [type(e).__name__ for e in stack.app.events.get(order_id)]
    assert events[:3] == ["OrderPlaced", "OrderSubmitted", "OrderAccepted"]
    assert events.count("OrderFilled") == 3
    # The account got paper keys on registration, and its balances reached the read model.
    assert stack.app.get_account(account_id).exchange_environment == "paper"

    def eth_balance() -> Decimal | None:
        with psycopg.connect(stack.rt.database_url) as conn:
            row = conn.execute(
                f'SELECT free FROM "{stack.rt.settings.database_schema}".balances_view '
                "WHERE account_id = %s AND asset = 'ETH'", (account_id,)).fetchone()
        return None if row is None else Decimal(row[0])

    wait_for(lambda: eth_balance() == D("10.4995"), 10, "the ETH balance in the read model")


def test_a_new_account_shows_its_paper_balances_before_any_order(stack: Stack) -> None:
    stack.start()
    account_id = stack.account()

    def usdt_balance() -> Decimal | None:
        with psycopg.connect(stack.rt.database_url) as conn:
            row = conn.execute(
                f'SELECT free FROM "{stack.rt.settings.database_schema}".balances_view '
                "WHERE account_id = %s AND asset = 'USDT'", (account_id,)).fetchone()
        return None if row is None else Decimal(row[0])

    wait_for(lambda: (usdt_balance() or 0) > 0, 10, "the USDT balance of a new account")


def test_limit_order_partially_filled_then_canceled(stack: Stack, paper_exchange) -> None:  # type: ignore[no-untyped-def]
    paper_exchange.set_price("LINKUSDT", "20.000")
    stack.start()
    account_id = stack.account()
    order_id = stack.place(account_id, "LIMIT", symbol="LINKUSDT", quantity="3.00",
                           price="19.500")
    stack.wait_status(order_id, OrderStatus.NEW)
    assert stack.worker.streams is not None
    wait_for(lambda: account_id in stack.worker.streams.connected, 10, "the user-data stream")

    paper_exchange.set_price("LINKUSDT", "19.490", liquidity="1.00")
    order = stack.wait_status(order_id, OrderStatus.PARTIALLY_FILLED)
    paper_exchange.set_price("LINKUSDT", "19.480", liquidity="0.50")
    wait_for(lambda: stack.app.get_order(order_id).filled_quantity == D("1.5"), 10,
             "the second partial fill")
    paper_exchange.set_price("LINKUSDT", "20.000")

    stack.app.handle(RequestCancel(account_id=account_id, order_id=order_id))
    order = stack.wait_status(order_id, OrderStatus.CANCELED)
    assert order.filled_quantity == D("1.5")
    assert order.average_price == D("19.5")  # maker fills at the limit price
    assert all(stack.app.get_order(order_id).trade_ids)
    [exchange_order] = stack.exchange_orders(order_id)
    assert exchange_order["status"] == "CANCELED"
    assert D(exchange_order["executedQty"]) == D("1.5")


def test_order_lost_to_a_five_second_outage_ends_not_sent_and_is_never_resent(  # type: ignore[no-untyped-def]
        stack: Stack, paper_exchange) -> None:
    stack.start()
    account_id = stack.account()
    wait_for(lambda: stack.app.get_account(account_id).has_exchange_keys, 10, "paper keys")
    paper_exchange.set_fault("error503", 5.0, endpoints=["order", "myTrades"])
    started = time.monotonic()
    order_id = stack.place(account_id)
    stack.wait_status(order_id, OrderStatus.SUBMITTED, timeout=5)
    wait_for(lambda: stack.app.get_order(order_id).outcome_unknown, 10, "outcome unknown")
    # A 503 leaves the outcome unknown: the order is never sent again. Once the window in
    # which the lost request could execute has closed (recvWindow 5 s + read timeout 10 s
    # + Binance's 10 s + 5 s margin) and the exchange has confirmed twice, with its order
    # lists, that it never got it, the order ends REJECTED NOT_SENT.
    order = stack.wait_status(order_id, OrderStatus.REJECTED, timeout=60)
    assert time.monotonic() - started >= 30.0
    assert order.reject_code == NOT_SENT_CODE
    assert "never reached the exchange" in (order.reject_reason or "")
    assert stack.exchange_orders(order_id) == []


def test_worker_killed_between_sending_and_recording_records_the_real_outcome(  # type: ignore[no-untyped-def]
        stack: Stack, paper_exchange) -> None:
    account_id = stack.account()
    keys = paper_exchange.issue_keys()
    stack.app.handle(ConnectExchangeKeys(account_id, keys.api_key, keys.secret_key, "paper"))
    order_id = stack.place(account_id)
    # What a worker did before it died: recorded the submission, sent the order.
    stack.app.handle(RecordSubmission(order_id))
    order = stack.app.get_order(order_id)
    stack.gateway.submit_order(
        stack.app.exchange_credentials(account_id),
        ExchangeOrderRequest(order.symbol, order.side, order.order_type, order.quantity,
                             order.price, order.time_in_force,
                             exchange_client_order_id(order_id)))
    assert stack.app.get_order(order_id).status is OrderStatus.SUBMITTED

    # The restarted worker reconciles at start, then consumes the (redelivered) events.
    stack.worker.lanes.start()
    results = stack.worker.reconcile_all(wait=True)
    assert [(r.order_id, r.before, r.after) for r in results] == [
        (order_id, OrderStatus.SUBMITTED, OrderStatus.FILLED)]
    stack.worker.lanes.stop()
    stack.worker.lanes = type(stack.worker.lanes)(4)
    stack.start()
    time.sleep(1.0)
    assert stack.worker.wait_idle(10)
    assert stack.app.get_order(order_id).status is OrderStatus.FILLED
    assert len(stack.exchange_orders(order_id)) == 1


def test_balances_are_recorded_once_the_read_model_appears(stack: Stack) -> None:
    """A worker that started before the projector made balances_view records balances later."""
    stack.start()
    schema = stack.rt.settings.database_schema
    with psycopg.connect(stack.rt.database_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}".balances_view RENAME TO balances_view_later')
    stack.worker.balances.offer(uuid.uuid4(), [{"asset": "USDT", "free": "1", "locked": "0"}])
    wait_for(lambda: not stack.worker.balances.enabled, 5, "the worker to notice")
    with psycopg.connect(stack.rt.database_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}".balances_view_later RENAME TO balances_view')
    stack.worker.balances._table_missing_until = 0.0  # the 10 s back-off has passed
    account = uuid.uuid4()
    stack.worker.balances.offer(account, [{"asset": "USDT", "free": "7", "locked": "0"}])

    def recorded() -> bool:
        with psycopg.connect(stack.rt.database_url) as conn:
            return conn.execute(f'SELECT 1 FROM "{schema}".balances_view WHERE account_id = %s',
                                (account,)).fetchone() is not None

    wait_for(recorded, 5, "balances after the table appeared")
