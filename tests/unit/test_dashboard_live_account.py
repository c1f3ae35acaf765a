"""The account side of the live desk on the server (dashboard/live_account.py) and the toasts
(dashboard/toasts.py): rows formatted with Decimal, unrealized PnL re-marked with the newest
price, balances and marks read through the API client, the status dot, toasts that expire."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import dash
import httpx
import pytest

from dashboard import live_account, toasts
from dashboard.live_account import (
    balances_of,
    number,
    position_row,
    position_rows,
    shown,
    trade_row,
    trade_rows,
)

BTC = {"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", "tickSize": "0.01000000",
       "stepSize": "0.00001000"}
POSITION = {"symbol": "BTCUSDT", "quantity": "0.00200000", "averageEntryPrice": "100.00000000",
            "realizedPnl": "-0.21", "fees": "0.1", "otherFees": {"BTC": "0.00000200"},
            "markPrice": "101", "unrealizedPnl": "0.002"}


@pytest.fixture
def api() -> Iterator[list[str]]:
    """The API as the dashboard's server sees it: symbols, balances, positions."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/api/market/symbols":
            return httpx.Response(200, json=[BTC])
        if request.headers.get("Authorization") != "Bearer t":
            return httpx.Response(401, json={"error": {"code": "unauthorized",
                                                       "message": "sign in"}})
        if request.url.path == "/api/trading/balances":
            return httpx.Response(200, json=[{"asset": "USDT", "free": "990.5", "locked": "0"}])
        if request.url.path == "/api/trading/positions":
            return httpx.Response(200, json=[POSITION, {"symbol": "ETHUSDT", "markPrice": None}])
        return httpx.Response(404)

    live_account.configure("http://api.test", httpx.MockTransport(answer))
    yield seen
    live_account.configure("")


def test_numbers_are_exact_trimmed_or_rounded_half_up_and_never_minus_zero() -> None:
    assert number("0.00100000") == "0.001"
    assert number("96227.495", 2) == "96227.50"
    assert number("-0.001", 2) == "0.00"
    assert number("-0.21", 2) == "-0.21"
    assert number(None) == number("") == "—"
    assert number("n/a") == "n/a"


def test_balances_come_in_every_shape_the_api_has_sent() -> None:
    want = {"BTC": {"free": "1", "locked": "0"}}
    assert balances_of([{"asset": "BTC", "free": "1"}]) == want
    assert balances_of({"balances": [{"asset": "BTC", "free": "1", "locked": "0"}]}) == want
    assert balances_of({"BTC": {"free": "1", "locked": "0"}}) == want
    assert balances_of(None) == {}


def test_a_trade_row_shows_its_fee_in_its_asset_and_in_the_quote_when_paid_in_the_base() -> None:
    trade = {"orderId": "o1", "tradeId": "7", "time": "2026-12-06T02:00:00Z",
             "symbol": "BTCUSDT", "side": "BUY", "price": "96227.49000000",
             "quantity": "0.00100000", "quoteQuantity": "96.22749", "commission": "0.00000100",
             "commissionAsset": "BTC", "isMaker": False}
    row = trade_row(trade, live_account.rules_of({"rules": BTC}))
    assert row == {"rowId": "o1:7", "time": "2026-12-06T02:00:00Z", "symbol": "BTCUSDT",
                   "side": "BUY", "price": "96227.49", "quantity": "0.001", "total": "96.23",
                   "fee": "0.000001 BTC (≈ 0.10 USDT)", "role": "taker"}
    in_quote = trade_row({**trade, "commission": "0.0962", "commissionAsset": "USDT"},
                         live_account.rules_of({"rules": BTC}))
    assert in_quote["fee"] == "0.0962 USDT"


