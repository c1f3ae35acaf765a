"""The Dash app factory. The browser talks to the API directly (CORS + bearer token, SSE with
stream tokens); analytics and audit are drawn server-side from the same API over httpx."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
from dash import ClientsideFunction, Input, Output, State

from dashboard import (
    account_view,
    alerts_view,
    analytics_view,
    audit_view,
    grids,
    indicators,  # noqa: F401 - imported for its @callback (pure computation, no API)
    position_close,
    ticket,
)
from dashboard.layout import NAV_PAGES, PAGES, TIMEFRAMES, serve_layout

ASSETS = Path(__file__).parent / "assets"

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
    )
    app.index_string = _INDEX.replace("__CONFIG__", _config_script(browser_api))
    app.layout = lambda: serve_layout(browser_api)
    _register_clientside(app)
    # The views declare module-level @callbacks; they only need the API's URL.
    account_view.configure(api_url)
    alerts_view.configure(api_url)
    grids.configure(api_url)
    analytics_view.configure(api_url)
    audit_view.configure(api_url)
    ticket.configure(api_url)
    position_close.configure(api_url)
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

    @app.server.after_request
    def _headers(response: Any) -> Any:
        if not policy:  # built on first use: the hashes need the registered callbacks
            policy.append(content_security_policy(app, browser_api))
        response.headers["Content-Security-Policy"] = policy[0]
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _cs(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="tl", function_name=name)


def _register_clientside(app: dash.Dash) -> None:
    """Wire the clientside callbacks defined in assets/40-ui.js."""
    cb = app.clientside_callback
    cb(_cs("init"), Output("boot", "data"), Input("config", "data"))
    cb(
        _cs("route"),
        [Output("route", "data"), Output("url", "pathname")]
        + [Output(f"page-{p}", "style") for p in PAGES]
        + [Output(f"nav-{p}", "className") for p in NAV_PAGES]
        + [Output("nav", "style"), Output("nav", "className"), Output("live-wrap", "style"),
           Output("menu-toggle", "style")],
        Input("url", "pathname"), Input("auth", "data"),
    )
    cb(_cs("menu"), Output("nav", "className", allow_duplicate=True),
       Input("menu-toggle", "n_clicks"), State("nav", "className"), prevent_initial_call=True)
    cb(_cs("session"), Output("user-email", "children"), Output("logout-btn", "style"),
       Input("auth", "data"))
    cb(_cs("symbolPicked"), Output("url", "pathname", allow_duplicate=True),
       Input("symbol-select", "value"), prevent_initial_call=True)
    cb(
        _cs("chartSettings"), Output("chart-settings", "data"),
        [Input(f"tf-{v}", "n_clicks") for _, v in TIMEFRAMES]
        + [Input("indicator-toggles", "value")],
        State("chart-settings", "data"),
    )
    cb(
        _cs("tradeView"),
        [Output("symbol-select", "value"), Output("pair-name", "children")]
        + [Output(f"tf-{v}", "className") for _, v in TIMEFRAMES],
        Input("route", "data"), Input("chart-settings", "data"),
    )
    cb(_cs("login"), Output("auth", "data", allow_duplicate=True),
       Output("login-error", "children"),
       Input("login-btn", "n_clicks"), Input("login-password", "n_submit"),
       State("login-email", "value"), State("login-password", "value"),
       prevent_initial_call=True)
    cb(_cs("register"), Output("auth", "data", allow_duplicate=True),
       Output("register-error", "children"),
       Input("register-btn", "n_clicks"), State("reg-email", "value"),
       State("reg-password", "value"), State("reg-api-key", "value"),
       State("reg-secret-key", "value"), prevent_initial_call=True)
    cb(_cs("logout"), Output("auth", "data", allow_duplicate=True),
       Input("logout-btn", "n_clicks"), prevent_initial_call=True)
    cb(_cs("theme"), Output("theme-toggle", "children"), Input("theme-toggle", "n_clicks"))
    cb(_cs("orderRows"), Output("orders-grid", "rowData"), Input("orders-store", "data"))
    cb(_cs("indicatorsIn"), Output("indicator-applied", "data"),
       Input("indicator-store", "data"), prevent_initial_call=True)
    cb(_cs("tradeRows"), Output("trades-grid", "rowData"), Input("trades-store", "data"))
    cb(_cs("positionRows"), Output("positions-grid", "rowData"),
       Input("positions-store", "data"))
