"""The projector against real events from the TradingApplication on a real Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
import pytest

from adapters.platform.bootstrap import Runtime
from adapters.postgres.projector import Projector
from adapters.postgres.readmodels import ReadModels, changes_channel, record_balances
from commands.messages import (
    PlaceOrder,
    RecordAcceptance,
    RecordCancellation,
    RecordFill,
    RecordRejection,
    RegisterAccount,
    RequestCancel,
)
from domain.envelope import EventEnvelope

pytestmark = pytest.mark.integration

TABLES = ("orders_view", "trades_view", "positions_view", "position_history", "event_log_view",
          "analytics_symbol_minute", "analytics_events_minute", "analytics_latency",
          "analytics_rejections", "audit_chain")


def make_activity(app: Any, email: str = "trader@example.com", orders: int = 3) -> UUID:
    """Register an account and trade: fills in quote and base fees, a reject, a cancel."""
    account = app.handle(RegisterAccount(email=email, password="correct horse battery"))
    for i in range(orders):
        buy = app.handle(PlaceOrder(account_id=account, client_order_id=f"b{i}",
                                    symbol="BTCUSDT", side="BUY", order_type="LIMIT",
                                    quantity="0.010", price="90000"))
        app.handle(RecordAcceptance(order_id=buy, exchange_order_id=f"x{i}"))
        app.handle(RecordFill(order_id=buy, trade_id=f"tb{i}a", price=Decimal("90000"),
                              quantity=Decimal("0.004"), commission=Decimal("0.000004"),
                              commission_asset="BTC"))
        app.handle(RecordFill(order_id=buy, trade_id=f"tb{i}b", price=Decimal(89000 + i),
                              quantity=Decimal("0.006"), commission=Decimal("0.5"),
                              commission_asset="USDT"))
        sell = app.handle(PlaceOrder(account_id=account, client_order_id=f"s{i}",
                                     symbol="BTCUSDT", side="SELL", order_type="MARKET",
                                     quantity="0.005"))
        app.handle(RecordFill(order_id=sell, trade_id=f"ts{i}", price=Decimal(91000 + i),
                              quantity=Decimal("0.005"), commission=Decimal("0.45"),
                              commission_asset="USDT"))
    bad = app.handle(PlaceOrder(account_id=account, client_order_id="bad", symbol="ETHUSDT",
                                side="BUY", order_type="LIMIT", quantity="1", price="3000"))
    app.handle(RecordRejection(order_id=bad, code="-2010", message="insufficient balance"))
    gone = app.handle(PlaceOrder(account_id=account, client_order_id="gone", symbol="ETHUSDT",
                                 side="BUY", order_type="LIMIT", quantity="1", price="3000"))
    app.handle(RecordAcceptance(order_id=gone, exchange_order_id="xg"))
    app.handle(RequestCancel(account_id=account, order_id=gone))
    app.handle(RecordCancellation(order_id=gone))
    return UUID(str(account))


def envelopes(app: Any) -> list[EventEnvelope]:
    return [EventEnvelope.from_domain_event(app.mapper.to_domain_event(n), n.id)
            for n in app.recorder.select_notifications(1, 10**9)]


def project(rt: Runtime, items: list[EventEnvelope], projector: Projector | None = None,
            batch: int = 50) -> Projector:
    """Feed envelopes to the projector in transactions of `batch`, as the consumer does."""
    projector = projector or Projector(rt.settings.database_schema)
    with psycopg.connect(rt.database_url) as conn:
        for start in range(0, len(items), batch):
            with conn.transaction():
                for envelope in items[start:start + batch]:
                    projector.handle(conn, envelope)
    return projector


def dump(url: str, schema: str, tables: tuple[str, ...] = TABLES) -> dict[str, list[Any]]:
    """Every row of the read-model tables, in key order, for equality checks."""
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f'SELECT to_jsonb(x) FROM "{schema}".{t} x '
                                "ORDER BY 1").fetchall() for t in tables}


@pytest.fixture
def models(runtime: Runtime) -> Iterator[ReadModels]:
    with psycopg_pool.ConnectionPool(runtime.database_url, min_size=1, max_size=2,
                                     open=True) as pool:
        yield ReadModels(pool, runtime.settings.database_schema)


def test_projector_builds_every_view_and_announces_changes(runtime: Runtime,
                                                           models: ReadModels) -> None:
    account = make_activity(runtime.app)
    with psycopg.connect(runtime.database_url, autocommit=True) as listener:
        listener.execute(
            f'LISTEN "{changes_channel(runtime.settings.database_schema)}"')
        project(runtime, envelopes(runtime.app))
        notes = list(listener.notifies(timeout=1.0, stop_after=3))
    payload = json.loads(notes[0].payload)
    assert set(payload) == {"seq", "accountId"} and payload["accountId"] == str(account)
    # The channel is the schema's own: another deployment in the same database hears nothing.
    assert changes_channel(runtime.settings.database_schema) != changes_channel("other")

    orders = models.list_orders(account)
    assert len(orders) == 8
    assert {o["status"] for o in orders} == {"FILLED", "REJECTED", "CANCELED"}
    assert models.list_orders(account, status="filled", symbol="btcusdt", limit=2)[0][
        "symbol"] == "BTCUSDT"
    buy = next(o for o in orders if o["clientOrderId"] == "b0")
    assert buy["filledQuantity"] == "0.010" and buy["commission"] == {
        "BTC": "0.000004", "USDT": "0.5"}
    assert buy["fillLatencyMs"] is not None and "FILLED" in buy["statusTimes"]
    assert models.get_order(account, UUID(buy["orderId"])) == buy
    assert models.get_order(UUID(int=0), UUID(buy["orderId"])) is None

    trades = models.list_trades(account)
    assert len(trades) == 9 and {t["side"] for t in trades} == {"BUY", "SELL"}
    [position] = models.list_positions(account)
    # 3 x (0.010 bought - 0.000004 BTC fee - 0.005 sold)
    assert Decimal(position["quantity"]) == Decimal("0.014988")
    assert Decimal(position["realizedPnl"]) > 0

    stats = models.analytics(account)
    assert sum(r["orders"] for r in stats["ordersPerMinute"]) == 8
    # The three MARKET sells; the three LIMIT buys' time on the book is not fill latency.
    assert sum(b["count"] for b in stats["fillLatencyHistogram"]) == 3
    assert stats["rejectionReasons"] == [
        {"code": "-2010", "reason": "insufficient balance", "count": 1}]
    assert sum(r["events"] for r in stats["eventsPerMinute"]) == len(envelopes(runtime.app))

    events = models.browse_events(account)
    registered = events[0]
    assert registered["eventType"] == "AccountRegistered"
    assert "password_hash" not in registered["payload"]
    assert all(e["symbol"] == "ETHUSDT" for e in models.browse_events(account, symbol="ETHUSDT"))
    assert len(models.browse_events(account, event_type="OrderFilled")) == 9
    assert len(models.browse_events(account, aggregate_id=UUID(buy["orderId"]))) == 5

    changes = models.changes_since(account, 0)
    assert changes[-1].seq == models.latest_seq(account)
    kinds = {c.kind for c in changes}
    assert kinds == {"ORDER_UPDATE", "TRADE", "POSITION"}
    trade_change = next(c for c in changes if c.kind == "TRADE")
    assert set(trade_change.data) == set(trades[0])
    assert models.changes_since(account, changes[-2].seq) == changes[-1:]
    # The hub's read for a burst: each account after its own cursor, at most `limit` each.
    other = str(UUID(int=7))
    assert models.changes_for({str(account): changes[2].seq, other: 0}) == changes[3:]
    assert models.changes_for({str(account): 0}, limit=2) == changes[:2]


def test_projector_killed_mid_batch_applies_no_fill_twice(runtime: Runtime) -> None:
    make_activity(runtime.app)
    items = envelopes(runtime.app)
    schema = runtime.settings.database_schema
    projector = Projector(schema)
    with psycopg.connect(runtime.database_url) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            for i, envelope in enumerate(items):
                projector.handle(conn, envelope)
                if i == len(items) // 2:
                    raise RuntimeError("killed")
    project(runtime, items[: len(items) // 3], projector)  # a first batch committed
    project(runtime, items, projector)  # redelivery from an older position
    project(runtime, items, projector)  # and everything once more
    after_redelivery = dump(runtime.database_url, schema)
    with psycopg.connect(runtime.database_url) as conn:
        changes = conn.execute(f'SELECT count(*) FROM "{schema}".view_changes').fetchone()
    # A clean single pass over a fresh set of tables gives the same rows.
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        for t in (*TABLES, "view_changes"):
            conn.execute(f'TRUNCATE "{schema}".{t}')
    project(runtime, items, projector)
    assert dump(runtime.database_url, schema) == after_redelivery
    with psycopg.connect(runtime.database_url) as conn:
        assert conn.execute(f'SELECT count(*) FROM "{schema}".view_changes').fetchone() == changes


def test_fills_of_different_orders_arriving_out_of_order_give_the_same_position(
        runtime: Runtime) -> None:
    make_activity(runtime.app, orders=2)
    items = envelopes(runtime.app)
    schema = runtime.settings.database_schema
    # Kafka keeps order per aggregate only: deliver the orders one after another instead.
    by_aggregate = sorted(items, key=lambda e: (e.aggregate_id, e.version))
    project(runtime, by_aggregate)
    position_tables = ("positions_view", "position_history", "trades_view")
    shuffled = dump(runtime.database_url, schema, position_tables)
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        for t in (*TABLES, "view_changes"):
            conn.execute(f'TRUNCATE "{schema}".{t}')
    project(runtime, items)
    assert dump(runtime.database_url, schema, position_tables) == shuffled


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_late_fills_in_any_interleaving_give_the_positions_of_store_order(
        runtime: Runtime, seed: int) -> None:
    import random

    make_activity(runtime.app, orders=4)
    items = envelopes(runtime.app)
    schema = runtime.settings.database_schema
    position_tables = ("positions_view", "position_history")
    project(runtime, items)
    in_order = dump(runtime.database_url, schema, position_tables)
    assert len(in_order["position_history"]) == 12  # one row per fill, 3 per order round
    # Any interleaving Kafka may deliver: each order's events stay in version order.
    queues: dict[str, list[EventEnvelope]] = {}
    for envelope in items:
        queues.setdefault(envelope.aggregate_id, []).append(envelope)
    rng = random.Random(seed)
    delivered = []
    while queues:
        key = rng.choice(sorted(queues))
        delivered.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        for t in (*TABLES, "view_changes"):
            conn.execute(f'TRUNCATE "{schema}".{t}')
    project(runtime, delivered, batch=3)  # several transactions, like the consumer's
    assert dump(runtime.database_url, schema, position_tables) == in_order


def test_balances_are_recorded_as_reported(runtime: Runtime, models: ReadModels) -> None:
    account = make_activity(runtime.app, orders=0)
    project(runtime, envelopes(runtime.app))
    schema = runtime.settings.database_schema
    with psycopg.connect(runtime.database_url) as conn:
        record_balances(conn, account, [{"asset": "BTC", "free": "1.5", "locked": "0.1"},
                                        {"asset": "USDT", "free": 100, "locked": 0}],
                        schema=schema)
        record_balances(conn, account, [{"asset": "USDT", "free": "90", "locked": "10"}],
                        schema=schema, replace_all=True)
    [usdt] = models.list_balances(account)
    assert (usdt["asset"], usdt["free"], usdt["locked"]) == ("USDT", "90", "10")