def test_unrealized_pnl_follows_the_live_price_of_the_symbol_on_screen() -> None:
    rules = live_account.rules_of({"rules": BTC})
    live = position_row(POSITION, {"BTCUSDT": "102"}, {"symbol": "BTCUSDT", "price": "110.004"},
                        rules)
    assert (live["mark"], live["unrealized"]) == ("110.00", "0.02")
    assert Decimal(live["unrealized"]) == ((Decimal("110.004") - 100) * Decimal("0.002")
                                           ).quantize(Decimal("0.01"))
    # Another symbol on screen: the API's newest mark, else the one the row came with.
    assert position_row(POSITION, {"BTCUSDT": "150"}, {"symbol": "ETHUSDT", "price": "9"},
                        rules)["unrealized"] == "0.10"
    assert position_row(POSITION, {}, {}, rules)["mark"] == "101.00"
    no_mark = position_row({**POSITION, "markPrice": None, "unrealizedPnl": None}, {}, {}, rules)
    assert (no_mark["mark"], no_mark["unrealized"]) == ("—", "—")
    assert live["fees"] == "0.10 USDT + 0.000002 BTC"
    assert live["realized"] == "-0.21"


def test_a_closed_position_is_listed_once_it_realized_something() -> None:
    assert shown(POSITION)
    assert shown({**POSITION, "quantity": "0", "realizedPnl": "1"})
    assert not shown({**POSITION, "quantity": "0E-8", "realizedPnl": "0.00"})


def test_rows_use_each_symbols_tick_from_the_symbols_store(api: list[str]) -> None:
    trade = {"orderId": "o", "tradeId": "1", "symbol": "BTCUSDT", "price": "1.23456"}
    symbols = {"BTCUSDT": BTC}
    assert trade_rows([trade, trade], symbols)[0]["price"] == "1.23"
    assert position_rows([POSITION], None, None, symbols)[0]["symbol"] == "BTCUSDT"
    # The store is dashboard/chart.py's one read of the symbols: none of their own here.
    assert api.count("/api/market/symbols") == 0


def test_balances_and_marks_are_read_with_the_browsers_token(api: list[str]) -> None:
    auth, live = {"token": "t"}, "live"
    assert live_account.load_balances(auth, live, None, None) == {
        "balances": {"USDT": {"free": "990.5", "locked": "0"}}, "balancesError": None}
    assert live_account.load_marks(1, auth) == {"BTCUSDT": "101"}
    assert live_account.load_balances(None, live, None, None) == {}
    with pytest.raises(dash.exceptions.PreventUpdate):  # read again once the stream is back
        live_account.load_balances(auth, "connecting", None, None)
    refused = live_account.load_balances({"token": "x"}, live, None, None)
    assert refused.to_plotly_json()["operations"][0]["params"]["value"] == "sign in"


def operations(patch: Any) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = patch.to_plotly_json()["operations"]
    return ops


def test_a_toast_is_appended_and_retired_after_its_time() -> None:
    [append] = operations(toasts.push("Cancel refused", "too late", "error"))
    assert append["operation"] == "Append"
    item = append["params"]["value"]
    assert (item["title"], item["body"], item["kind"]) == ("Cancel refused", "too late", "error")
    old = {**item, "at": time.time() - toasts.TOAST_SECONDS - 1}
    fresh = {**item, "id": "new", "at": time.time()}
    [remove] = operations(toasts.retire_toasts(1, [old, fresh]))
    assert remove["operation"] == "Remove" and remove["params"]["value"] == old
    with pytest.raises(dash.exceptions.PreventUpdate):  # nothing to retire: no redraw
        toasts.retire_toasts(2, [fresh])
    drawn, idle = toasts.show_toasts([fresh])
    assert len(drawn) == 1 and drawn[0].role == "alert" and not idle
    assert toasts.show_toasts([]) == ([], True)


def test_the_alert_toast_writes_prices_as_people_do() -> None:
    text = toasts.alert_text({"symbol": "BTCUSDT", "price": "96227.49000000",
                              "firedPrice": "96230.10000000"})
    assert text == "BTCUSDT crossed 96227.49 (now 96230.1)"


