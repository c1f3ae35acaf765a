"""Headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against a whole system.

The system comes from the `running_system` fixture (`tradeledger up` in a temp dir). To drive
an already running deployment instead, set TRADELEDGER_BROWSER_DASHBOARD_URL and
TRADELEDGER_BROWSER_API_URL.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TRADELEDGER_CHROMIUM", "/usr/bin/chromium")
# Screenshots go to a temporary folder; `scripts/refresh-screenshots` points this at
# docs/screenshots to refresh the README's pictures.
SCREENSHOTS = Path(os.environ.get("TRADELEDGER_SCREENSHOTS_DIR")
                   or Path(tempfile.gettempdir()) / "tradeledger-screenshots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Urls:
    """Where the dashboard and the API answer."""

    dashboard: str
    api: str


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of one browser context."""

    errors: list[str] = field(default_factory=list)
    # Chromium logs every 4xx/5xx response as a console error; a test that provokes one on
    # purpose (a validation message) lists its status here.
    allowed_statuses: set[int] = field(default_factory=set)

    def unexpected(self) -> list[str]:
        out = []
        for text in self.errors:
            m = re.search(r"status of (\d{3})", text)
            if m and int(m.group(1)) in self.allowed_statuses:
                continue
            out.append(text)
        return out


@pytest.fixture(scope="session")
def running_system() -> Iterator[Any]:
    """One `tradeledger up` for the browser tests, in a folder other users can enter: as
    root, the embedded Postgres runs as its own user and cannot enter pytest's 0700 temp
    root."""
    from adapters.platform.launcher import start_system, stop_system

    folder = Path(tempfile.mkdtemp(prefix="tradeledger-browser-"))
    folder.chmod(0o711)
    system = start_system(folder / "system")
    try:
        yield system
    finally:
        stop_system(system)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def urls(request: pytest.FixtureRequest) -> Urls:
    dashboard = os.environ.get("TRADELEDGER_BROWSER_DASHBOARD_URL")
    api = os.environ.get("TRADELEDGER_BROWSER_API_URL")
    if dashboard and api:
        return Urls(dashboard.rstrip("/"), api.rstrip("/"))
    system = request.getfixturevalue("running_system")
    return Urls(system.dashboard_url, system.api_url)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests. Package scope: Playwright's sync API keeps an
    event loop running while it is open, which would break asyncio.run() in later tests."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def context(browser: Any, console: ConsoleLog) -> Iterator[Any]:
    """A fresh browser profile (own localStorage) that records console errors."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)

    def watch(page: Any) -> None:
        page.on("console", lambda m: console.errors.append(f"{page.url}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: console.errors.append(f"{page.url}: uncaught {e}"))

    ctx.on("page", watch)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, console: ConsoleLog) -> Iterator[Any]:
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    assert console.unexpected() == [], "browser console errors"


def new_email() -> str:
    return f"trader-{uuid.uuid4().hex[:10]}@example.com"


def register(page: Any, urls: Urls, email: str | None = None) -> str:
    """Register through the UI and land on the trade page; return the email."""
    email = email or new_email()
    page.goto(urls.dashboard + "/register")
    page.fill("#reg-email", email)
    page.fill("#reg-password", PASSWORD)
    page.click("#register-btn")
    page.wait_for_url(re.compile(r".*/trade/[A-Z0-9]+$"))
    wait_live(page)
    return email


# A component's props as the Dash renderer holds them (a store's data, a stream's status).
PROPS = """(id) => { try { const c = window.dash_component_api.getLayout(id);
    return c && c.props ? c.props : null; } catch (e) { return null; } }"""


def market_price(page: Any) -> str:
    """The price of the symbol on screen, as the ticket reads it (the market store)."""
    price: str = page.evaluate(f"() => (({PROPS})('market-store') || {{}}).data.price")
    return price


def tick_size(page: Any, symbol: str) -> str:
    """A symbol's tick size from the symbols store (the API's rules)."""
    tick: str | None = page.evaluate(
        f"(s) => ((({PROPS})('symbols-store') || {{}}).data || {{}})[s]?.tickSize", symbol)
    return tick or "0.01"


def wait_live(page: Any) -> None:
    """Wait for the user stream's status dot to turn green."""
    page.wait_for_selector("#live-status.live", timeout=20_000)


def wait_chart(page: Any, symbol: str, interval_ms: int | None = None) -> dict[str, Any]:
    """Wait until the chart shows candles of `symbol` (spaced `interval_ms` apart)."""
    page.wait_for_function(
        """([symbol, step]) => {
            const gd = document.querySelector('#price-chart .js-plotly-plot');
            if (!gd || !gd.data || !gd.data.length) return false;
            const t = gd.data[0];
            if (t.type !== 'candlestick' || t.name !== symbol || t.x.length < 3) return false;
            // The price the ticket works with is known once the chart shows (30-market.js).
            const market = window.dash_component_api.getLayout('market-store');
            if (!market || !market.props.data || !market.props.data.price) return false;
            return step === null || (t.x[t.x.length - 1] - t.x[t.x.length - 2]) === step;
        }""",
        arg=[symbol, interval_ms], timeout=20_000)
    info: dict[str, Any] = page.evaluate(
        "() => { const t = document.querySelector('#price-chart .js-plotly-plot').data[0];"
        " return {n: t.x.length, last: t.x[t.x.length - 1], close: t.close[t.close.length - 1]}; }")
    return info


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
