"""The dashboard's shell: header, stores, the trade desk and Dash's page container.

Login, registration, analytics, audit and account are `dash.register_page` pages
(`dashboard/pages/`) rendered into `dash.page_container`. The stores and the live streams
stay here, outside the container, so a page switch never drops live data. The trade desk
stays here too, shown and hidden by `dashboard/routing.py`: Dash re-renders a page on every
change of its path, and `/trade/<SYMBOL>` changes on every symbol switch, so in the page
container the chart, the grids and the ticket would be rebuilt on each one.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard import chart, ids, live_account, order_book, position_close, summary, ticket, toasts
from dashboard.chart import TIMEFRAMES  # noqa: F401 - app.py reads it here
from dashboard.grids import orders_grid, positions_grid, trades_grid

DEFAULT_SYMBOL = "BTCUSDT"
# How often the session checks its access token (it refreshes one with under a minute left).
SESSION_TICK_MS = 5_000
# The server requires this many characters (commands/application.py MIN_PASSWORD_LENGTH).
MIN_PASSWORD_LENGTH = 10


def field(label: str, component: Any, hint: str | None = None) -> html.Label:
    """A labelled form field, with an optional hint under it."""
    children = [html.Span(label, className="field-label"), component]
    if hint:
        children.append(html.Span(hint, className="field-hint"))
    return html.Label(children, className="field")




def header() -> html.Header:
    """Logo, navigation, user, live-status dot and theme toggle."""
    return html.Header(
        className="app-header",
        children=[
            # Below 900 px the nav folds into this menu button.
            html.Button("☰", id=ids.MENU_TOGGLE, className="icon-btn menu-btn", n_clicks=0,
                        title="Menu", **{"aria-label": "Menu", "aria-controls": ids.NAV}),
            html.A([html.Span("◆", className="logo-mark"), " TradeLedger"], href="/trade",
                   className="logo", id=ids.LOGO),
            html.Span("", id=ids.ENV_BADGE, className="env-badge", style={"display": "none"},
                      title="which exchange this account trades on"),
            html.Nav(className="nav", id=ids.NAV, children=[
                dcc.Link(name.capitalize(), href=f"/{name}", id=ids.nav_link(name),
                         className="nav-link")
                for name in ids.NAV_PAGES
            ]),
            html.Div(className="header-right", children=[
                # Shown only when signed in: a signed-out visitor has no stream to be "offline".
                html.Span(id=ids.LIVE_WRAP, className="live-wrap", style={"display": "none"},
                          children=[
                    html.Span(id=ids.LIVE_STATUS, className="live-dot down", title="disconnected",
                              **{"data-testid": "live-status"}),
                    html.Span("offline", id=ids.LIVE_LABEL, className="live-label"),
                ]),
                html.Span("", id=ids.USER_EMAIL, className="user-email"),
                html.Button("☾", id=ids.THEME_TOGGLE, className="icon-btn",
                            title="Toggle light/dark theme", n_clicks=0),
                html.Button("Log out", id=ids.LOGOUT_BTN, className="link-btn", n_clicks=0),
            ]),
        ],
    )




def alerts_panel() -> html.Div:
    """Price alerts, stored on the server per account: "tell me when SYMBOL crosses PRICE"."""
    return html.Div(className="panel alerts", id=ids.ALERTS_PANEL, children=[
        html.H4("Price alerts"),
        html.Div(className="alert-form", children=[
            dcc.Input(id=ids.ALERT_PRICE, type="text", inputMode="decimal",
                      placeholder="crosses price"),
            html.Button("Add", id=ids.ALERT_ADD, className="btn small", n_clicks=0),
        ]),
        html.Div(id=ids.ALERT_ERROR, className="form-error"),
        html.Ul(id=ids.ALERT_LIST, className="alert-list"),
        dcc.Store(id=ids.ALERTS_REFRESH, data=0),
    ])


def trade_page() -> html.Div:
    """The desk: ticket, alerts, chart and the live grids (shown on `/trade[/<SYMBOL>]`)."""
    return html.Div(id=ids.page("trade"), className="page trade-page", style={"display": "none"},
                    children=[
        html.Aside(className="left-col", children=[
            ticket.layout(),
            position_close.layout(),
            alerts_panel(),
            summary.layout(),
            order_book.layout(),
        ]),
        html.Section(className="right-col", children=[
            chart.layout(),
            html.Div(className="panel tables-panel", children=[
                dcc.Checklist(id=ids.HIDE_OTHER_PAIRS, className="hide-other-pairs",
                              options=[{"label": " Hide other pairs", "value": "hide"}],
                              value=[], persistence=True, persistence_type="local"),
                dcc.Tabs(id=ids.TABLE_TABS, value="orders", className="tabs", children=[
                    dcc.Tab(label="Positions", value="positions", id=ids.TAB_POSITIONS,
                            children=positions_grid()),
                    dcc.Tab(label="Orders", value="orders", id=ids.TAB_ORDERS,
                            children=orders_grid()),
                    dcc.Tab(label="Trades", value="trades", id=ids.TAB_TRADES,
                            children=trades_grid()),
                ]),
            ]),
        ]),
    ])





def serve_layout(public_api_url: str) -> html.Div:
    """Build the root layout: stores, header, toasts, the desk and the page container."""
    return html.Div(id=ids.APP_ROOT, className="app", children=[
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Location(id=ids.URL_QUIET, refresh=False),
        # The session lives in localStorage so every tab of the browser shares it.
        dcc.Store(id=ids.AUTH, storage_type="local"),
        dcc.Interval(id=ids.SESSION_TICK, interval=SESSION_TICK_MS),
        dcc.Store(id=ids.CONFIG, data={"apiUrl": public_api_url.rstrip("/")}),
        dcc.Store(id=ids.BOOT),
        dcc.Store(id=ids.ROUTE, data={"page": "login", "symbol": DEFAULT_SYMBOL}),
        dcc.Store(id=ids.PAGE_SHOWN),
        # A sentence for the sign-in page from another page (the password changed).
        dcc.Store(id=ids.LOGIN_NOTICE),
        dcc.Store(id=ids.CHART_SETTINGS, storage_type="local",
                  data={"interval": "1m", "indicators": []}),
        dcc.Store(id=ids.ORDERS_STORE, data=[]),
        dcc.Store(id=ids.TRADES_STORE, data=[]),
        dcc.Store(id=ids.POSITIONS_STORE, data=[]),
        dcc.Store(id=ids.MARKET_STORE, data={}),
        *live_account.stores(), *toasts.stores(),
        dcc.Store(id=ids.AUDIT_DATA),
        # /api/me as last read (keys, their environment and status): the header badge, the
        # balance source and the Account page read it.
        dcc.Store(id=ids.ME_STORE),
        dcc.Store(id=ids.ME_REFRESH, data=0),
        dcc.Store(id=ids.CANCEL_RESULT),
        header(),
        html.Main(className="app-main", children=[trade_page(), dash.page_container]),
        html.Div(id=ids.TOASTS, className="toasts", **{"aria-live": "polite"}),
    ])
