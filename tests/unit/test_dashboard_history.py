"""The History page's pure parts: filters to API parameters, API rows to grid rows, and a
Load more that has no next page asks nothing."""

from __future__ import annotations

from dash import no_update

from dashboard.history_view import load_more, query, rows


def test_filters_become_the_apis_query_leaving_out_empty_ones() -> None:
    assert query("orders", None, None, None, None, None, 100) == {"limit": 100}
    assert query("orders", " ethusdt ", "SELL", ["FILLED", "CANCELED"], "2026-12-01",
                 "2026-12-05", 25) == {
        "limit": 25, "symbol": "ETHUSDT", "side": "SELL", "status": "FILLED,CANCELED",
        "from": "2026-12-01", "to": "2026-12-05"}
    # Trades have no status.
    assert "status" not in query("trades", None, None, ["FILLED"], None, None, 100)


def test_api_orders_and_trades_become_grid_rows() -> None:
    order = {"createdAt": "2026-12-05T10:00:01.123+00:00", "symbol": "BTCUSDT", "side": "BUY",
             "type": "MARKET", "price": None, "quantity": "0.01", "filledQuantity": "0.01",
             "averagePrice": "90000", "status": "FILLED"}
    assert rows("orders", [order]) == [{
        "time": "2026-12-05 10:00:01", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
        "price": "market", "quantity": "0.01", "filled": "0.01", "average": "90000",
        "status": "FILLED"}]
    trade = {"time": "2026-12-05T10:00:02+00:00", "symbol": "BTCUSDT", "side": "BUY",
             "price": "90000", "quantity": "0.01", "commission": "0.00001",
             "commissionAsset": "BTC", "isMaker": False}
    assert rows("trades", [trade])[0]["fee"] == "0.00001 BTC"
    assert rows("trades", [trade])[0]["role"] == "taker"


def test_load_more_without_a_next_page_asks_nothing() -> None:
    assert load_more(1, {"kind": "orders", "params": {}, "cursor": None}, None) == (
        no_update, no_update, no_update, True, no_update)
    assert load_more(1, None, None)[3] is True
