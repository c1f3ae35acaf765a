"""The dashboard in headless Chromium against a whole running TradeLedger."""

from __future__ import annotations

import json
import re
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    PROPS,
    ConsoleLog,
    Urls,
    market_price,
    register,
    screenshot,
    tick_size,
    wait_chart,
    wait_live,
)

pytestmark = pytest.mark.browser

FILL_TIMEOUT_MS = 30_000


def mark_page(page: Any) -> None:
    """Plant a marker that a reload would wipe."""
    page.evaluate("() => { window.__noReload = 'still here'; }")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("() => window.__noReload") == "still here", "the page reloaded"


def fill_ticket(page: Any, qty: str, price: str | None = None, side: str = "buy") -> None:
    """Fill the ticket with the keyboard shortcuts and the fields."""
    page.click("#pair-name")  # focus off any input so shortcuts apply
    page.keyboard.press("b" if side == "buy" else "s")
    page.keyboard.press("l" if price else "m")
    if price:
        page.fill("#ticket-price", price)
    page.fill("#ticket-qty", qty)


def place_only(page: Any, qty: str, price: str | None = None, side: str = "buy") -> None:
    """Fill the ticket and place the order."""
    fill_ticket(page, qty, price, side)
    page.click("#place-btn")


def place(page: Any, qty: str, price: str | None = None, side: str = "buy") -> str:
    """Place an order through the ticket and return the ticket's message."""
    place_only(page, qty, price, side)
    page.wait_for_function(
        "() => document.querySelector('#ticket-message').textContent.length > 0")
    text: str = page.inner_text("#ticket-message")
    return text


def price_below_market(page: Any, fraction: str = "0.8") -> str:
    last = Decimal(market_price(page))
    tick = Decimal(tick_size(page, "BTCUSDT"))
    return str((last * Decimal(fraction)).quantize(tick, rounding=ROUND_DOWN))


def test_logged_out_visitor_is_sent_to_login(page: Any, urls: Urls) -> None:
    page.goto(urls.dashboard + "/trade/ETHUSDT")
    page.wait_for_url(re.compile(r".*/login$"))
    page.wait_for_selector("#login-btn")  # the page container draws the page after the URL
    screenshot(page, "login")
    page.click("#to-register")
    page.wait_for_url(re.compile(r".*/register$"))
    page.click("#page-register summary")  # show the optional Testnet keys
    screenshot(page, "register")


def test_register_login_market_order_fills_live_without_reload(
        page: Any, urls: Urls, console: ConsoleLog) -> None:
    email = register(page, urls)
    page.click("#logout-btn")
    page.wait_for_url(re.compile(r".*/login$"))
    console.allowed_statuses.add(401)
    page.fill("#login-email", email)
    page.fill("#login-password", "wrong password")
    page.click("#login-btn")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    page.fill("#login-password", "correct horse battery staple")
    page.click("#login-btn")
    page.wait_for_url(re.compile(r".*/trade/BTCUSDT$"))
    wait_live(page)
    wait_chart(page, "BTCUSDT")
    assert page.inner_text("#user-email") == email
    mark_page(page)

    message = place(page, "0.001")
    assert "sent" in message or "filled" in message, message
    page.wait_for_selector("#orders-table .status-filled", timeout=FILL_TIMEOUT_MS)
    # The ticket's message follows the order to its outcome.
    page.wait_for_selector("#ticket-message.ok:has-text('filled')", timeout=FILL_TIMEOUT_MS)
    row = page.inner_text("#orders-table .ag-row[row-index='0']")
    assert "MARKET" in row and "FILLED" in row
    page.click("#tab-trades")
    page.wait_for_selector("#trades-table .ag-row")
    page.click("#tab-positions")
    page.wait_for_selector("#positions-table .ag-row[row-id=BTCUSDT]")
    page.click("#tab-orders")
    # % of the available balance: a quantity on the step size, and the total under it.
    page.click("#qty-mode-pct")
    page.click("#pct-25")
    page.wait_for_function(
        "() => /^\\d+\\.\\d{5}$/.test(document.querySelector('#ticket-qty').value)")
    assert "USDT" in page.inner_text("#ticket-available")
    page.click("#qty-mode-amount")
    page.fill("#ticket-qty", "")
    # The fill appears on the chart as a marker.
    page.wait_for_function(
        "() => document.querySelector('#price-chart .js-plotly-plot').data"
        ".some(t => t.name === 'Buys' && t.x.length > 0)")
    assert_not_reloaded(page)
    screenshot(page, "trade")


