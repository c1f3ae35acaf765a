"""The order book screen: a depth ladder with the spread, and the recent market trades.

Data flow (in the browser, assets/60-order-book.js; the book is a hot path at up to 10
updates a second): `route` (the trade page's symbol) -> `follow` takes a REST snapshot
(`/depth`, `/trades`). Live updates ride on the tab's market stream: every EventSource opened
on `/api/market/{symbol}/stream` (the chart's) also asks for `channels=depth,trades`, and the
book listens to its DEPTH and MARKET_TRADE events (a stream of its own would be a third
long-lived connection per tab to the API host, and browsers allow six per host). The API
subscribes to the exchange's book and tape only while such a stream is open. Events update
JS state pushed into BOOK_STORE at most four times a second; `render` fills the rows in place.

A click on a price (a ladder level or a trade) sets PRICE_CLICK_STORE to
`{price, side ("bid" | "ask" | "trade"), symbol, n}` (`n` grows with each click, so clicking
the same price twice still changes the store). The order ticket reads it to fill its price.
"""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from dashboard import ids

PANEL = "order-book-panel"
BOOK_STORE = "book-store"  # {symbol, book: {bids, asks, lastUpdateId}, trades: [...]}
CONNECTION_STORE = "book-connection"  # {symbol}: the symbol the book follows
PRICE_CLICK_STORE = "book-price-click"  # {price, side, symbol, n}: read by the ticket
LADDER = "book-ladder"
SPREAD = "book-spread"
TRADES = "book-trades"
LEVELS = 10  # rows per side on screen (the stream carries 20; the JS fills as many as drawn)
TRADE_ROWS = 30


def _row(side: str) -> html.Div:
    return html.Div(className=f"book-row {side}", style={"visibility": "hidden"},
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
            *[_row("ask") for _ in range(LEVELS)],
            html.Div("connecting…", id=SPREAD, className="book-spread"),
            *[_row("bid") for _ in range(LEVELS)],
        ]),
        html.H4("Market trades", className="book-trades-title"),
        html.Div(className="book-head muted", children=[
            html.Span("Price"), html.Span("Amount"), html.Span("Time"),
        ]),
        html.Div(id=TRADES, className="book-trades mono",
                 children=[_row("trade") for _ in range(TRADE_ROWS)]),
        dcc.Store(id=BOOK_STORE),
        dcc.Store(id=CONNECTION_STORE),
        dcc.Store(id=PRICE_CLICK_STORE),
    ])


clientside_callback(
    ClientsideFunction(namespace="book", function_name="follow"),
    Output(CONNECTION_STORE, "data"),
    Input(ids.ROUTE, "data"), Input(ids.CONFIG, "data"),
)
clientside_callback(
    ClientsideFunction(namespace="book", function_name="render"),
    Output(SPREAD, "children"),
    Input(BOOK_STORE, "data"),
)
