"""The order book screen: a depth ladder with the spread, and the recent market trades.

Data flow: `route` (the trade page's symbol) -> `snapshot` (server) reads `/depth` and
`/trades` into SNAPSHOT_STORE. Live updates ride on the tab's market stream
(`MARKET_STREAM`, dashboard/chart.py), which asks for `channels=depth,trades` too (a stream
of its own would be a third long-lived connection per tab to the API host, and browsers
allow six per host); the API subscribes to the exchange's book and tape only while such a
stream is open. A clientside callback (`receive`, assets/60-order-book.js) merges the
snapshot and the stream's DEPTH and MARKET_TRADE events into BOOK_STORE; `render` fills the
rows in place.

A click on a price (a ladder level or a trade) sets PRICE_CLICK_STORE to
`{price, side ("bid" | "ask" | "trade"), symbol, n}` (`n` grows with each click, so clicking
the same price twice still changes the store). The order ticket reads it to fill its price.
"""

from __future__ import annotations

from typing import Any

from dash import (
    ALL,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
)
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api_client import SYMBOL_RE, ApiClient, ApiClientError

PANEL = "order-book-panel"
BOOK_STORE = "book-store"  # {symbol, book: {bids, asks, lastUpdateId}, trades: [...]}
SNAPSHOT_STORE = "book-snapshot"  # {symbol, book, trades}: REST, when the symbol changes
PRICE_CLICK_STORE = "book-price-click"  # {price, side, symbol, n}: read by the ticket
LADDER = "book-ladder"
SPREAD = "book-spread"
TRADES = "book-trades"
LEVELS = 10  # rows per side on screen (the stream carries 20; the JS fills as many as drawn)
TRADE_ROWS = 30


ROW = "book-row"  # the rows' pattern-matching ids: {"type": ROW, "slot": "ask-3"}


def _row(side: str, i: int) -> html.Div:
    return html.Div(id={"type": ROW, "slot": f"{side}-{i}"}, n_clicks=0,
                    className=f"book-row {side}", style={"visibility": "hidden"},
                    **{"data-book-side": side}, children=[
        html.Span(className="book-price"), html.Span(className="book-qty"),
        html.Span(className="book-total" + (" muted" if side == "trade" else "")),
    ])


def layout() -> html.Div:
    """The panel: the ladder (asks above, bids below, the spread between), then the trades.

    The rows are drawn once and filled in place by `render`: redrawn rows would be replaced
    under the pointer several times a second, and a click on them would get lost.
    """
    return html.Div(className="panel order-book", id=PANEL, children=[
        html.H4("Order book"),
        html.Div(className="book-head muted", children=[
            html.Span("Price"), html.Span("Amount"), html.Span("Total"),
        ]),
        html.Div(id=LADDER, className="book-ladder mono", children=[
            *[_row("ask", i) for i in range(LEVELS)],
            html.Div("connecting…", id=SPREAD, className="book-spread"),
            *[_row("bid", i) for i in range(LEVELS)],
        ]),
        html.H4("Market trades", className="book-trades-title"),
        html.Div(className="book-head muted", children=[
            html.Span("Price"), html.Span("Amount"), html.Span("Time"),
        ]),
        html.Div(id=TRADES, className="book-trades mono",
                 children=[_row("trade", i) for i in range(TRADE_ROWS)]),
        dcc.Store(id=BOOK_STORE),
        dcc.Store(id=SNAPSHOT_STORE),
        dcc.Store(id=PRICE_CLICK_STORE),
    ])


_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url
    _api_url = api_url.rstrip("/")


@callback(Output(SNAPSHOT_STORE, "data"), Input(ids.ROUTE, "data"),
          State(SNAPSHOT_STORE, "data"))
def snapshot(route: Any, shown: Any) -> dict[str, Any]:
    """The book and the tape of the trade page's symbol from REST (public), read when the
    symbol changes; the market stream keeps them current."""
    symbol = str((route or {}).get("symbol") or "") if (route or {}).get("page") == "trade" else ""
    if not SYMBOL_RE.fullmatch(symbol):
        return {"symbol": None}
    if (shown or {}).get("symbol") == symbol:
        raise PreventUpdate  # a token refresh rewrote the route: same symbol
    client, out = ApiClient(_api_url, None), {"symbol": symbol, "book": None, "trades": []}
    try:
        out["book"] = client.get(f"/api/market/{symbol}/depth", {"limit": 20})
        out["trades"] = client.get(f"/api/market/{symbol}/trades", {"limit": TRADE_ROWS})
    except ApiClientError:
        pass  # the stream fills it
    return out


clientside_callback(
    ClientsideFunction(namespace="book", function_name="receive"),
    Output(BOOK_STORE, "data"),
    Input(ids.MARKET_STREAM, "message"), Input(SNAPSHOT_STORE, "data"), State(BOOK_STORE, "data"),
)
clientside_callback(
    ClientsideFunction(namespace="book", function_name="render"),
    Output(SPREAD, "children"),
    Input(BOOK_STORE, "data"),
)
clientside_callback(
    ClientsideFunction(namespace="book", function_name="click"),
    Output(PRICE_CLICK_STORE, "data"),
    Input({"type": ROW, "slot": ALL}, "n_clicks"),
    State(BOOK_STORE, "data"), State(PRICE_CLICK_STORE, "data"), prevent_initial_call=True,
)
