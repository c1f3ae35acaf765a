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
from domain.values import OrderStatus
from tests.support.api import LIMIT_ORDER, User, place_order, project, register
from tests.support.worker import Stack, api_over, user_with_paper_keys, wait_for

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


def test_summary_after_a_round_trip_on_the_paper_exchange(
        stack: Stack, paper_exchange: Any) -> None:
    """Through the real worker, python-binance and the paper exchange (commission 0.001)."""
    paper_exchange.set_price("SOLUSDT", "200.00")
    try:
        with api_over(stack) as client:
            user = user_with_paper_keys(stack, client)
            for side, qty in (("BUY", "1"), ("SELL", "0.5")):
                stack.wait_status(place_order(client, user, {
                    "symbol": "SOLUSDT", "side": side, "type": "MARKET", "quantity": qty}),
                    OrderStatus.FILLED)
            project(stack.rt)

            def balances() -> dict[str, Decimal]:
                rows = client.get("/api/trading/balances", headers=user.headers).json()
                return {b["asset"]: D(b["free"]) + D(b["locked"]) for b in rows}

            # Default funding of 100 SOL; +1 - 0.001 (fee in SOL) - 0.5.
            wait_for(lambda: balances().get("SOL") == D("100.499"), 15, "balance snapshot")
            stack.rt.symbols.update_price("SOLUSDT", D("200"))
            body = client.get(URL, headers=user.headers).json()
            held = balances()
    finally:
        paper_exchange.set_price("SOLUSDT", "200.00", freeze=False)

    expected = sum((amount * (D(1) if asset == "USDT" else
                              stack.rt.symbols.reference_price(asset + "USDT") or D(0))
                    for asset, amount in held.items()), D(0))
    assert D(body["equity"]) == expected
    assert "SOL" not in body["unpricedAssets"] and "USDT" not in body["unpricedAssets"]
    # Bought 1 at the ask 200.02, paid 0.001 SOL; sold 0.5 at the bid 199.98, paid 0.09999 USDT.
    assert D(body["realizedPnl"]["total"]) == D(body["realizedPnl"]["today"]) == D("-0.02")
    assert D(body["fees"]["total"]) == D("0.001") * D("200.02") + D("0.09999")
    assert D(body["unrealizedPnl"]["total"]) == D("0.499") * (D("200") - D("200.02"))
    assert (body["wins"], body["losses"], D(body["winRate"])) == (0, 1, D(0))