def test_validation_message_is_shown_inline(page: Any, urls: Urls, console: ConsoleLog) -> None:
    register(page, urls)
    console.allowed_statuses.add(422)
    place_only(page, "0.0000001")
    # At the field it is about, in words: not under the button in API jargon.
    page.wait_for_selector("#qty-error:has-text('minimum')")
    assert page.inner_text("#ticket-message") == ""


def test_symbol_and_timeframe_switching_without_reload(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT", 60_000)
    mark_page(page)

    page.click("#symbol-select")
    page.get_by_role("option", name="ETHUSDT").click()
    page.wait_for_url(re.compile(r".*/trade/ETHUSDT$"))
    wait_chart(page, "ETHUSDT", 60_000)
    assert page.inner_text("#pair-name") == "ETHUSDT"
    assert "Buy ETHUSDT" in page.inner_text("#place-btn")

    page.click("#tf-1h")
    wait_chart(page, "ETHUSDT", 3_600_000)
    assert "active" in page.get_attribute("#tf-1h", "class")
    page.click("#pair-name")
    page.keyboard.press("1")  # shortcut for 1m
    wait_chart(page, "ETHUSDT", 60_000)
    page.click("#tf-1d")
    wait_chart(page, "ETHUSDT", 86_400_000)

    # Indicators draw as extra traces (computed on the Dash server); RSI gets its own axis.
    page.check("#indicator-toggles input[value=sma]")
    page.check("#indicator-toggles input[value=rsi]")
    page.wait_for_function(
        "() => { const d = document.querySelector('#price-chart .js-plotly-plot').data;"
        " const has = n => d.some(t => t.name === n && t.y.some(v => v !== null));"
        " return has('SMA 20') && has('RSI 14'); }")
    page.click("#tf-1m")
    wait_chart(page, "ETHUSDT", 60_000)

    # Live ticks reach the chart through the market stream (patched in place, 30-market.js).
    page.wait_for_function(
        f"() => {{ const p = ({PROPS})('market-stream');"
        " return p && p.status === 'live' && (p.message || {}).n > 0; }")
    # Back to the first symbol without a reload...
    page.go_back()
    page.wait_for_url(re.compile(r".*/trade/BTCUSDT$"))
    wait_chart(page, "BTCUSDT")
    # ... and back once more to /register, which a signed-in user leaves for the trade page
    # of the symbol shown. (Two backs in a row could reach /register before the first one
    # was routed, and so redirect to the symbol before it: a race of the test, not the app.)
    page.go_back()
    page.wait_for_url(re.compile(r".*/trade/BTCUSDT$"))
    wait_chart(page, "BTCUSDT")
    assert_not_reloaded(page)

    page.click("#theme-toggle")
    page.wait_for_function("() => document.body.classList.contains('dark')")
    page.wait_for_timeout(500)
    screenshot(page, "trade-dark-indicators")
    page.click("#theme-toggle")

    # A deep link opens straight on its symbol.
    page.goto(urls.dashboard + "/trade/SOLUSDT")
    wait_chart(page, "SOLUSDT")
    assert page.inner_text("#pair-name") == "SOLUSDT"


def test_cancel_a_limit_order(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    price = price_below_market(page)
    message = place(page, "0.001", price=price)
    assert "sent" in message or "on the book" in message, message
    row = page.locator("#orders-table .ag-row", has_text=price[:5]).first
    row.locator(".status-new, .status-accepted").wait_for(timeout=FILL_TIMEOUT_MS)
    # The open order is drawn on the chart (a line, or an edge label when far off).
    page.wait_for_function(
        "(p) => (document.querySelector('#price-chart .js-plotly-plot').layout.annotations"
        " || []).some(a => a.text.includes('@ ' + p))", arg=price)
    screenshot(page, "trade-open-order")
    row.locator(".cancel-btn").click()
    row.locator(".status-canceled").wait_for(timeout=FILL_TIMEOUT_MS)
    assert row.locator(".cancel-btn").count() == 0


def test_two_tabs_both_update(context: Any, page: Any, urls: Urls) -> None:
    register(page, urls)
    other = context.new_page()
    other.goto(urls.dashboard + "/trade/BTCUSDT")  # same browser: same session
    wait_live(other)
    mark_page(other)
    price = price_below_market(page, "0.7")
    place(page, "0.001", price=price)
    for tab in (page, other):
        tab.locator("#orders-table .ag-row", has_text=price[:5]).first.wait_for(
            timeout=FILL_TIMEOUT_MS)
    place(page, "0.001")
    for tab in (page, other):
        tab.wait_for_selector("#orders-table .status-filled", timeout=FILL_TIMEOUT_MS)
    assert_not_reloaded(other)


def test_analytics_and_audit_pages(page: Any, urls: Urls) -> None:
    register(page, urls)
    place(page, "0.001")
    page.wait_for_selector("#orders-table .status-filled", timeout=FILL_TIMEOUT_MS)
    mark_page(page)

    page.click("#nav-analytics")
    page.wait_for_url(re.compile(r".*/analytics$"))
    page.wait_for_function(
        # The page container draws the page after the URL changes.
        "() => document.querySelector('#analytics-summary')?.textContent.includes('orders')")
    page.wait_for_function(
        "() => { const g = document.querySelector('#an-status .js-plotly-plot');"
        " return g && g.data && g.data.length && g.data[0].type === 'pie'; }")
    page.wait_for_timeout(500)
    screenshot(page, "analytics")

    page.click("#nav-audit")
    page.wait_for_url(re.compile(r".*/audit$"))
    page.wait_for_selector("#audit-timeline li")
    page.wait_for_selector("#audit-timeline li:has-text('OrderFilled')")
    assert "consistent" in page.inner_text("#audit-chain")
    assert "Hash chain: verified" in page.inner_text("#audit-chain")
    page.wait_for_selector("#audit-state td[data-field=status]:has-text('FILLED')")
    assert int(page.inner_text("#audit-state td[data-field=version]")) >= 3
    # The audited order is in the URL.
    page.wait_for_url(re.compile(r".*/audit/[0-9a-f-]{36}$"))
    # Time travel back to version 1: the order as placed.
    page.focus("#audit-version [role=slider]")
    page.keyboard.press("Home")
    page.wait_for_selector("#audit-state td[data-field=status]:has-text('PENDING')")
    assert "current" in page.get_attribute("#audit-ev-1", "class")
    screenshot(page, "audit")
    with page.expect_download() as download:
        page.click("#audit-export-csv")
    assert download.value.suggested_filename.endswith(".csv")
    header = open(download.value.path()).readline()
    assert "symbol" in header and "payload" not in header  # a column per field
    with page.expect_download() as download:
        page.click("#audit-export-json")
    exported = json.loads(open(download.value.path()).read())
    assert exported["events"][0]["type"] == "OrderPlaced"
    assert_not_reloaded(page)


def test_price_alert_is_stored_on_the_server_and_fires_once_as_a_toast(
        page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    market = Decimal(market_price(page))
    page.fill("#alert-price", str((market * 2).quantize(Decimal("0.01"))))
    page.click("#alert-add")
    page.wait_for_selector("#alert-list li:has-text('BTCUSDT')")
    # An alert the market has already reached (below twice the price) fires at once, on
    # the server, and reaches the page over the stream.
    token = json.loads(page.evaluate("() => localStorage.getItem('auth')"))["token"]
    target = (market * 2).quantize(Decimal("0.01"))
    response = httpx.post(urls.api + "/api/alerts", timeout=10,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"symbol": "BTCUSDT", "price": str(target),
                                "direction": "below"})
    assert response.status_code == 201, response.text
    page.wait_for_selector(".toast:has-text('crossed')", timeout=15_000)
    toast = page.inner_text(".toast")
    assert not re.search(r"\d\.\d*000\b", toast), toast  # "96227.49", not "96227.49000000"
    page.wait_for_selector("#alert-list li.fired")
    page.wait_for_timeout(2500)  # a second check round fires nothing more
    assert page.locator(".toast").count() == 1
    # The toast stays clear of the Orders table.
    box, table = page.locator(".toast").bounding_box(), page.locator(".tables-panel").bounding_box()
    assert box["y"] + box["height"] <= table["y"] or box["y"] >= table["y"] + table["height"]
    screenshot(page, "alerts")


def test_tables_catch_up_after_a_lost_stream_without_duplicates(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    first = price_below_market(page, "0.7")
    place(page, "0.001", price=first)
    page.locator("#orders-table .ag-row", has_text=first[:5]).first.wait_for()

    # The connection drops; meanwhile another client places an order.
    page.evaluate("() => dash_clientside.set_props('user-stream', {url: null})")
    page.wait_for_selector("#live-status.down")
    token = json.loads(page.evaluate("() => localStorage.getItem('auth')"))["token"]
    second = price_below_market(page, "0.6")
    response = httpx.post(urls.api + "/api/trading/orders", timeout=10,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                "quantity": "0.001", "price": second, "timeInForce": "GTC"})
    assert response.status_code == 202, response.text

    # Back: the component asks for a new URL (a new one-use token) and resumes.
    page.evaluate("() => dash_clientside.set_props('user-stream', {expired: 1000})")
    wait_live(page)
    page.locator("#orders-table .ag-row", has_text=second[:5]).first.wait_for()
    page.wait_for_timeout(1500)  # let any replayed event arrive
    ids = page.eval_on_selector_all("#orders-table .ag-row",
                                    "rows => rows.map(r => r.getAttribute('row-id'))")
    assert len(ids) == 2 and len(set(ids)) == 2, ids


def test_two_tabs_refreshing_at_once_keep_the_login(context: Any, page: Any, urls: Urls) -> None:
    # Refresh tokens rotate and a reused one revokes the login: tabs must take turns.
    register(page, urls)
    other = context.new_page()
    other.goto(urls.dashboard + "/trade/BTCUSDT")
    wait_live(other)
    token = "() => JSON.parse(localStorage.getItem('auth')).token"
    before = page.evaluate(token)
    # Tokens carry times in whole seconds: one issued in the sign-in's second could be
    # byte-equal to it, and the check below could not see the refresh.
    page.wait_for_timeout(1100)
    for tab in (page, other):  # both start before either finishes
        tab.evaluate("(t) => { window.__refreshed = TL.refreshSession(t).then(s => !!s); }",
                     before)
    assert [tab.evaluate("() => window.__refreshed") for tab in (page, other)] == [True, True]
    for tab in (page, other):
        me = httpx.get(urls.api + "/api/me", timeout=10,
                       headers={"Authorization": f"Bearer {tab.evaluate(token)}"})
        assert me.status_code == 200 and me.json()["email"].endswith("@example.com")
    assert page.evaluate(token) != before
    # The login still works after another rotation (no reuse was detected).
    assert other.evaluate(f"() => TL.refreshSession(({token})()).then(s => !!s)") is True
    page.reload()
    wait_live(page)
