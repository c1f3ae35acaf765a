"""`GET /api/account/summary` over real read models (Postgres, the real projector)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.platform.bootstrap import Runtime
from adapters.postgres.readmodels import record_balances
from commands.messages import RecordFill
from tests.support.api import LIMIT_ORDER, User, project, register

pytestmark = pytest.mark.integration
D = Decimal
URL = "/api/account/summary"


def fill(runtime: Runtime, api: Any, user: User, side: str, price: str, qty: str,
         trade_id: str) -> None:
    answer = api.post("/api/trading/orders", headers=user.headers, json={
        **LIMIT_ORDER, "side": side, "price": price, "quantity": qty})
    assert answer.status_code == 202, answer.text
    runtime.app.handle(RecordFill(order_id=UUID(answer.json()["orderId"]), trade_id=trade_id,
                                  price=D(price), quantity=D(qty), commission=D("0.01"),
                                  commission_asset="USDT"))


def test_summary_values_the_wallet_and_splits_pnl_into_today_and_total(
        api: Any, runtime: Runtime) -> None:
    user = register(api)
    empty = api.get(URL, headers=user.headers)
    assert empty.status_code == 200, empty.text
    assert empty.json()["equity"] == "0" and empty.json()["winRate"] is None

    fill(runtime, api, user, "BUY", "90000.00", "0.002", "sum-1")
    fill(runtime, api, user, "SELL", "91000.00", "0.001", "sum-2")  # +1 realized
    project(runtime)
    schema = runtime.settings.database_schema
    with psycopg.connect(runtime.database_url) as conn, conn.transaction():
        # Those two fills happened yesterday, as far as the day's figures go.
        conn.execute(f'UPDATE "{schema}".position_history SET updated_at = updated_at - '
                     "interval '1 day' WHERE account_id = %s", (user.id,))
    fill(runtime, api, user, "SELL", "93000.00", "0.0005", "sum-3")  # +1.5 realized today
    project(runtime)
    with psycopg.connect(runtime.database_url) as conn, conn.transaction():
        record_balances(conn, account_id=user.id, schema=schema, replace_all=True, balances=[
            {"asset": "USDT", "free": "1000", "locked": "0"},
            {"asset": "BTC", "free": "0.0005", "locked": "0"},
            {"asset": "NOPE", "free": "7", "locked": "0"}])
    runtime.symbols.update_price("BTCUSDT", D("92000"))

    body = api.get(URL, headers=user.headers).json()
    assert body["quoteAsset"] == "USDT"
    assert D(body["equity"]) == D("1000") + D("0.0005") * 92000
    assert body["unpricedAssets"] == ["NOPE"]
    assert D(body["realizedPnl"]["total"]) == D("2.5")
    assert D(body["realizedPnl"]["today"]) == D("1.5")
    assert D(body["fees"]["total"]) == D("0.03") and D(body["fees"]["today"]) == D("0.01")
    assert D(body["unrealizedPnl"]["total"]) == D("0.0005") * 2000
    # Held at midnight, and this API has no market data for the day's open: unknown.
    assert body["unrealizedPnl"]["today"] is None and body["netPnl"]["today"] is None
    assert D(body["netPnl"]["total"]) == D("2.5") + D("1") - D("0.03")
    assert (body["wins"], body["losses"], D(body["winRate"])) == (2, 0, D(1))

    other = register(api)
    assert api.get(URL, headers=other.headers).json()["realizedPnl"]["total"] == "0"
    api.cookies.clear()  # registering left a session cookie behind
    assert api.get(URL).status_code == 401
