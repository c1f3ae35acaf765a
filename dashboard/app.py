"""The Dash app factory. The browser talks to the API directly (CORS + bearer token, SSE with
stream tokens); analytics and audit are drawn server-side from the same API over httpx."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
import flask
from dash import ClientsideFunction, Input, Output, State

from dashboard import (
    account_view,
    alerts_view,
    analytics_view,
    audit_view,
    chart,
    grids,
    history_view,
    ids,
    live_account,
    order_book,
    position_close,
    routing,  # noqa: F401 - imported for its @callbacks (pure routing, no API)
    summary,
    ticket,
    toasts,  # noqa: F401 - imported for its @callbacks (toasts, the alert toast; no API)
)
from dashboard.layout import TIMEFRAMES, serve_layout
from dashboard.pages import PAGE_MODULES

ASSETS = Path(__file__).parent / "assets"
SLOW_REQUEST_SECONDS = 2.0
log = logging.getLogger(__name__)

_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
{%metas%}
<title>{%title%}</title>
{%favicon%}
{%css%}
<script>window.TL_CONFIG = __CONFIG__;</script>
</head>
<body>
{%app_entry%}
<footer>{%config%}{%scripts%}{%renderer%}</footer>
</body>
</html>"""


def _config_script(public_api_url: str) -> str:
    # "</" cannot end the script tag early once escaped.
    return json.dumps({"apiUrl": public_api_url.rstrip("/")}).replace("</", "<\\/")


def create_dash_app(api_url: str, public_api_url: str | None = None) -> dash.Dash:
    """Build the dashboard; `api_url` is used by the server, `public_api_url` by browsers."""
    browser_api = (public_api_url or api_url).rstrip("/")
    app = dash.Dash(
        __name__,
        title="TradeLedger",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        update_title=None,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        # Pages are imported below, once: Dash's own folder scan would execute them again
        # for every app and register their callbacks twice.
        use_pages=True, pages_folder="",
    )
    for name in PAGE_MODULES:  # dash.register_page needs the app to exist first
        importlib.import_module(f"dashboard.pages.{name}")
    app.index_string = _INDEX.replace("__CONFIG__", _config_script(browser_api))
    app.layout = lambda: serve_layout(browser_api)
    _register_clientside(app)
    # The views declare module-level @callbacks; they only need the API's URL.
    account_view.configure(api_url)
    alerts_view.configure(api_url)
    grids.configure(api_url)
    analytics_view.configure(api_url)
    history_view.configure(api_url)
    audit_view.configure(api_url)
    chart.configure(api_url)
    summary.configure(api_url)
    ticket.configure(api_url)
    position_close.configure(api_url)
    order_book.configure(api_url)
    live_account.configure(api_url)
    _send_csp(app, browser_api)
    return app


def content_security_policy(app: dash.Dash, browser_api: str) -> str:
    """A strict policy: scripts only from this origin plus the page's own inline scripts
    by hash (Dash's renderer boot and our config line), no eval, no plugins, no framing;
    the API is the one other origin the page may talk to."""
    config = _config_script(browser_api)
    ours = "'sha256-" + base64.b64encode(hashlib.sha256(
        f"window.TL_CONFIG = {config};".encode()).digest()).decode() + "'"
    hashes = " ".join([*app.csp_hashes(), ours])
    api = urlsplit(browser_api)
    api_origin = f"{api.scheme}://{api.netloc}" if api.scheme and api.netloc else ""
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' {hashes}",
        # Dash and Plotly set element styles from script; styles cannot run code.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        f"connect-src 'self' {api_origin}".rstrip(),
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ])


def _send_csp(app: dash.Dash, browser_api: str) -> None:
    """Send the policy (and its companions) with every response of the dashboard."""
    policy: list[str] = []

    @app.server.before_request
    def _start() -> None:
        flask.g.tl_started = time.monotonic()

    @app.server.after_request
    def _headers(response: Any) -> Any:
        # A page is drawn by a server callback (the page container): say when one is slow.
        took = time.monotonic() - flask.g.get("tl_started", time.monotonic())
        if took > SLOW_REQUEST_SECONDS:
            body = flask.request.get_json(silent=True) if flask.request.is_json else None
            log.warning("slow dashboard request: %s %s %.1f s (%s)", flask.request.method,
                        flask.request.path, took, (body or {}).get("output", "")[:120])
        if not policy:  # built on first use: the hashes need the registered callbacks
            policy.append(content_security_policy(app, browser_api))
        response.headers["Content-Security-Policy"] = policy[0]
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _cs(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="tl", function_name=name)


def _register_clientside(app: dash.Dash) -> None:
    """Wire the shell's clientside callbacks (assets/05-session.js, 40-ui.js); the pages and
    the views wire their own."""
    cb = app.clientside_callback
    cb(_cs("init"), Output(ids.BOOT, "data"), Input(ids.CONFIG, "data"))
    cb(_cs("symbolPicked"), Output(ids.URL, "pathname", allow_duplicate=True),
       Input("symbol-select", "value"), State(ids.ROUTE, "data"), prevent_initial_call=True)
    cb(
        _cs("chartSettings"), Output(ids.CHART_SETTINGS, "data"),
        [Input(f"tf-{v}", "n_clicks") for _, v in TIMEFRAMES]
        + [Input(ids.INDICATOR_TOGGLES, "value")],
        State(ids.CHART_SETTINGS, "data"),
    )
    cb(
        _cs("tradeView"),
        [Output("symbol-select", "value"), Output(ids.PAIR_NAME, "children")]
        + [Output(f"tf-{v}", "className") for _, v in TIMEFRAMES],
        Input(ids.ROUTE, "data"), Input(ids.CHART_SETTINGS, "data"),
    )
    cb(ClientsideFunction("session", "logout"), Output(ids.AUTH, "data", allow_duplicate=True),
       Input(ids.LOGOUT_BTN, "n_clicks"), State(ids.AUTH, "data"), prevent_initial_call=True)
    cb(ClientsideFunction("session", "keep"), Output(ids.AUTH, "data", allow_duplicate=True),
       Input(ids.SESSION_TICK, "n_intervals"), State(ids.AUTH, "data"), prevent_initial_call=True)
    cb(_cs("theme"), Output(ids.THEME_TOGGLE, "children"), Input(ids.THEME_TOGGLE, "n_clicks"))
    cb(_cs("orderRows"), Output(ids.ORDERS_GRID, "rowData"), Input(ids.SYMBOLS_STORE, "data"),
       State(ids.ORDERS_STORE, "data"))
