"""Issue 19's trader tools through the API: cancel all, one-click close and the trades CSV,
against the real worker and paper exchange (python-binance in between) where the exchange
is involved, and against recorded fills for the input checks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from adapters.platform.bootstrap import Runtime
from commands.messages import RecordFill
from domain.values import OrderStatus
from tests.support.api import LIMIT_ORDER, User, place_order, project, register
from tests.support.worker import Stack, api_over, user_with_paper_keys

pytestmark = pytest.mark.integration
D = Decimal
ORDERS = "/api/trading/orders"


@pytest.fixture
def desk(stack: Stack) -> Iterator[tuple[Stack, Any]]:
    """The API over the same runtime the live worker, relay and paper exchange serve."""
    with api_over(stack) as client:
        yield stack, client



def test_cancel_all_cancels_the_open_orders_of_a_symbol_then_of_every_symbol(
        desk: tuple[Stack, Any], paper_exchange: Any) -> None:
    s, client = desk
    paper_exchange.set_price("ETHUSDT", "3450.00")
    paper_exchange.set_price("BTCUSDT", "96500.00")
    try:
        user = user_with_paper_keys(s, client)
        eth = [place_order(client, user, {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                    "quantity": "0.01", "price": p}) for p in ("3300", "3310")]
        btc = place_order(client, user, {**LIMIT_ORDER, "price": "95000"})
        for order_id in (*eth, btc):
            s.wait_status(order_id, OrderStatus.NEW)
        project(s.rt)

        answer = client.delete(ORDERS, params={"symbol": "ethusdt"}, headers=user.headers)
        assert answer.status_code == 202, answer.text
        assert sorted(answer.json()["orderIds"]) == sorted(map(str, eth))
        assert answer.json()["symbol"] == "ETHUSDT"
        for order_id in eth:
            s.wait_status(order_id, OrderStatus.CANCELED)
            [on_exchange] = s.exchange_orders(order_id)
            assert on_exchange["status"] == "CANCELED"
        assert s.app.get_order(btc).status is OrderStatus.NEW  # another symbol: untouched
        for order_id in eth:  # one CancelOrder command (one request event) per order
            kinds = [type(e).__name__ for e in s.app.events.get(order_id)]
            assert kinds.count("OrderCancelRequested") == 1

        project(s.rt)
        everything = client.delete(ORDERS, headers=user.headers)
        assert everything.status_code == 202 and everything.json()["orderIds"] == [str(btc)]
        s.wait_status(btc, OrderStatus.CANCELED)
        project(s.rt)
        assert client.delete(ORDERS, headers=user.headers).json()["orderIds"] == []
        other = register(client)  # another account's cancel-all never reaches these orders
        assert client.delete(ORDERS, headers=other.headers).json()["orderIds"] == []
        bad = client.delete(ORDERS, params={"symbol": "ETH/USDT"}, headers=user.headers)
        assert bad.status_code == 422
    finally:
        paper_exchange.set_price("ETHUSDT", "3450.00", freeze=False)
        paper_exchange.set_price("BTCUSDT", "96500.00", freeze=False)


def test_close_sells_the_position_rounded_down_and_the_csv_lists_every_trade(
        desk: tuple[Stack, Any], paper_exchange: Any) -> None:
    s, client = desk
    paper_exchange.set_price("ETHUSDT", "3450.00")
    try:
        user = user_with_paper_keys(s, client)
        nothing = client.post("/api/trading/positions/ETHUSDT/close", headers=user.headers)
        assert nothing.status_code == 422 and nothing.json()["error"]["code"] == \
            "nothing_to_close"
        bought = place_order(client, user, {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET",
                                      "quantity": "0.5"})
        s.wait_status(bought, OrderStatus.FILLED)
        project(s.rt)
        # 0.5 ETH bought, 0.0005 ETH of it paid as commission: 0.4995 is held.
        [position] = client.get("/api/trading/positions", headers=user.headers).json()
        assert D(position["quantity"]) == D("0.4995")

        close = client.post("/api/trading/positions/ethusdt/close", headers=user.headers)
        assert close.status_code == 202, close.text
        body = close.json()
        assert (body["side"], body["type"], body["quantity"]) == ("SELL", "MARKET", "0.4995")
        sold = s.wait_status(UUID(body["orderId"]), OrderStatus.FILLED)
        assert sold.filled_quantity == D("0.4995")
        project(s.rt)
        [flat] = client.get("/api/trading/positions", headers=user.headers).json()
        assert D(flat["quantity"]) == 0
        again = client.post("/api/trading/positions/ETHUSDT/close", headers=user.headers)
        assert again.status_code == 422 and again.json()["error"]["code"] == "nothing_to_close"

        export = client.get("/api/trading/trades.csv", headers=user.headers)
        assert export.status_code == 200, export.text
        assert export.headers["content-type"].startswith("text/csv")
        assert "attachment" in export.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(export.text)))
        trades = client.get("/api/trading/trades", headers=user.headers).json()
        assert len(rows) == len(trades) == len(sold.trade_ids) + len(
            s.app.get_order(bought).trade_ids)
        assert {r["feeAsset"] for r in rows if r["side"] == "BUY"} == {"ETH"}
        assert {r["feeAsset"] for r in rows if r["side"] == "SELL"} == {"USDT"}
        assert sum(D(r["fee"]) for r in rows if r["side"] == "BUY") == D("0.0005")
        times = [datetime.fromisoformat(r["time"]) for r in rows]
        assert times == sorted(times) and all(t.tzinfo is not None for t in times)
        by_id = {t["tradeId"]: t for t in trades}
        for r in rows:
            assert by_id[r["tradeId"]]["commission"] == r["fee"]
            assert by_id[r["tradeId"]]["price"] == r["price"]
    finally:
        paper_exchange.set_price("ETHUSDT", "3450.00", freeze=False)


def fill(runtime: Runtime, api: Any, user: User, body: dict[str, Any], quantity: str,
         trade_id: str) -> None:
    order_id = place_order(api, user, body)
    runtime.app.handle(RecordFill(order_id=order_id, trade_id=trade_id, price=D(body["price"]),
                                  quantity=D(quantity), commission=D("0.01"),
                                  commission_asset="USDT"))


def test_close_of_dust_below_the_minimum_is_422(api: Any, runtime: Runtime) -> None:
    user = register(api)
    # A partial fill smaller than BTCUSDT's minimum, never more: dust that no order can sell.
    fill(runtime, api, user, {**LIMIT_ORDER, "quantity": "0.001"}, "0.000009", "dust-1")
    project(runtime)
    answer = api.post("/api/trading/positions/BTCUSDT/close", headers=user.headers)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_quantity" and "below" in error["message"]
    assert api.post("/api/trading/positions/NOPEUSDT/close",
                    headers=user.headers).status_code == 422
    assert api.post("/api/trading/positions/BTC-USDT/close",
                    headers=user.headers).status_code == 422


def test_trades_csv_filters_by_date_or_time_and_refuses_bad_bounds(api: Any,
                                                                  runtime: Runtime) -> None:
    user = register(api)
    fill(runtime, api, user, LIMIT_ORDER, "0.001", "csv-1")
    fill(runtime, api, user, {**LIMIT_ORDER, "price": "90001.00"}, "0.0005", "csv-2")
    project(runtime)
    url = "/api/trading/trades.csv"
    today = datetime.now(UTC).date()

    def rows(**params: str) -> list[dict[str, str]]:
        answer = api.get(url, params=params, headers=user.headers)
        assert answer.status_code == 200, answer.text
        return list(csv.DictReader(io.StringIO(answer.text)))

    everything = rows()
    assert [r["tradeId"] for r in everything] == ["csv-1", "csv-2"]
    assert everything[0]["fee"] == "0.01" and everything[0]["feeAsset"] == "USDT"
    assert D(everything[1]["quoteQuantity"]) == D("45.0005")
    assert len(rows(**{"from": today.isoformat(), "to": today.isoformat()})) == 2
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert rows(**{"from": tomorrow}) == []
    yesterday = (today - timedelta(days=1)).isoformat()
    assert rows(to=yesterday) == []
    second = everything[1]["time"]
    assert [r["tradeId"] for r in rows(**{"from": second})] == ["csv-2"]
    assert [r["tradeId"] for r in rows(to=second)] == ["csv-1"]  # a time as `to` excludes
    for params in ({"from": "yesterday"}, {"to": "2026-13-01"}, {"from": tomorrow,
                                                                 "to": yesterday}):
        answer = api.get(url, params=params, headers=user.headers)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["error"]["code"] == "validation_failed"
    other = register(api)
    answer = api.get(url, headers=other.headers)
    assert answer.text.strip().splitlines() == [",".join(
        ("time", "tradeId", "orderId", "symbol", "side", "price", "quantity", "quoteQuantity",
         "fee", "feeAsset", "isMaker"))]


def test_a_spend_amount_market_order_buys_what_the_amount_buys(
        desk: tuple[Stack, Any], paper_exchange: Any) -> None:
    s, client = desk
    paper_exchange.set_price("ETHUSDT", "3450.00")
    try:
        user = user_with_paper_keys(s, client)
        order_id = place_order(client, user, {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET",
                                        "quoteOrderQty": "100"})
        pending = client.get(f"{ORDERS}/{order_id}", headers=user.headers).json()
        assert pending["quoteOrderQty"] == "100" and D(pending["quantity"]) == 0
        order = s.wait_status(order_id, OrderStatus.FILLED)
        [on_exchange] = s.exchange_orders(order_id)
        assert D(on_exchange["origQuoteOrderQty"]) == D("100")  # sent as quoteOrderQty
        assert order.quantity == order.filled_quantity == D(on_exchange["executedQty"]) > 0
        assert order.filled_quote <= D("100")
        assert order.quantity == (D("100") / order.average_price).quantize(D("0.0001"),
                                                                          "ROUND_DOWN")
        project(s.rt)
        shown = client.get(f"{ORDERS}/{order_id}", headers=user.headers).json()
        [listed] = [o for o in client.get(ORDERS, headers=user.headers).json()
                    if o["orderId"] == str(order_id)]
        assert shown == listed  # the aggregate's shape and the read model's agree
        assert shown["status"] == "FILLED" and D(shown["quantity"]) == order.quantity
        assert (shown["quoteOrderQty"], shown["stopPrice"], shown["orderListId"]) == \
            ("100", None, None)
        assert "OrderQuantityFixed" in [e["type"] for e in client.get(
            f"{ORDERS}/{order_id}/events", headers=user.headers).json()]
    finally:
        paper_exchange.set_price("ETHUSDT", "3450.00", freeze=False)


def test_spend_amount_input_is_checked_with_clear_messages(api: Any) -> None:
    user = register(api)
    market = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET"}
    cases = [
        ({**market, "quantity": "0.01", "quoteOrderQty": "100"}, "validation_failed",
         "exactly one of quantity"),
        (market, "validation_failed", "exactly one of quantity"),
        ({**LIMIT_ORDER, "quantity": None, "quoteOrderQty": "100"}, "invalid_quantity",
         "MARKET orders only"),
        ({**market, "quoteOrderQty": "1"}, "notional_too_small", "minimum notional"),
        ({**market, "quoteOrderQty": "-5"}, "invalid_quantity", "greater than zero"),
        ({**market, "quoteOrderQty": "abc"}, "validation_failed", ""),
    ]
    for body, code, words in cases:
        answer = api.post(ORDERS, json=body, headers=user.headers)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == code and words in error["message"], (body, error)
