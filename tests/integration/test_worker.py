"""The execution worker end to end: Postgres, the relay, a Kafka-protocol broker, the consumer
framework and the paper exchange, all real."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from commands.execution import (
    NOT_SENT_CODE,
    exchange_client_order_id,
    order_id_from_client_order_id,
)
from commands.messages import (
    ConnectExchangeKeys,
    RecordSubmission,
    RequestCancel,
)
from commands.ports import ExchangeOrderRequest
from domain.values import OrderStatus
from tests.support.worker import Stack, wait_for

pytestmark = pytest.mark.integration
D = Decimal


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


def test_a_new_account_gets_the_exchanges_commission_rates_with_its_balances(
        stack: Stack, paper_exchange) -> None:  # type: ignore[no-untyped-def]
    """The balance snapshot (python-binance's get_account on the paper exchange) also
    records the account's commissionRates: the ticket's expected fee reads them."""
    paper_exchange.set_commission("0.00075")
    try:
        stack.start()
        account_id = stack.account()
        schema = stack.rt.settings.database_schema

        def rates() -> tuple[Decimal, Decimal] | None:
            with psycopg.connect(stack.rt.database_url) as conn:
                row = conn.execute(f'SELECT maker, taker FROM "{schema}".commission_view '
                                   "WHERE account_id = %s", (account_id,)).fetchone()
            return None if row is None else (Decimal(row[0]), Decimal(row[1]))

        wait_for(lambda: rates() is not None, 10, "the commission rates")
        assert rates() == (D("0.00075"), D("0.00075"))
    finally:
        paper_exchange.set_commission("0")


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


def test_two_instances_each_hear_the_reports_of_exactly_the_orders_they_drive(
        stack: Stack) -> None:
    """Partition by account: the instance whose consumer reads an account's partition
    follows its user-data stream and drives its orders, so no report lands on an instance
    that did not record the order (before, orders went by order id and streams by account
    id, and about half the reports did)."""
    from adapters.kafka.consumer import ConsumerRunner
    from adapters.kafka.relay import Relay
    from adapters.processes.worker import ExecutionWorker

    workers = [stack.worker]
    stack.worker.instance, stack.worker.instances = 0, 2
    workers.append(ExecutionWorker(stack.rt, stack.gateway, lanes=4, instance=1, instances=2,
                                   sweep_interval=1.0, stuck_after=3.0))
    driven: list[set[uuid.UUID]] = [set(), set()]
    heard: list[list[tuple[uuid.UUID, uuid.UUID]]] = [[], []]
    for i, worker in enumerate(workers):
        drive, report = worker._drive, worker._on_execution_report

        def tracked_drive(order_id: uuid.UUID, i: int = i, drive: Any = drive) -> Any:
            driven[i].add(order_id)
            return drive(order_id)

        def tracked_report(account_id: uuid.UUID, event: dict[str, Any], i: int = i,
                           report: Any = report) -> None:
            order_id = order_id_from_client_order_id(str(event.get("c")))
            if order_id is not None:
                heard[i].append((account_id, order_id))
            report(account_id, event)

        worker._drive = tracked_drive  # type: ignore[method-assign]
        worker._on_execution_report = tracked_report  # type: ignore[method-assign]
        if worker.streams is not None:
            worker.streams._on_report = tracked_report
    try:
        workers[1].start()
        stack.worker.start()
        stack.run(Relay(app=stack.app, database_url=stack.rt.database_url,
                        bootstrap_servers=stack.bootstrap, topic=stack.topic, partitions=6,
                        poll_interval=0.05).run)
        for i, worker in enumerate(workers):
            stack.run(ConsumerRunner(
                database_url=stack.rt.database_url, schema=stack.rt.settings.database_schema,
                bootstrap_servers=stack.bootstrap, topic=stack.topic, handler=worker,
                instance=i, instances=2, poll_timeout_ms=20).run)
        owner: dict[uuid.UUID, int] = {}
        while min(sum(1 for o in owner.values() if o == i) for i in (0, 1)) < 2:
            account_id = stack.account()
            owner[account_id] = next(i for i, w in enumerate(workers) if w._owns(account_id))
        accounts = list(owner)
        orders = {stack.place(a, quantity="0.01"): a for a in accounts for _ in range(2)}
        for order_id in orders:
            stack.wait_status(order_id, OrderStatus.FILLED, timeout=30)
    finally:
        stack.stop.set()
        for thread in stack.threads:
            thread.join(10)
        workers[1].stop()
    for order_id, account_id in orders.items():
        assert order_id in driven[owner[account_id]]
        assert order_id not in driven[1 - owner[account_id]]
    assert heard[0] and heard[1]
    for i in (0, 1):
        for account_id, order_id in heard[i]:
            assert owner[account_id] == i and order_id in driven[i], (i, account_id, order_id)


def test_ws_api_dropped_mid_submission_is_an_unknown_outcome_resolved_without_resending(  # type: ignore[no-untyped-def]
        stack: Stack, paper_exchange) -> None:
    from adapters.paper_exchange.runner import admin_get
    from adapters.platform.metrics import EXCHANGE_ERRORS

    stack.start()
    account_id = stack.account()
    wait_for(lambda: stack.app.get_account(account_id).has_exchange_keys, 10, "paper keys")
    ws_api = stack.gateway.ws_api()
    assert ws_api is not None and stack.gateway.order_transport == "ws"
    unknown = EXCHANGE_ERRORS.labels("submit order", "exchange_unavailable")
    before = unknown._value.get()
    # The exchange executes the order and holds its answer; the connection then drops.
    paper_exchange.set_fault("hang", 8.0, execute=True)
    order_id = stack.place(account_id)
    coid = exchange_client_order_id(order_id)
    wait_for(lambda: bool(admin_get(paper_exchange.url, "/admin/orders?clientOrderId=" + coid)),
             10, "the order on the exchange")
    ws_api.drop()
    paper_exchange.clear_faults()
    order = stack.wait_status(order_id, OrderStatus.FILLED, timeout=30)
    assert unknown._value.get() == before + 1  # the send got no answer
    assert order.send_attempts == 1  # and was never sent again
    assert len(stack.exchange_orders(order_id)) == 1
