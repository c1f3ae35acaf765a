"""The audit page: an order's event timeline, its state at each version (time travel through
`?asOf=`), an integrity check of the trail, and export as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import dash
from dash import Input, Output, State, callback, ctx, html

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, token_of

EVENT_CLASS = {
    "OrderPlaced": "ev-placed", "OrderSubmitted": "ev-submitted", "OrderAccepted": "ev-accepted",
    "OrderSendRefused": "ev-submitted", "OrderOutcomeUnknown": "ev-submitted",
    "OrderFilled": "ev-filled", "OrderRejected": "ev-rejected", "OrderCanceled": "ev-canceled",
    "OrderCancelRequested": "ev-cancel", "OrderCancelRejected": "ev-rejected",
    "OrderExpired": "ev-canceled",
}


def order_label(order: dict[str, Any]) -> str:
    """How an order reads in the picker."""
    created = str(order.get("createdAt", ""))[:19].replace("T", " ")
    price = f" @ {order['price']}" if order.get("price") else ""
    return (f"{created}  {order.get('side')} {order.get('quantity')} {order.get('symbol')}"
            f"{price}  {order.get('status')}")


def check_trail(events: list[dict[str, Any]]) -> tuple[bool, str]:
    """Check what the trail itself can show: versions 1..n without gaps, time never going
    back, the first event an OrderPlaced."""
    if not events:
        return False, "no events"
    versions = [int(e["version"]) for e in events]
    if versions != list(range(1, len(events) + 1)):
        return False, f"versions are not contiguous: {versions}"
    times = [str(e.get("time")) for e in events]
    if times != sorted(times):
        return False, "event times go backwards"
    if events[0].get("type") != "OrderPlaced":
        return False, f"the trail starts with {events[0].get('type')}, not OrderPlaced"
    return True, f"{len(events)} events, versions 1..{len(events)} contiguous, times in order"


def timeline(events: list[dict[str, Any]], current: int | None = None) -> html.Ol:
    """The trail as an ordered list, the selected version highlighted."""
    items = []
    for e in events:
        payload = {k: v for k, v in (e.get("payload") or {}).items()
                   if k not in ("account_id", "actor")}
        detail = ", ".join(f"{k}={v}" for k, v in payload.items() if v not in (None, ""))
        cls = "tl-item " + EVENT_CLASS.get(str(e.get("type")), "")
        if current is not None and int(e["version"]) == current:
            cls += " current"
        items.append(html.Li(className=cls, id=ids.audit_event(e['version']), children=[
            html.Div(className="tl-head", children=[
                html.Span(f"v{e['version']}", className="tl-version"),
                html.Strong(str(e.get("type"))),
                html.Span(str(e.get("time", ""))[:23].replace("T", " "), className="muted"),
                html.Span(f"by {e.get('actor')}" if e.get("actor") else "", className="muted"),
            ]),
            html.Div(detail, className="tl-detail mono"),
        ]))
    return html.Ol(items, className="timeline")


def export_json(order: dict[str, Any] | None, events: list[dict[str, Any]]) -> str:
    return json.dumps({"order": order, "events": events}, indent=2, default=str)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def export_csv(events: list[dict[str, Any]]) -> str:
    """One row per event, one column per payload field (a spreadsheet can filter them)."""
    keys = sorted({k for e in events for k in (e.get("payload") or {})})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["version", "type", "time", "actor", *keys])
    for e in events:
        payload = e.get("payload") or {}
        writer.writerow([e.get("version"), e.get("type"), e.get("time"), e.get("actor"),
                         *(_cell(payload.get(k)) for k in keys)])
    return buffer.getvalue()


def state_table(state: dict[str, Any]) -> html.Table:
    """The order at one version as a two-column table (field, value)."""
    rows = []
    for key, value in state.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
        else:
            text = "—" if value is None else str(value)
        rows.append(html.Tr([html.Th(key), html.Td(text, className="mono",
                                                   **{"data-field": key})]))
    return html.Table(html.Tbody(rows), className="data-table state-table")


def valid_order_id(value: object) -> str | None:
    """The canonical form of an order id from the browser, or None: the value goes into
    API paths, so "../account" or "x?asOf=1" must never reach one."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url
    _api_url = api_url.rstrip("/")


@callback(Output(ids.AUDIT_ORDER, "options"), Output(ids.AUDIT_ORDER, "value"),
          Input(ids.ROUTE, "data"), Input(ids.mounted("audit"), "data"),
          State(ids.AUTH, "data"), State(ids.AUDIT_ORDER, "value"))
def pick_orders(route: dict[str, Any] | None, _mounted: Any, auth: Any,
                chosen: str | None) -> tuple[Any, Any]:
    """Offer the account's orders; the one in the URL, or the newest, is chosen."""
    if not route or route.get("page") != "audit" or not token_of(auth):
        raise dash.exceptions.PreventUpdate
    try:
        orders = ApiClient(_api_url, token_of(auth)).get("/api/trading/orders",
                                                        {"limit": 200})
    except ApiClientError:
        return [], dash.no_update
    options = [{"label": order_label(o), "value": o["orderId"]} for o in orders]
    wanted = route.get("orderId") or chosen or (orders[0]["orderId"] if orders else None)
    return options, wanted


