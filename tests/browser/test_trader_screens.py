"""The order book and the wallet & PnL card in headless Chromium against a running system."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    Urls,
    market_price,
    register,
    screenshot,
    wait_chart,
)

pytestmark = pytest.mark.browser

FILL_TIMEOUT_MS = 30_000
D = Decimal


# The data of a dcc.Store as Dash holds it (null while the renderer is still starting).
STORE_DATA = """(id) => { try { const c = window.dash_component_api.getLayout(id);
    return c && c.props ? c.props.data : null; } catch (e) { return null; } }"""


def store_data(page: Any, store_id: str) -> Any:
    """The data of a dcc.Store, as Dash holds it."""
    return page.evaluate(STORE_DATA, store_id)


def wait_store(page: Any, store_id: str, predicate: str, arg: Any = None) -> None:
    """Wait until `predicate(data, arg)` (JS) holds for the store's data."""
    page.wait_for_function(
        f"([id, arg]) => {{ const data = ({STORE_DATA})(id);"
        f" return !!data && ({predicate})(data, arg); }}", arg=[store_id, arg])


def ladder(page: Any, side: str) -> list[Decimal]:
    prices = page.eval_on_selector_all(
        f"#book-ladder .book-row.{side}[data-book-price]",
        "rows => rows.map(r => r.dataset.bookPrice)")
    return [Decimal(p) for p in prices]


def api_post(page: Any, urls: Urls, path: str, body: dict[str, Any]) -> httpx.Response:
    token = json.loads(page.evaluate("() => localStorage.getItem('auth')"))["token"]
    return httpx.post(urls.api + path, json=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})


def test_order_book_ladder_spread_trades_and_price_click(page: Any, urls: Urls) -> None:
    register(page, urls)
    page.wait_for_function(
        "() => document.querySelectorAll('#book-ladder .book-row.ask[data-book-price]')"
        ".length === 10 && document.querySelectorAll("
        "'#book-ladder .book-row.bid[data-book-price]').length === 10")
    asks, bids = ladder(page, "ask"), ladder(page, "bid")
    assert asks == sorted(asks, reverse=True)  # best ask at the bottom, next to the spread
    assert bids == sorted(bids, reverse=True)  # best bid at the top
    assert min(asks) > max(bids)
    spread = page.inner_text("#book-spread")
    assert re.fullmatch(r"Spread [0-9.]+ \([0-9.]+ bp\)", spread), spread
    # The tape fills from the REST snapshot and then the stream.
    page.wait_for_selector("#book-trades .book-row.trade[data-book-price]")
    # Live: the book's update id moves on without a reload.
    first = store_data(page, "book-store")["book"]["lastUpdateId"]
    wait_store(page, "book-store", "(d, id) => d.book && d.book.lastUpdateId > id", first)

    best_bid = page.locator("#book-ladder .book-row.bid").first
    best_bid.click()
    click = store_data(page, "book-price-click")
    # The row shows the live best bid: it may have moved between the click and this read.
    assert Decimal(click["price"]) > 0 and click["side"] == "bid"
    assert click["symbol"] == "BTCUSDT" and click["n"] == 1
    # The ticket turns LIMIT at the clicked price.
    page.wait_for_function(
        "(p) => document.querySelector('#ticket-price').value === p"
        " && document.querySelector('#type-limit').classList.contains('active')",
        arg=str(click["price"]))
    page.locator("#book-trades .book-row.trade[data-book-price]").first.click()
    second = store_data(page, "book-price-click")
    assert second["side"] == "trade" and second["n"] == 2
    screenshot(page, "trade-order-book")

    # Another symbol: the ladder follows it (its prices are ETH's, far below BTC's).
    page.goto(urls.dashboard + "/trade/ETHUSDT")
    wait_store(page, "book-store", "(d) => d.symbol === 'ETHUSDT' && !!d.book")
    page.wait_for_selector("#book-ladder .book-row.bid[data-book-price]")
    assert max(ladder(page, "bid")) < min(bids)


def test_wallet_and_pnl_card_follows_fills(page: Any, urls: Urls) -> None:
    register(page, urls)
    page.wait_for_selector("#summary-equity")
    page.wait_for_function(
        "() => /^[1-9][0-9,]*\\.[0-9]{2} USDT$/.test("
        "document.querySelector('#summary-equity').textContent)",
        timeout=FILL_TIMEOUT_MS)  # the worker's first balance snapshot
    assert page.inner_text("#summary-winrate") == "—"  # nothing closed yet
    for side in ("BUY", "SELL"):
        answer = api_post(page, urls, "/api/trading/orders", {
            "symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": "0.001"})
        assert answer.status_code == 202, answer.text
    # Both fills projected: one of them closed the other (the card refreshes on its timer).
    page.wait_for_function(
        "() => /^(0|100)\\.0 %$/.test(document.querySelector('#summary-winrate').textContent)",
        timeout=FILL_TIMEOUT_MS)
    text = page.inner_text("#summary-panel")
    assert "1 closing fills" in text
    assert "Realized PnL" in text and "Fees" in text and "Net PnL" in text
    token = json.loads(page.evaluate("() => localStorage.getItem('auth')"))["token"]
    summary = httpx.get(urls.api + "/api/account/summary", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).json()
    realized = Decimal(summary["realizedPnl"]["total"]).quantize(Decimal("0.01"))
    shown = page.inner_text("#summary-panel .summary-row:has-text('Realized PnL') .summary-total")
    assert Decimal(shown.replace(",", "").lstrip("+")) == realized
    screenshot(page, "trade-wallet-summary")


