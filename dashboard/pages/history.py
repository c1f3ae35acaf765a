"""History (`/history`): every order or trade of the account, filtered and paged on the
server (dashboard/history_view.py), beyond the desk's live grids."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import ids
from dashboard.history_view import history_grid

STATUSES = ("NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "PENDING",
            "SUBMITTED")


def layout(**_path: str) -> html.Div:
    """The page's component tree."""
    return html.Div(id=ids.page("history"), className="page history-page", children=[
        dcc.Store(id=ids.mounted("history"), data=True),
        dcc.Store(id=ids.HISTORY_CURSOR),
        html.Div(className="page-title", children=[html.H2("History")]),
        html.Div(className="panel history-filters", children=[
            dcc.RadioItems(id=ids.HISTORY_KIND, value="orders", inline=True,
                           options=[{"label": " Orders ", "value": "orders"},
                                    {"label": " Trades ", "value": "trades"}]),
            dcc.Input(id=ids.HISTORY_SYMBOL, type="text", placeholder="symbol (all)",
                      className="history-symbol", maxLength=20),
            dcc.Dropdown(id=ids.HISTORY_SIDE, placeholder="side (both)", clearable=True,
                         options=["BUY", "SELL"], className="history-side"),
            dcc.Dropdown(id=ids.HISTORY_STATUS, placeholder="status (all)", multi=True,
                         options=list(STATUSES), className="history-status"),
            html.Label(className="muted", children=[
                "from ", dcc.Input(id=ids.HISTORY_FROM, type="date", className="date-input")]),
            html.Label(className="muted", children=[
                "to ", dcc.Input(id=ids.HISTORY_TO, type="date", className="date-input")]),
            dcc.Dropdown(id=ids.HISTORY_PAGE_SIZE, value=100, clearable=False,
                         options=[{"label": f"{n} a page", "value": n} for n in (25, 100, 500)],
                         className="history-page-size"),
            html.Button("Search", id=ids.HISTORY_SEARCH, className="btn small primary",
                        n_clicks=0),
        ]),
        html.Div(id=ids.HISTORY_ERROR, className="form-error"),
        html.Div(className="panel", children=[
            history_grid(),
            html.Div(className="grid-actions", children=[
                html.Span(id=ids.HISTORY_INFO, className="muted"),
                html.Button("Load more", id=ids.HISTORY_MORE, className="btn small",
                            n_clicks=0, disabled=True),
            ]),
        ]),
    ])


dash.register_page(__name__, path="/history", name="History",
                   title="History · TradeLedger", layout=layout)
