"""The write side against a real Postgres: concurrency, idempotency, reloads, snapshots, secrets."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

from adapters.platform.bootstrap import Runtime
from commands.messages import (
    ConnectExchangeKeys,
    PlaceOrder,
    RecordAcceptance,
    RecordFill,
    RegisterAccount,
    RequestCancel,
)
from domain.errors import IllegalTransition
from domain.values import OrderStatus

pytestmark = pytest.mark.integration
D = Decimal


def register(rt: Runtime, email: str = "racer@example.com"):  # type: ignore[no-untyped-def]
    return rt.app.handle(RegisterAccount(email=email, password="a long password"))


def place(rt: Runtime, account, cid: str = "c-1", qty: str = "0.01"):  # type: ignore[no-untyped-def]
    return rt.app.handle(PlaceOrder(account_id=account, client_order_id=cid, symbol="BTCUSDT",
                                    side="BUY", order_type="LIMIT", quantity=qty,
                                    price="50000"))


def test_twenty_concurrent_duplicate_place_orders_make_exactly_one_order(runtime: Runtime) -> None:
    account = register(runtime)
    barrier = threading.Barrier(20)

    def attempt(_: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        return place(runtime, account)

    with ThreadPoolExecutor(20) as pool:
        ids = set(pool.map(attempt, range(20)))
    assert len(ids) == 1
    (order_id,) = ids
    assert [type(e).__name__ for e in runtime.app.events.get(order_id)] == ["OrderPlaced"]
    placed = runtime.app.recorder.select_notifications(
        start=1, limit=1000, topics=["domain.order:Order.OrderPlaced"])
    assert len(placed) == 1


def test_fill_and_cancel_racing_on_one_order_never_lose_an_event(runtime: Runtime) -> None:
    account = register(runtime)
    for round_ in range(10):
        order_id = place(runtime, account, cid=f"race-{round_}")
        runtime.app.handle(RecordAcceptance(order_id=order_id, exchange_order_id=str(round_)))
        barrier = threading.Barrier(2)
        errors: list[Exception] = []

        def fill() -> None:
            barrier.wait()
            try:
                runtime.app.handle(RecordFill(order_id=order_id, trade_id="t1", price=D("50000"),
                                              quantity=D("0.01"), commission=D("0.5"),
                                              commission_asset="USDT"))
            except IllegalTransition as exc:  # the cancel got there first... not possible here
                errors.append(exc)

        def cancel() -> None:
            barrier.wait()
            try:
                runtime.app.handle(RequestCancel(account_id=account, order_id=order_id))
            except IllegalTransition as exc:  # the fill completed the order first
                errors.append(exc)

        threads = [threading.Thread(target=fill), threading.Thread(target=cancel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        order = runtime.app.get_order(order_id)
        names = [type(e).__name__ for e in runtime.app.events.get(order_id)]
        # Versions are contiguous: nothing was overwritten or lost.
        assert [e.originator_version for e in runtime.app.events.get(order_id)] == list(
            range(1, len(names) + 1))
        assert "OrderFilled" in names, names
        assert order.status is OrderStatus.FILLED
        if "OrderCancelRequested" in names:
            assert not errors  # cancel first, then the fill completes it
        else:
            assert len(errors) == 1 and "FILLED" in str(errors[0])


def test_reloaded_aggregate_equals_its_live_state(runtime: Runtime) -> None:
    account = register(runtime)
    order_id = place(runtime, account, qty="0.03")
    app = runtime.app
    app.handle(RecordAcceptance(order_id=order_id, exchange_order_id="42"))
    for i in range(3):
        app.handle(RecordFill(order_id=order_id, trade_id=f"t{i}", price=D("50000.5") + i,
                              quantity=D("0.01"), commission=D("0.01"), commission_asset="USDT"))
    live = app.get_order(order_id)
    replayed = None
    for event in app.events.get(order_id):
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.__dict__ == live.__dict__
    assert live.average_price == D("50001.5")
    assert live.status is OrderStatus.FILLED


def test_snapshots_are_taken_and_give_the_same_state(runtime: Runtime) -> None:
    account = register(runtime)
    order_id = place(runtime, account, qty="1")
    app = runtime.app
    app.handle(RecordAcceptance(order_id=order_id, exchange_order_id="9"))
    for i in range(30):  # 32 events in all: a snapshot at version 25
        app.handle(RecordFill(order_id=order_id, trade_id=f"t{i}", price=D("50000"),
                              quantity=D("0.01"), commission=D(0), commission_asset="USDT"))
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(order_id))
    assert snapshots and snapshots[-1].originator_version == 25
    from_snapshot = app.get_order(order_id)
    replayed = None
    for event in app.events.get(order_id):
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.__dict__ == from_snapshot.__dict__
    assert from_snapshot.filled_quantity == D("0.30")


def test_exchange_secret_is_never_stored_in_clear(runtime: Runtime, pg_url: str,
                                                 pg_schema: str) -> None:
    account = register(runtime)
    secret = "SECRET-value-that-must-never-appear-3f9a"
    api_key = "APIKEY-visible-only-masked-77c1"
    runtime.app.handle(ConnectExchangeKeys(account_id=account, api_key=api_key,
                                           secret_key=secret))
    with psycopg.connect(pg_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (pg_schema,))]
        assert tables
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{pg_schema}"."{table}"').fetchall()
            blob = repr(rows)
            assert secret not in blob and api_key not in blob, table
            assert secret.encode().hex() not in blob
    assert runtime.app.exchange_credentials(account).secret_key == secret


def test_group_commit_keeps_every_caller_answer_right_under_concurrency(runtime: Runtime) -> None:
    from domain.errors import ClientOrderIdReused

    account = register(runtime)
    barrier = threading.Barrier(60)

    def attempt(n: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        # Each of c-0..c-19 is asked for three times; caller 59 reuses c-0 with another
        # quantity, so whichever c-0 request lands first wins and the other kind conflicts.
        cid, qty = ("c-0", "0.02") if n == 59 else (f"c-{n % 20}", "0.01")
        try:
            return place(runtime, account, cid=cid, qty=qty)
        except ClientOrderIdReused:
            return "conflict"

    with ThreadPoolExecutor(60) as pool:
        results = list(pool.map(attempt, range(60)))
    for n in range(1, 20):
        same = {results[m] for m in (n, n + 20, n + 40) if m != 59}
        assert len(same) == 1 and "conflict" not in same
    c0_normal = {results[0], results[20], results[40]}
    if results[59] == "conflict":
        assert len(c0_normal) == 1 and "conflict" not in c0_normal
    else:
        assert c0_normal == {"conflict"}
        assert runtime.app.get_order(results[59]).quantity == D("0.02")
    placed = runtime.app.recorder.select_notifications(
        start=1, limit=1000, topics=["domain.order:Order.OrderPlaced"])
    assert len(placed) == 20
