"""Price alerts as server callbacks on the API client: list, add, remove.

The alerts live on the server per account (`/api/alerts`); when one fires the user stream
carries an ALERT event, which dashboard/toasts.py turns into a toast and a bump of
`alerts-refresh`, so the list is read again.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, html

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, token_of
from dashboard.ticket import plain as decimal_text

_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url
    _api_url = api_url.rstrip("/")


def plain(value: Any) -> str:
    """A price as people write it: "96227.49000000" -> "96227.49"."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return decimal_text(number)


def alert_item(a: dict[str, Any]) -> html.Li:
    """One alert in the list, with its remove button."""
    arrow = "≥ " if a.get("direction") == "above" else "≤ "
    when = str(a.get("firedAt") or a.get("createdAt") or "")[11:19]
    status = (f"fired {when} at {plain(a.get('firedPrice'))}" if a.get("firedAt")
              else f"set {when}")
    return html.Li(className="alert-item" + (" fired" if a.get("firedAt") else ""), children=[
        html.Span(f"{a.get('symbol')} {arrow}{plain(a.get('price'))}"),
        html.Span(status, className="muted"),
        html.Button("\u00d7", id=ids.alert_remove(str(a.get("alertId"))),
                    className="btn tiny", title="Remove", n_clicks=0),
    ])


@callback(Output(ids.ALERT_LIST, "children"), Output(ids.ALERT_ERROR, "children"),
          Input(ids.ALERTS_REFRESH, "data"), Input(ids.AUTH, "data"))
def show_alerts(_refresh: Any, auth: Any) -> tuple[Any, Any]:
    """The account's alerts, read from the API."""
    if not token_of(auth):
        return [], ""
    try:
        alerts = ApiClient(_api_url, token_of(auth)).get("/api/alerts")
    except ApiClientError as exc:
        return dash.no_update, f"Alerts unavailable: {exc.message}"
    return [alert_item(a) for a in alerts], ""


@callback(Output(ids.ALERT_PRICE, "value"),
          Output(ids.ALERT_ERROR, "children", allow_duplicate=True),
          Output(ids.ALERTS_REFRESH, "data", allow_duplicate=True),
          Input(ids.ALERT_ADD, "n_clicks"), Input(ids.ALERT_PRICE, "n_submit"),
          State(ids.ALERT_PRICE, "value"), State(ids.ROUTE, "data"), State(ids.AUTH, "data"),
          prevent_initial_call=True)
def add_alert(_n: Any, _submit: Any, price: str | None, route: Any,
              auth: Any) -> tuple[Any, Any, Any]:
    """Store an alert on the server for the symbol on screen."""
    text = (price or "").strip()
    if not text:
        return dash.no_update, "Enter the price to watch for.", dash.no_update
    symbol = (route or {}).get("symbol") or "BTCUSDT"
    try:
        ApiClient(_api_url, token_of(auth)).post("/api/alerts",
                                                 {"symbol": symbol, "price": text})
    except ApiClientError as exc:
        message = exc.message
        if "positive number" in message or "greater than zero" in message:
            message = "Enter a price greater than zero, like 65000.5."
        return dash.no_update, message, dash.no_update
    return "", "", time.time()


@callback(Output(ids.ALERTS_REFRESH, "data", allow_duplicate=True),
          Output(ids.ALERT_ERROR, "children", allow_duplicate=True),
          Input({"type": ids.ALERT_REMOVE_TYPE, "id": ALL}, "n_clicks"), State(ids.AUTH, "data"),
          prevent_initial_call=True)
def remove_alert(clicks: list[int | None], auth: Any) -> tuple[Any, Any]:
    """Remove the alert whose remove button was clicked."""
    if not ctx.triggered_id or not any(clicks or []):
        raise dash.exceptions.PreventUpdate
    alert_id = str(ctx.triggered_id["id"])
    try:
        ApiClient(_api_url, token_of(auth)).delete(f"/api/alerts/{alert_id}")
    except ApiClientError as exc:
        return dash.no_update, exc.message
    return time.time(), ""
