"""Issue 19 on the desk: spend-amount MARKET orders, the expected fee, stop-limit orders and
an attached OCO exit in the ticket."""

from __future__ import annotations

import os
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from adapters.paper_exchange.runner import admin_post
from tests.browser.conftest import (
    Urls,
    market_price,
    register,
    screenshot,
    tick_size,
    wait_chart,
)
from tests.browser.test_dashboard import FILL_TIMEOUT_MS, place
from tests.e2e.test_security import paper_exchange_url

pytestmark = pytest.mark.browser


def test_spend_100_usdt_buys_that_much_at_market(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    page.click("#pair-name")
    page.keyboard.press("m")
    page.click("#qty-mode-quote")
    page.wait_for_selector("#qty-label:has-text('Spend (USDT)')")
    page.fill("#ticket-qty", "100")
    # The total is the amount itself, with the quantity it buys at the last price.
    page.wait_for_selector("#ticket-total:has-text('100.00 USDT (≈ 0.')")
    page.click("#place-btn")
    page.wait_for_selector("#ticket-message:has-text('BUY 100 USDT of BTCUSDT')")
    page.wait_for_selector("#ticket-message.ok:has-text('filled at')", timeout=FILL_TIMEOUT_MS)
    page.wait_for_selector("#orders-table .status-filled", timeout=FILL_TIMEOUT_MS)
    # What it bought is worth the 100 USDT spent (the exchange fixes the quantity).
    page.click("#tab-trades")
    page.wait_for_selector("#trades-table .ag-row")
    spent = sum(Decimal(t.replace(",", "")) for t in page.eval_on_selector_all(
        "#trades-table .ag-row [col-id=total]", "cells => cells.map(c => c.textContent)"))
    assert Decimal("99") <= spent <= Decimal("100"), spent
    screenshot(page, "trade-spend-amount")


def test_spend_mode_checks_the_amount_at_the_field(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    page.click("#qty-mode-quote")
    page.fill("#ticket-qty", "0")
    page.click("#place-btn")
    page.wait_for_selector("#qty-error:has-text('greater than zero, like 100')")
    page.fill("#ticket-qty", "1")  # under the symbol's minimum notional: the API says so
    page.click("#place-btn")
    page.wait_for_function(
        "() => document.querySelector('#qty-error').textContent.length > 0"
        " && !document.querySelector('#qty-error').textContent.includes('like 100')")
    assert "JSON" not in page.inner_text("#qty-error")
    # A LIMIT ticket's amount is a quantity: Spend is for MARKET orders only.
    page.click("#type-limit")
    page.wait_for_selector("#qty-label:has-text('Quantity')")
    assert page.is_disabled("#qty-mode-quote")


def test_the_ticket_shows_the_expected_fee_before_placing(page: Any, urls: Urls,
                                                          request: pytest.FixtureRequest) -> None:
    if os.environ.get("TRADELEDGER_BROWSER_DASHBOARD_URL"):
        pytest.skip("sets the commission on the test's own paper exchange")
    exchange = paper_exchange_url(request.getfixturevalue("running_system"))
    admin_post(exchange, "/admin/commission", {"rate": "0.001"})
    try:
        # A new account's first balance snapshot carries the rates.
        register(page, urls)
        wait_chart(page, "BTCUSDT")
        page.click("#pair-name")
        page.keyboard.press("m")
        page.fill("#ticket-qty", "0.002")
        # MARKET pays the taker rate, in the base asset a buy receives.
        page.wait_for_selector("#ticket-fee:has-text('0.000002 BTC')", timeout=20_000)
        assert "at 0.1%" in page.inner_text("#ticket-fee")
        page.keyboard.press("Escape")
        page.click("#side-sell")
        page.wait_for_selector("#ticket-fee:has-text('USDT at 0.1%')")
        total = Decimal(page.inner_text("#ticket-total").split()[1])
        fee = Decimal(page.inner_text("#ticket-fee").split()[1])
        assert abs(fee - total * Decimal("0.001")) <= Decimal("0.0001"), (fee, total)
    finally:
        admin_post(exchange, "/admin/commission", {"rate": "0"})


def test_one_click_close_asks_then_sells_the_position(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    page.click("#close-position")
    page.wait_for_selector("#ticket-message:has-text('no open BTCUSDT position')")
    place(page, "0.002")
    page.wait_for_selector("#ticket-message.ok:has-text('filled')", timeout=FILL_TIMEOUT_MS)
    page.click("#tab-positions")
    page.wait_for_selector("#positions-table .ag-row[row-id=BTCUSDT]")
    page.click("#close-position")
    page.wait_for_selector("#close-confirm-box:has-text('SELL 0.002 at market')")
    page.click("#close-no")
    page.wait_for_selector("#close-confirm-box", state="hidden")
    page.click("#close-position")
    page.click("#close-yes")
    page.wait_for_selector("#ticket-message.ok:has-text('SELL 0.002 BTCUSDT (close) filled')",
                           timeout=FILL_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const c = document.querySelector("
        "'#positions-table .ag-row[row-id=BTCUSDT] [col-id=size]');"
        " return !c || parseFloat(c.textContent) === 0; }", timeout=FILL_TIMEOUT_MS)
    page.click("#tab-orders")
    page.wait_for_function(
        "() => document.querySelectorAll('#orders-table .status-filled').length === 2")


def _at(page: Any, symbol: str, factor: str) -> str:
    """The last price times `factor`, on the symbol's tick."""
    last = Decimal(market_price(page))
    tick = Decimal(tick_size(page, symbol))
    return str((last * Decimal(factor)).quantize(tick, rounding=ROUND_DOWN))


def _wait_cleared(page: Any, selector: str) -> None:
    page.wait_for_function("(s) => document.querySelector(s).textContent === ''", arg=selector)


def test_a_stop_limit_waits_for_its_stop_then_triggers(page: Any, urls: Urls,
                                                       request: pytest.FixtureRequest) -> None:
    if os.environ.get("TRADELEDGER_BROWSER_DASHBOARD_URL"):
        pytest.skip("moves the price on the test's own paper exchange")
    exchange = paper_exchange_url(request.getfixturevalue("running_system"))
    register(page, urls)
    page.goto(urls.dashboard + "/trade/BNBUSDT")
    wait_chart(page, "BNBUSDT")
    last = _at(page, "BNBUSDT", "1")
    admin_post(exchange, "/admin/price", {"symbol": "BNBUSDT", "price": last, "freeze": True})
    try:
        page.click("#type-stop")
        page.wait_for_selector("#stop-field", state="visible")
        page.fill("#ticket-qty", "0.05")
        page.fill("#ticket-price", _at(page, "BNBUSDT", "1.02"))
        page.click("#place-btn")
        page.wait_for_selector("#stop-error:has-text('Enter a stop price.')")
        # Off the tick: the API's refusal is shown at the stop field, not as a 500 or JSON.
        page.fill("#ticket-stop", last + "1")
        page.click("#place-btn")
        page.wait_for_function("() => document.querySelector('#stop-error').textContent"
                               " && !document.querySelector('#stop-error').textContent"
                               ".includes('Enter a stop')")
        assert "JSON" not in page.inner_text("#stop-error")
        # A BUY stop above the market: a breakout buy (STOP_LOSS_LIMIT), resting NEW.
        stop = _at(page, "BNBUSDT", "1.01")
        page.fill("#ticket-stop", stop)
        page.click("#place-btn")
        _wait_cleared(page, "#stop-error")
        page.wait_for_selector("#ticket-message:has-text('waits for its stop at')",
                               timeout=FILL_TIMEOUT_MS)
        row = page.locator("#orders-table .ag-row", has_text="STOP_LOSS_LIMIT").first
        row.locator(".status-new").wait_for(timeout=FILL_TIMEOUT_MS)
        assert Decimal(row.locator("[col-id=stop]").inner_text().replace(",", "")) == \
            Decimal(stop)
        # The chart draws the trigger as a "stop" line while it has not triggered.
        page.wait_for_function(
            "() => (document.querySelector('#price-chart .js-plotly-plot').layout.annotations"
            " || []).some(a => a.text.includes(' stop '))")
        screenshot(page, "trade-stop-limit")
        # The exchange's price reaches the stop: the order becomes a limit above the market
        # and fills.
        admin_post(exchange, "/admin/price",
                   {"symbol": "BNBUSDT", "price": _at(page, "BNBUSDT", "1.015"), "freeze": True})
        page.wait_for_selector("#ticket-message.ok:has-text('filled')", timeout=FILL_TIMEOUT_MS)
        row.locator(".status-filled").wait_for(timeout=FILL_TIMEOUT_MS)
        assert "triggered" in row.locator("[col-id=stop]").inner_text()
    finally:
        admin_post(exchange, "/admin/price", {"symbol": "BNBUSDT", "price": last,
                                              "freeze": False})


def test_attach_exit_places_an_oco_whose_legs_show_and_cancel_together(page: Any,
                                                                       urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    page.click("#exit-toggle")
    page.wait_for_selector("#exit-box", state="visible")
    page.click("#exit-place")
    page.wait_for_selector("#qty-error:has-text('open a position first')")
    page.wait_for_selector("#exit-tp-error:has-text('Enter a take-profit price.')")
    place(page, "0.002")
    page.wait_for_selector("#ticket-message.ok:has-text('filled')", timeout=FILL_TIMEOUT_MS)
    take, stop = _at(page, "BTCUSDT", "1.05"), _at(page, "BTCUSDT", "0.95")
    page.fill("#exit-tp", stop)  # swapped: said at the field before anything is sent
    page.fill("#exit-sl", take)
    page.click("#exit-place")
    page.wait_for_selector("#exit-tp-error:has-text('above the stop-loss')")
    page.fill("#exit-tp", take)
    page.fill("#exit-sl", stop)
    page.click("#exit-place")
    _wait_cleared(page, "#exit-tp-error")
    # The message follows both legs of the list.
    page.wait_for_selector("#ticket-message.ok:has-text('Exit SELL 0.002 BTCUSDT on the book')",
                           timeout=FILL_TIMEOUT_MS)
    assert "take profit" in page.inner_text("#ticket-message")
    tp = page.locator("#orders-table .ag-row", has_text="LIMIT_MAKER (OCO)").first
    sl = page.locator("#orders-table .ag-row", has_text="STOP_LOSS_LIMIT (OCO)").first
    tp.locator(".status-new").wait_for(timeout=FILL_TIMEOUT_MS)
    sl.locator(".status-new").wait_for(timeout=FILL_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const a = document.querySelector('#price-chart .js-plotly-plot').layout"
        ".annotations || []; return a.some(x => x.text.startsWith('TP '))"
        " && a.some(x => x.text.startsWith('SL ')); }")
    screenshot(page, "trade-oco-exit")
    # Cancel on one leg cancels the list: both legs end.
    tp.locator(".cancel-btn").click()
    page.wait_for_selector("#ticket-message:has-text('Exit SELL 0.002 BTCUSDT canceled')",
                           timeout=FILL_TIMEOUT_MS)
    for leg in (tp, sl):
        leg.locator(".status-canceled, .status-expired").wait_for(timeout=FILL_TIMEOUT_MS)