def test_cancel_all_cancels_the_open_orders_of_the_symbol_on_screen(page: Any,
                                                                     urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    last = Decimal(market_price(page))
    for fraction in ("0.9", "0.85"):
        answer = api_post(page, urls, "/api/trading/orders", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
            "timeInForce": "GTC", "price": str((last * Decimal(fraction)).quantize(D("0.01")))})
        assert answer.status_code == 202, answer.text
    page.wait_for_function(
        "() => document.querySelectorAll('#orders-table .status-new').length === 2",
        timeout=FILL_TIMEOUT_MS)
    assert page.inner_text("#orders-cancel-all") == "Cancel all BTCUSDT"
    questions: list[str] = []

    def answer_dialog(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer_dialog)
    page.click("#orders-cancel-all")
    # The toast says it as soon as the API took the cancels, and goes after 8 s: looked for
    # then, not after the cancels finished (a slow CI run once took longer than the toast).
    page.wait_for_function(
        "() => document.querySelector('#toasts').innerText.includes('Cancel requested')",
        timeout=FILL_TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('#orders-table .status-canceled').length === 2",
        timeout=FILL_TIMEOUT_MS)
    assert questions == ["Cancel every open BTCUSDT order?"]


def test_trades_csv_downloads_every_trade_with_its_fee(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    for symbol in ("BTCUSDT", "ETHUSDT"):  # every trade, not only the symbol on screen
        answer = api_post(page, urls, "/api/trading/orders", {
            "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": "0.01"})
        assert answer.status_code == 202, answer.text
    page.click("#tab-trades")
    page.wait_for_selector("#trades-csv")
    token = json.loads(page.evaluate("() => localStorage.getItem('auth')"))["token"]
    trades: list[Any] = []
    for _ in range(60):  # both fills projected
        trades = httpx.get(urls.api + "/api/trading/trades", timeout=10,
                           headers={"Authorization": f"Bearer {token}"}).json()
        if len(trades) >= 2:
            break
        page.wait_for_timeout(500)
    today = datetime.now(UTC).date().isoformat()
    page.fill("#trades-csv-from", today)
    page.fill("#trades-csv-to", today)
    with page.expect_download() as download:
        page.click("#trades-csv")
    assert download.value.suggested_filename == f"trades-{today}-{today}.csv"
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["symbol"] for row in rows} == {"BTCUSDT", "ETHUSDT"}
    assert len(rows) == len(trades)
    assert all(row["fee"] and row["feeAsset"] for row in rows)


def test_hide_other_pairs_keeps_only_the_symbol_on_screen(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        answer = api_post(page, urls, "/api/trading/orders", {
            "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": "0.01"})
        assert answer.status_code == 202, answer.text
    rows = "(n) => document.querySelectorAll('#orders-table .ag-row').length === n"
    page.wait_for_function(rows, arg=2, timeout=FILL_TIMEOUT_MS)
    page.click("#hide-other-pairs input")
    page.wait_for_function(rows, arg=1)
    assert "BTCUSDT" in page.inner_text("#orders-table .ag-row")
    page.click("#tab-trades")
    page.wait_for_function(
        "() => document.querySelectorAll('#trades-table .ag-row').length === 1",
        timeout=FILL_TIMEOUT_MS)
    page.click("#tab-orders")
    page.click("#hide-other-pairs input")
    page.wait_for_function(rows, arg=2)


def test_history_filters_and_pages_on_the_server(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    for n in range(26):
        answer = api_post(page, urls, "/api/trading/orders", {
            "symbol": "ETHUSDT" if n == 0 else "BTCUSDT", "side": "BUY", "type": "MARKET",
            "quantity": "0.01"})
        assert answer.status_code == 202, answer.text
    token = json.loads(page.evaluate("() => localStorage.getItem('auth')"))["token"]
    for _ in range(60):  # all 26 on the read side
        listed = httpx.get(urls.api + "/api/trading/orders", params={"limit": 100}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"}).json()
        if len(listed) == 26:
            break
        page.wait_for_timeout(500)
    page.click("#nav-history")
    page.wait_for_selector("#history-grid")
    page.click("#history-page-size")
    page.get_by_role("option", name="25 a page").click()
    page.click("#history-search")
    page.wait_for_function("() => /^25 orders shown, more to load$/.test("
                           "document.querySelector('#history-info').textContent)")
    page.click("#history-more")
    page.wait_for_function("() => /^26 orders shown, all shown$/.test("
                           "document.querySelector('#history-info').textContent)")
    assert page.is_disabled("#history-more")
    page.fill("#history-symbol", "ethusdt")
    page.click("#history-search")
    page.wait_for_function("() => /^1 order shown, all shown$/.test("
                           "document.querySelector('#history-info').textContent)")
    assert "ETHUSDT" in page.inner_text("#history-grid .ag-row")
    page.fill("#history-symbol", "ETH/USDT")
    page.click("#history-search")
    page.wait_for_selector("#history-error:has-text('letters and digits')")