@callback(Output(ids.AUDIT_DATA, "data"), Output(ids.AUDIT_TIMELINE, "children"),
          Output(ids.AUDIT_VERSION, "max"), Output(ids.AUDIT_VERSION, "marks"),
          Output(ids.AUDIT_VERSION, "value"), Output(ids.AUDIT_CHAIN, "children"),
          Output(ids.AUDIT_ERROR, "children"),
          Input(ids.AUDIT_ORDER, "value"), Input(ids.AUDIT_LOAD, "n_clicks"),
          State(ids.AUTH, "data"))
def load_trail(order_id: str | None, _n: int | None, auth: Any) -> tuple[Any, ...]:
    """Load an order's events, check the trail and the hash chain."""
    if not order_id or not token_of(auth):
        raise dash.exceptions.PreventUpdate
    if valid_order_id(order_id) is None:
        return (None, [], 1, {}, 1, "", "That is not an order id.")
    order_id = valid_order_id(order_id)
    client = ApiClient(_api_url, token_of(auth))
    try:
        events = client.get(f"/api/trading/orders/{order_id}/events")
        order = client.get(f"/api/trading/orders/{order_id}")
    except ApiClientError as exc:
        return (None, [], 1, {}, 1, "", f"Cannot load the order: {exc.message}")
    ok, text = check_trail(events)
    try:
        verified = client.get("/api/audit/verify")
        chain_ok = bool(verified.get("ok"))
        chain_text = str(verified.get("message", ""))
    except ApiClientError as exc:
        chain_ok, chain_text = False, f"could not verify: {exc.message}"
    chain = html.Div(className="chain " + ("ok" if ok and chain_ok else "bad"), children=[
        html.Strong("Trail check: " + ("consistent" if ok else "FAILED")),
        html.Span(f" — {text}. "),
        html.Strong("Hash chain: " + ("verified" if chain_ok else "NOT VERIFIED")),
        html.Span(f" — {chain_text}", className="muted"),
    ])
    last = len(events) or 1
    marks = {int(e["version"]): {"label": f"v{e['version']}"} for e in events}
    data = {"orderId": order_id, "events": events, "order": order}
    return data, timeline(events, last), last, marks, last, chain, ""


@callback(Output(ids.AUDIT_STATE, "children"),
          Output(ids.AUDIT_TIMELINE, "children", allow_duplicate=True),
          Input(ids.AUDIT_VERSION, "value"), State(ids.AUDIT_DATA, "data"),
          State(ids.AUTH, "data"), prevent_initial_call=True)
def state_at(version: int | None, data: dict[str, Any] | None, auth: Any) -> tuple[Any, Any]:
    """The order as it was at `version` (time travel through ?asOf=)."""
    if not data or not version or not token_of(auth) \
            or valid_order_id(data.get("orderId")) is None:
        raise dash.exceptions.PreventUpdate
    try:
        state = ApiClient(_api_url, token_of(auth)).get(
            f"/api/trading/orders/{data['orderId']}", {"asOf": str(version)})
    except ApiClientError as exc:
        return f"cannot read version {version}: {exc.message}", dash.no_update
    return state_table(state), timeline(data["events"], int(version))


@callback(Output(ids.URL_QUIET, "pathname"),
          Input(ids.AUDIT_ORDER, "value"), State(ids.ROUTE, "data"),
          prevent_initial_call=True)
def order_in_url(order_id: str | None, route: dict[str, Any] | None) -> str:
    """The audited order goes into the URL, so it can be shared and reloaded; quietly, or
    Dash's page container would draw the page again for the new path."""
    if (not order_id or not route or route.get("page") != "audit"
            or route.get("orderId") == order_id or valid_order_id(order_id) is None):
        raise dash.exceptions.PreventUpdate
    return f"/audit/{order_id}"


@callback(Output(ids.AUDIT_DOWNLOAD, "data"),
          Input(ids.AUDIT_EXPORT_JSON, "n_clicks"), Input(ids.AUDIT_EXPORT_CSV, "n_clicks"),
          State(ids.AUDIT_DATA, "data"), prevent_initial_call=True)
def export(_j: int | None, _c: int | None, data: dict[str, Any] | None) -> Any:
    """Download the trail as JSON or CSV."""
    if not data or valid_order_id(data.get("orderId")) is None:
        raise dash.exceptions.PreventUpdate
    name = f"order-{valid_order_id(data['orderId'])}"
    if ctx.triggered_id == ids.AUDIT_EXPORT_CSV:
        return {"content": export_csv(data["events"]), "filename": f"{name}.csv",
                "type": "text/csv"}
    return {"content": export_json(data.get("order"), data["events"]),
            "filename": f"{name}.json", "type": "application/json"}
