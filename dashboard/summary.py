"""The wallet and PnL card: equity, PnL today and in total, fees, win rate.

A server callback reads `GET /api/account/summary` with the browser's token when the trader
signs in, lands on the trade page, presses Refresh, and every REFRESH_MS while the trade page
is open (marks move, so equity and unrealized PnL do too).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, token_of

PANEL = "summary-panel"
BODY = "summary-body"
ERROR = "summary-error"
REFRESH = "summary-refresh"
TICK = "summary-tick"
REFRESH_MS = 5_000
NONE = "—"

_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callback where the server reaches the API."""
    global _api_url
    _api_url = api_url.rstrip("/")


def money(value: Any, signed: bool = False) -> str:
    """A quote amount to two decimals with thousands separators; "—" when unknown."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return NONE
    if value is None or not number.is_finite():
        return NONE
    text = f"{number.quantize(Decimal('0.01')):,}"
    return ("+" + text) if signed and number > 0 else text


def tone(value: Any) -> str:
    """"up" for a gain, "down" for a loss, "" otherwise."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    return "up" if number > 0 else "down" if number < 0 else ""


def _pair(label: str, today: Any, total: Any, sign: bool = True) -> html.Div:
    def cell(value: Any, which: str) -> html.Span:
        return html.Span(money(value, sign),
                         className=f"mono summary-{which} {tone(value) if sign else ''}".strip())

    return html.Div(className="summary-row", children=[
        html.Span(label, className="muted"), cell(today, "today"), cell(total, "total")])


def card(summary: dict[str, Any]) -> list[Any]:
    """The card's rows from the API's summary."""
    quote = summary.get("quoteAsset") or "USDT"
    rate = summary.get("winRate")
    try:
        win = f"{Decimal(str(rate)) * 100:.1f} %" if rate is not None else NONE
    except (InvalidOperation, ValueError):
        win = NONE
    closed = int(summary.get("wins") or 0) + int(summary.get("losses") or 0)
    rows: list[Any] = [
        html.Div(className="summary-equity", children=[
            html.Span("Equity", className="muted"),
            html.Span(f"{money(summary.get('equity'))} {quote}", id="summary-equity",
                      className="mono"),
        ]),
        html.Div(className="summary-row summary-headings muted", children=[
            html.Span(""), html.Span("Today"), html.Span("Total"),
        ]),
    ]
    for label, key, signed in (("Realized PnL", "realizedPnl", True),
                               ("Unrealized PnL", "unrealizedPnl", True),
                               ("Fees", "fees", False), ("Net PnL", "netPnl", True)):
        figures = summary.get(key) or {}
        rows.append(_pair(label, figures.get("today"), figures.get("total"), signed))
    rows.append(html.Div(className="summary-row", children=[
        html.Span("Win rate", className="muted"),
        html.Span(win, id="summary-winrate", className="mono"),
        html.Span(f"{closed} closing fills", className="muted"),
    ]))
    unpriced = summary.get("unpricedAssets") or []
    if unpriced:
        rows.append(html.P(f"Not in equity (no {quote} price): {', '.join(unpriced)}",
                           className="field-hint"))
    return rows


def layout() -> html.Div:
    """The card, refreshed by its own timer while the trade page is open."""
    return html.Div(className="panel summary", id=PANEL, children=[
        html.Div(className="summary-title", children=[
            html.H4("Wallet & PnL"),
            html.Button("↻", id=REFRESH, className="btn tiny", n_clicks=0,
                        title="Refresh the summary"),
        ]),
        html.Div(id=BODY, className="summary-body",
                 children=html.Span("sign in to see your wallet", className="muted")),
        html.Div(id=ERROR, className="form-error"),
        dcc.Interval(id=TICK, interval=REFRESH_MS),
    ])


@callback(Output(BODY, "children"), Output(ERROR, "children"),
          Input(ids.AUTH, "data"), Input(REFRESH, "n_clicks"), Input(TICK, "n_intervals"),
          Input(ids.PAGE_SHOWN, "data"), State(ids.AUTH, "data"))
def show_summary(_auth: Any, _clicks: Any, _ticks: Any, page: Any,
                 auth: Any) -> tuple[Any, Any]:
    """Read the summary from the API while the trade page is open."""
    if page != "trade":
        raise dash.exceptions.PreventUpdate
    token = token_of(auth)
    if not token:
        return html.Span("sign in to see your wallet", className="muted"), ""
    try:
        summary = ApiClient(_api_url, token).get("/api/account/summary")
    except ApiClientError as exc:
        return dash.no_update, f"Summary unavailable: {exc.message}"
    return card(summary), ""


# The card is about the account, not the symbol: it follows the page shown, not `route`, so
# a symbol switch does not read it again (each read held a server thread and an API call).
# The timer runs only while the trade page is open: elsewhere the card is hidden anyway.
clientside_callback(
    "function (page) { return page !== 'trade'; }", Output(TICK, "disabled"),
    Input(ids.PAGE_SHOWN, "data"),
)
