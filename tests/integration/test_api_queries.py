"""The query routes over the real read models, filled by the real projector."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from adapters.platform.bootstrap import Runtime
from adapters.postgres.readmodels import record_balances
from commands.messages import RecordAcceptance, RecordFill
from tests.support.api import (
    LIMIT_ORDER,
    project,
    register,
)

pytestmark = pytest.mark.integration


def filled_order(api: Any, runtime: Runtime, user: Any, side: str, qty: str, price: str,
                 trade_id: str, symbol: str = "BTCUSDT") -> str:
    body = {**LIMIT_ORDER, "symbol": symbol, "side": side, "quantity": qty, "price": price}
    order_id = api.post("/api/trading/orders", json=body, headers=user.headers).json()["orderId"]
    oid = uuid.UUID(order_id)
    runtime.app.handle(RecordAcceptance(order_id=oid, exchange_order_id=f"X-{trade_id}"))
    runtime.app.handle(RecordFill(order_id=oid, trade_id=trade_id, price=Decimal(price),
                                  quantity=Decimal(qty), commission=Decimal("0.01"),
                                  commission_asset="USDT"))
    return order_id


def test_orders_trades_positions_balances_analytics_and_audit(api: Any,
                                                               runtime: Runtime) -> None:
    alice, bob = register(api), register(api)
    h = alice.headers
    buy = filled_order(api, runtime, alice, "BUY", "0.002", "90000.00", "t1")
    filled_order(api, runtime, alice, "SELL", "0.001", "91000.00", "t2")
    open_id = api.post("/api/trading/orders", json={**LIMIT_ORDER, "symbol": "ETHUSDT",
                                                    "quantity": "0.1", "price": "3000.00"},
                       headers=h).json()["orderId"]
    api.post("/api/trading/orders", json=LIMIT_ORDER, headers=bob.headers)
    project(runtime)

    orders = api.get("/api/trading/orders", headers=h).json()
    assert len(orders) == 3 and orders[0]["orderId"] == open_id  # newest first
    assert [o["orderId"] for o in api.get("/api/trading/orders", headers=h,
                                          params={"status": "pending"}).json()] == [open_id]
    assert len(api.get("/api/trading/orders", headers=h, params={"symbol": "btcusdt"}).json()) == 2
    page = api.get("/api/trading/orders", headers=h, params={"limit": 1, "offset": 1}).json()
    assert len(page) == 1 and page[0]["orderId"] == orders[1]["orderId"]
    assert api.get("/api/trading/orders", headers=h,
                   params={"status": "SLEEPING"}).status_code == 422
    assert api.get("/api/trading/orders", headers=h, params={"limit": 0}).status_code == 422
    assert len(api.get("/api/trading/orders", headers=bob.headers).json()) == 1

    trades = api.get("/api/trading/trades", headers=h).json()
    assert [t["tradeId"] for t in trades] == ["t2", "t1"]
    assert trades[1]["orderId"] == buy and trades[1]["price"] == "90000.00"

    runtime.symbols.update_price("BTCUSDT", Decimal("95000.00"))
    positions = api.get("/api/trading/positions", headers=h).json()
    assert len(positions) == 1
    btc = positions[0]
    assert btc["symbol"] == "BTCUSDT" and Decimal(btc["quantity"]) == Decimal("0.001")
    assert btc["markPrice"] == "95000.00"
    expected = (Decimal("95000.00") - Decimal(btc["averageEntryPrice"])) * Decimal("0.001")
    assert Decimal(btc["unrealizedPnl"]) == expected == Decimal("5.00000")

    with psycopg.connect(runtime.database_url) as conn:
        record_balances(conn, account_id=alice.id, schema=runtime.settings.database_schema,
                        balances=[{"asset": "USDT", "free": "1000.5", "locked": "300"}])
    assert api.get("/api/trading/balances", headers=h).json()[0]["free"] == "1000.5"
    assert api.get("/api/trading/balances", headers=bob.headers).json() == []

    # Commission rates arrive with a full balance snapshot; before that the API says so.
    unknown = api.get("/api/account/commission", headers=h)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "commission_unknown"
    with psycopg.connect(runtime.database_url) as conn:
        record_balances(conn, account_id=alice.id, schema=runtime.settings.database_schema,
                        balances=[{"asset": "USDT", "free": "1000.5", "locked": "300"}],
                        replace_all=True,
                        commission={"maker": Decimal("0.00075"), "taker": Decimal("0.001")})
    rates = api.get("/api/account/commission", headers=h).json()
    assert (rates["maker"], rates["taker"]) == ("0.00075", "0.001") and rates["updatedAt"]
    assert api.get("/api/account/commission", headers=bob.headers).status_code == 404

    analytics = api.get("/api/analytics", headers=h).json()
    assert {"ordersPerMinute", "fillLatencyHistogram", "rejectionReasons"} <= set(analytics)

    events = api.get("/api/audit/events", headers=h).json()
    assert {e["eventType"] for e in events} >= {"AccountRegistered", "OrderPlaced", "OrderFilled"}
    assert all("password_hash" not in (e.get("payload") or {}) for e in events)
    fills = api.get("/api/audit/events", headers=h, params={"eventType": "OrderFilled"}).json()
    assert len(fills) == 2
    eth = api.get("/api/audit/events", headers=h, params={"symbol": "ETHUSDT"}).json()
    assert [e["eventType"] for e in eth] == ["OrderPlaced"]
    future = api.get("/api/audit/events", headers=h, params={"since": "2999-01-01T00:00:00"})
    assert future.json() == []
    assert api.get("/api/audit/events", headers=h, params={"since": "nope"}).status_code == 422
    api.cookies.clear()
    for path in ("/api/trading/orders", "/api/trading/trades", "/api/trading/positions",
                 "/api/account/commission",
                 "/api/trading/balances", "/api/analytics", "/api/audit/events"):
        assert api.get(path).status_code == 401, path


def test_market_symbols_health_ready_and_docs(api: Any, runtime: Any) -> None:
    symbols = api.get("/api/market/symbols").json()
    btc = next(s for s in symbols if s["symbol"] == "BTCUSDT")
    assert btc["tickSize"] == "0.01" and btc["quoteAsset"] == "USDT"
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": True}
    no_market = api.get("/api/market/BTCUSDT/klines")
    assert no_market.status_code == 503
    assert no_market.json()["error"]["code"] == "market_data_unavailable"
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/auth/register", "/api/trading/orders", "/api/stream",
            "/api/market/{symbol}/klines"} <= set(paths)


def test_ready_reports_injected_checks_and_fails_with_503(runtime: Runtime) -> None:
    from adapters.api.app import create_app
    from tests.support.api import TestClient

    async def broker() -> bool:
        return True

    def exchange() -> bool:
        raise ConnectionError("down")

    with TestClient(create_app(runtime, ready_checks={"broker": broker,
                                                      "exchange": exchange})) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "checks": {
            "postgres": True, "broker": True, "exchange": False}}


def test_audit_verify_checks_the_users_own_events_and_tells_nothing_of_others(
        api: Any, runtime: Runtime) -> None:
    from adapters.api.audit import latest_full_result, run_full_check

    alice, bob = register(api), register(api)
    order_id = filled_order(api, runtime, alice, "BUY", "0.002", "90000.00", "tv1")
    filled_order(api, runtime, bob, "BUY", "0.002", "90000.00", "tv2")
    project(runtime, audit=True)
    good = api.get("/api/audit/verify", headers=alice.headers).json()
    assert good["ok"] is True and good["checked"] >= 4
    schema = runtime.settings.database_schema
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{schema}".tradeledger_events SET state = convert_to(replace('
            "convert_from(state, 'UTF8'), '90000.00', '1.00'), 'UTF8') "
            "WHERE originator_id = %s AND originator_version = 4", (uuid.UUID(order_id),))
    api.app.state.ctx.user_audit.clear()
    bad = api.get("/api/audit/verify", headers=alice.headers).json()
    assert bad["ok"] is False
    assert bad["firstAlteredAggregateId"] == order_id and bad["firstAlteredVersion"] == 4
    # Bob's events are intact, and his view names nothing of Alice's.
    theirs = api.get("/api/audit/verify", headers=bob.headers)
    assert theirs.json()["ok"] is True and order_id not in theirs.text
    # The full check over every account is the background job's (and the operator's).
    assert run_full_check(runtime.database_url, schema) is True
    api.app.state.ctx.user_audit.clear()
    full = latest_full_result(api.app.state.ctx.pool, schema)
    assert full is not None and full.ok is False
    assert order_id not in api.get("/api/audit/verify", headers=bob.headers).text
    api.cookies.clear()
    assert api.get("/api/audit/verify").status_code == 401


def test_the_full_audit_check_runs_in_one_process_at_a_time(api: Any, runtime: Runtime) -> None:
    from adapters.api.audit import LOCK_NAME, run_full_check

    schema = runtime.settings.database_schema
    with psycopg.connect(runtime.database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (LOCK_NAME,))
        assert run_full_check(runtime.database_url, schema) is False  # another one runs
        holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (LOCK_NAME,))
    assert run_full_check(runtime.database_url, schema) is True
    # A fresh result is not recomputed by the next round.
    assert run_full_check(runtime.database_url, schema, min_age_seconds=60) is False


def test_metrics_and_request_ids(api: Any, runtime: Runtime) -> None:
    alice = register(api)
    filled_order(api, runtime, alice, "BUY", "0.002", "90000.00", "tm1")
    project(runtime)
    # No metrics on the public port (issue 16): they are on the loopback metrics port.
    assert api.get("/metrics").status_code == 404
    from prometheus_client import generate_latest

    text = generate_latest().decode()
    assert 'tradeledger_projected_events_total{event="OrderFilled"}' in text \
        or "tradeledger_projected_events_total" in text
    assert "tradeledger_sse_clients" in text
    assert len(api.get("/health").headers["x-request-id"]) == 16
    assert api.get("/health", headers={"X-Request-ID": "abc-123"}).headers[
        "x-request-id"] == "abc-123"
    assert api.get("/health", headers={"X-Request-ID": "bad id\\n"}).headers[
        "x-request-id"] != "bad id\\n"
