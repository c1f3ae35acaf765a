"""The desk's speed, measured in the browser and written to the tests' log (never asserted:
performance figures are not timed assertions). Issue 18's Proof: click -> FILLED in the
table, symbol switch, timeframe switch, two-tab agreement, API-kill recovery."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, ConsoleLog, Urls, register, wait_chart, wait_live
from tests.browser.test_dashboard import (
    FILL_TIMEOUT_MS,
    fill_ticket,
    place_only,
    price_below_market,
)

pytestmark = pytest.mark.browser

TIMINGS_LOG = Path(os.environ.get("TRADELEDGER_TIMINGS_LOG")
                   or SCREENSHOTS.parent / "tradeledger-browser-timings.log")


def record(name: str, seconds: float) -> None:
    """Append one measurement to the timings log and print it (pytest -s shows it)."""
    line = json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "timing": name, "seconds": round(seconds, 3)})
    TIMINGS_LOG.parent.mkdir(parents=True, exist_ok=True)
    with TIMINGS_LOG.open("a") as log:
        log.write(line + "\n")
    print(line)


def test_time_click_to_filled_and_switches(page: Any, urls: Urls) -> None:
    register(page, urls)
    wait_chart(page, "BTCUSDT", 60_000)
    for attempt in range(3):
        filled_before = page.locator("#orders-table .status-filled").count()
        fill_ticket(page, "0.001")
        start = time.monotonic()
        page.click("#place-btn")
        page.wait_for_function(
            "(n) => document.querySelectorAll('#orders-table .status-filled').length > n",
            arg=filled_before, timeout=FILL_TIMEOUT_MS, polling="raf")
        record(f"click_to_filled#{attempt + 1}", time.monotonic() - start)
    for symbol in ("ETHUSDT", "BTCUSDT"):
        page.click("#symbol-select")
        start = time.monotonic()
        page.get_by_role("option", name=symbol).click()
        wait_chart(page, symbol, 60_000)
        record(f"symbol_switch_{symbol}", time.monotonic() - start)
    for tf, step in (("1h", 3_600_000), ("1m", 60_000)):
        start = time.monotonic()
        page.click(f"#tf-{tf}")
        wait_chart(page, "BTCUSDT", step)
        record(f"timeframe_switch_{tf}", time.monotonic() - start)


def test_time_two_tabs_agree(context: Any, page: Any, urls: Urls) -> None:
    register(page, urls)
    other = context.new_page()
    other.goto(urls.dashboard + "/trade/BTCUSDT")
    wait_live(other)
    wait_chart(page, "BTCUSDT")
    price = price_below_market(page, "0.7")
    place_only(page, "0.001", price=price)
    page.locator("#orders-table .ag-row", has_text=price[:5]).first.wait_for(
        timeout=FILL_TIMEOUT_MS)
    start = time.monotonic()
    other.locator("#orders-table .ag-row", has_text=price[:5]).first.wait_for(
        timeout=FILL_TIMEOUT_MS)
    record("two_tabs_agree", time.monotonic() - start)


def api_child(pid: int) -> Any:
    """The `tradeledger up` child process that runs the API."""
    psutil = pytest.importorskip("psutil")
    for child in psutil.Process(pid).children():
        argv = child.cmdline()
        if "adapters.cli" in argv and argv[argv.index("adapters.cli") + 1:][:1] == ["api"]:
            return child
    return None


def test_time_api_kill_recovery(page: Any, urls: Urls, console: ConsoleLog,
                                request: pytest.FixtureRequest) -> None:
    if os.environ.get("TRADELEDGER_BROWSER_DASHBOARD_URL"):
        pytest.skip("needs the test's own `tradeledger up` to kill its API")
    system = request.getfixturevalue("running_system")
    register(page, urls)
    wait_chart(page, "BTCUSDT")
    child = api_child(system.process.pid)
    assert child is not None, "no API child process"
    start = time.monotonic()
    os.kill(child.pid, signal.SIGKILL)
    page.wait_for_selector("#live-status:not(.live)", timeout=30_000)
    record("api_kill_noticed", time.monotonic() - start)
    wait_live(page)
    page.wait_for_selector("#live-status.live", timeout=90_000)
    record("api_kill_recovered", time.monotonic() - start)
    console.errors.clear()  # refused connections while the API was down are expected
    # No update lost: an order placed right after recovery fills in the table.
    price = price_below_market(page, "0.7")
    place_only(page, "0.001", price=price)
    page.locator("#orders-table .ag-row", has_text=price[:5]).first.wait_for(
        timeout=FILL_TIMEOUT_MS)
    assert re.search(r"cannot reach", page.inner_text("#ticket-message")) is None
