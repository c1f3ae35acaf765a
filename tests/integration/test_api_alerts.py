"""Price alerts on the server, and the PnL history route, over the real read models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from adapters.api.routes.alerts import check_once
from adapters.platform.bootstrap import Runtime
from adapters.postgres.alerts import AlertStore
from tests.integration.test_api_queries import filled_order
from tests.support.api import project, register

pytestmark = pytest.mark.integration


def test_alerts_are_per_account_fire_once_and_survive_a_new_store(api: Any,
                                                                 runtime: Runtime) -> None:
    alice, bob = register(api), register(api)
    runtime.symbols.update_price("BTCUSDT", Decimal("90000"))
    made = api.post("/api/alerts", json={"symbol": "btcusdt", "price": "95000.5"},
                    headers=alice.headers)
    assert made.status_code == 201, made.text
    alert = made.json()
    assert alert["direction"] == "above" and alert["firedAt"] is None
    assert api.get("/api/alerts", headers=bob.headers).json() == []

    ctx = api.app.state.ctx
    assert check_once(ctx) == 0  # 90000 has not reached 95000.5
    runtime.symbols.update_price("BTCUSDT", Decimal("95001"))
    assert check_once(ctx) == 1
    assert check_once(ctx) == 0  # fires once
    # A new store over the same tables (an API restart) sees the fired alert.
    again = AlertStore(ctx.pool, runtime.settings.database_schema).list_alerts(alice.id)
    assert again[0]["firedPrice"] == "95001" and again[0]["firedAt"]
    # Its fire was written as an ALERT change, so the account's streams carry it.
    changes = ctx.read_models.changes_since(alice.id, 0)
    assert [c.kind for c in changes][-1:] == ["ALERT"]
    assert changes[-1].data["alertId"] == alert["alertId"]

    assert api.delete(f"/api/alerts/{alert['alertId']}", headers=bob.headers).status_code == 404
    assert api.delete(f"/api/alerts/{alert['alertId']}", headers=alice.headers).status_code == 204
    assert api.get("/api/alerts", headers=alice.headers).json() == []


@pytest.mark.parametrize("body", [
    {"symbol": "BTCUSDT", "price": "1e999999999"},
    {"symbol": "BTCUSDT", "price": "-5"},
    {"symbol": "BTCUSDT", "price": "0"},
    {"symbol": "BTCUSDT", "price": "abc"},
    {"symbol": "NOPE", "price": "1"},
    {"symbol": "BTCUSDT", "price": "1", "direction": "sideways"},
])
def test_bad_alerts_are_refused_with_a_message(api: Any, runtime: Runtime,
                                               body: dict[str, Any]) -> None:
    alice = register(api)
    runtime.symbols.update_price("BTCUSDT", Decimal("90000"))
    response = api.post("/api/alerts", json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"]


def test_position_history_is_the_position_after_each_fill(api: Any, runtime: Runtime) -> None:
    alice = register(api)
    filled_order(api, runtime, alice, "BUY", "0.002", "90000.00", "h1")
    filled_order(api, runtime, alice, "SELL", "0.001", "91000.00", "h2")
    project(runtime)
    history = api.get("/api/trading/positions/history", headers=alice.headers).json()
    assert [Decimal(h["quantity"]) for h in history] == [Decimal("0.002"), Decimal("0.001")]
    assert Decimal(history[-1]["realizedPnl"]) == Decimal("1.00")
    assert Decimal(history[-1]["netPnl"]) == Decimal("1.00") - Decimal("0.02")
    # The latest row is the position the positions route shows.
    now = api.get("/api/trading/positions", headers=alice.headers).json()[0]
    assert now["realizedPnl"] == history[-1]["realizedPnl"]
    assert api.get("/api/trading/positions/history", headers=register(api).headers).json() == []


def test_a_database_from_before_alerts_learns_the_alert_kind(runtime: Runtime) -> None:
    import uuid

    import psycopg

    from adapters.postgres.alerts import create_alert_tables

    schema = f"alerts_migr_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        # view_changes as every release before alerts created it
        conn.execute(f"""CREATE TABLE "{schema}".view_changes (seq bigserial PRIMARY KEY,
            account_id uuid NOT NULL,
            kind text NOT NULL CHECK (kind IN ('ORDER_UPDATE', 'TRADE', 'POSITION')),
            entity_id text NOT NULL, data jsonb NOT NULL, time timestamptz NOT NULL)""")
    insert = (f'INSERT INTO "{schema}".view_changes (account_id, kind, entity_id, data, time) '
              "VALUES (gen_random_uuid(), %s, 'x', '{}', now())")
    try:
        with psycopg.connect(runtime.database_url) as conn:
            for _ in range(2):  # idempotent
                with conn.transaction():
                    create_alert_tables(conn, schema)
            conn.execute(insert, ("ALERT",))
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(insert, ("SOMETHING_ELSE",))
    finally:
        with psycopg.connect(runtime.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