def test_every_alert_of_a_batch_becomes_a_toast() -> None:
    alert = {"symbol": "BTCUSDT", "price": "1.50", "firedPrice": "1.49"}
    patch, refresh = toasts.alerts_fired([alert, {**alert, "symbol": "ETHUSDT"}])
    assert [op["params"]["value"]["body"] for op in operations(patch)] == [
        "BTCUSDT crossed 1.5 (now 1.49)", "ETHUSDT crossed 1.5 (now 1.49)"]
    assert refresh > 0
    assert toasts.alerts_fired([]) == (dash.no_update, dash.no_update)


def test_the_ticket_reads_balances_from_their_own_store() -> None:
    from dashboard import ticket

    market = {"symbol": "BTCUSDT", "price": "100", "balances": {}, "balancesError": None}
    balances = {"balances": {"USDT": {"free": "50", "locked": "0"}}, "balancesError": None}
    state = {"side": "BUY", "type": "MARKET"}
    assert ticket.numbers("0.1", None, state, market, None, balances)[0] == "50.00 USDT"
    assert ticket.percent_to_quantity(
        "100", state, None, ticket.with_balances(market, balances)) == "0.50000"


def triggered_by(*prop_ids: str) -> Any:
    """Run what follows as a Dash callback that these inputs triggered (several at once, as
    Dash sends them when they changed before the callback ran)."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    return context_value.set(AttributeDict(
        triggered_inputs=[{"prop_id": p, "value": None} for p in prop_ids]))


@pytest.fixture
def streams() -> Iterator[list[str]]:
    """The API minting stream tokens and listing the account's rows."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.headers.get("Authorization") != "Bearer t":
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "no"}})
        if request.url.path == "/api/stream-token":
            return httpx.Response(200, json={"token": f"s{len(seen)}/+"})
        if request.url.path == "/api/trading/orders":
            return httpx.Response(200, json=[{"orderId": "o1", "version": 2}])
        if request.url.path == "/api/trading/trades":
            return httpx.Response(500, json={"error": {"code": "boom", "message": "down"}})
        return httpx.Response(200, json=[POSITION])

    live_account.configure("http://api.test", httpx.MockTransport(answer))
    yield seen
    live_account.configure("")


AUTH = {"token": "t", "user": {"id": "u1", "email": "a@example.com"}}
CONFIG = {"apiUrl": "http://browser.test/"}


def test_the_user_stream_gets_a_fresh_one_use_token_on_sign_in_and_when_it_expired(
        streams: list[str]) -> None:
    triggered_by("auth.data")
    url, key = live_account.user_stream_url(AUTH, None, CONFIG, None, None)
    assert url == "http://browser.test/api/stream?token=s1%2F%2B" and key == "user:u1"
    # A refreshed access token leaves the open stream alone...
    with pytest.raises(dash.exceptions.PreventUpdate):
        live_account.user_stream_url(AUTH, None, CONFIG, key, url)
    # ... but an expiry brought in the same call as the auth store still gets a new token.
    triggered_by("auth.data", "user-stream.expired")
    again, same = live_account.user_stream_url(AUTH, 1, CONFIG, key, url)
    assert again != url and same == key and streams.count("POST /api/stream-token") == 2
    assert live_account.user_stream_url(None, 1, CONFIG, key, url) == (None, None)


def test_the_snapshot_is_read_on_every_open_whatever_else_triggered_it(
        streams: list[str]) -> None:
    triggered_by("auth.data")  # signed in: the stream's first open will read it
    with pytest.raises(dash.exceptions.PreventUpdate):
        live_account.user_snapshot(None, None, AUTH)
    triggered_by("auth.data", "user-stream.opened")  # a reload: both in one call
    snapshot = live_account.user_snapshot({"n": 1}, None, AUTH)
    # What could be read (trades failed: the next open reads them again).
    assert snapshot == {"orders": [{"orderId": "o1", "version": 2}], "positions": [POSITION]}
    assert live_account.user_snapshot({"n": 1}, None, None) == {"clear": True}
