"""The dashboard's component tree: one shell holding every page, shown and hidden by route.

Every page stays mounted so that live state (the open streams, the chart, the tables) survives
navigation, and switching symbol is a history push, never a reload.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import position_close, ticket
from dashboard.grids import orders_grid, positions_grid, trades_grid

DEFAULT_SYMBOL = "BTCUSDT"
TIMEFRAMES = (("1m", "1m"), ("5m", "5m"), ("1h", "1h"), ("1D", "1d"), ("1W", "1w"))
INDICATORS = (("SMA 20", "sma"), ("EMA 20", "ema"), ("Bollinger", "bb"), ("RSI 14", "rsi"))
PAGES = ("login", "register", "trade", "analytics", "audit", "account")
NAV_PAGES = ("trade", "analytics", "audit", "account")
# The server requires this many characters (commands/application.py MIN_PASSWORD_LENGTH).
MIN_PASSWORD_LENGTH = 10


def _field(label: str, component: Any, hint: str | None = None) -> html.Label:
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
            html.Button("☰", id="menu-toggle", className="icon-btn menu-btn", n_clicks=0,
                        title="Menu", **{"aria-label": "Menu", "aria-controls": "nav"}),
            html.A([html.Span("◆", className="logo-mark"), " TradeLedger"], href="/trade",
                   className="logo", id="logo"),
            html.Span("", id="env-badge", className="env-badge", style={"display": "none"},
                      title="which exchange this account trades on"),
            html.Nav(className="nav", id="nav", children=[
                dcc.Link("Trade", href="/trade", id="nav-trade", className="nav-link"),
                dcc.Link("Analytics", href="/analytics", id="nav-analytics",
                         className="nav-link"),
                dcc.Link("Audit", href="/audit", id="nav-audit", className="nav-link"),
                dcc.Link("Account", href="/account", id="nav-account", className="nav-link"),
            ]),
            html.Div(className="header-right", children=[
                # Shown only when signed in: a signed-out visitor has no stream to be "offline".
                html.Span(id="live-wrap", className="live-wrap", style={"display": "none"},
                          children=[
                    html.Span(id="live-status", className="live-dot down", title="disconnected",
                              **{"data-testid": "live-status"}),
                    html.Span("offline", id="live-label", className="live-label"),
                ]),
                html.Span("", id="user-email", className="user-email"),
                html.Button("☾", id="theme-toggle", className="icon-btn",
                            title="Toggle light/dark theme", n_clicks=0),
                html.Button("Log out", id="logout-btn", className="link-btn", n_clicks=0),
            ]),
        ],
    )


def login_page() -> html.Div:
    return html.Div(id="page-login", className="page auth-page", style={"display": "none"},
                    children=[html.Div(className="auth-card", children=[
                        html.H2("Sign in"),
                        _field("Email", dcc.Input(id="login-email", type="email",
                                                  autoComplete="username", debounce=False)),
                        _field("Password", dcc.Input(id="login-password", type="password",
                                                     autoComplete="current-password")),
                        html.Button("Sign in", id="login-btn", className="btn primary wide",
                                    n_clicks=0),
                        html.Div(id="login-error", className="form-error"),
                        html.P(["No account? ", dcc.Link("Register", href="/register",
                                                         id="to-register")]),
                    ])])


def register_page() -> html.Div:
    return html.Div(id="page-register", className="page auth-page", style={"display": "none"},
                    children=[html.Div(className="auth-card", children=[
                        html.H2("Create an account"),
                        _field("Email", dcc.Input(id="reg-email", type="email",
                                                  autoComplete="username")),
                        _field("Password", dcc.Input(id="reg-password", type="password",
                                                     autoComplete="new-password"),
                               f"at least {MIN_PASSWORD_LENGTH} characters"),
                        html.Details(className="keys-box", children=[
                            html.Summary("Binance Testnet keys (optional)"),
                            _field("API key", dcc.Input(id="reg-api-key", type="text",
                                                        autoComplete="off")),
                            _field("Secret key", dcc.Input(id="reg-secret-key", type="password",
                                                           autoComplete="off")),
                            html.P("Stored encrypted; never shown again. Without keys you trade "
                                   "on the bundled paper exchange.", className="field-hint"),
                        ]),
                        html.Button("Register", id="register-btn", className="btn primary wide",
                                    n_clicks=0),
                        html.Div(id="register-error", className="form-error"),
                        html.P(["Have an account? ", dcc.Link("Sign in", href="/login",
                                                              id="to-login")]),
                    ])])


def alerts_panel() -> html.Div:
    """Price alerts, stored on the server per account: "tell me when SYMBOL crosses PRICE"."""
    return html.Div(className="panel alerts", id="alerts-panel", children=[
        html.H4("Price alerts"),
        html.Div(className="alert-form", children=[
            dcc.Input(id="alert-price", type="text", inputMode="decimal",
                      placeholder="crosses price"),
            html.Button("Add", id="alert-add", className="btn small", n_clicks=0),
        ]),
        html.Div(id="alert-error", className="form-error"),
        html.Ul(id="alert-list", className="alert-list"),
        dcc.Store(id="alerts-refresh", data=0),
    ])


def trade_page() -> html.Div:
    return html.Div(id="page-trade", className="page trade-page", style={"display": "none"},
                    children=[
        html.Aside(className="left-col", children=[ticket.layout(), position_close.layout(),
                                                   alerts_panel()]),
        html.Section(className="right-col", children=[
            html.Div(className="panel chart-panel", children=[
                html.Div(className="pair-bar", children=[
                    html.Span(DEFAULT_SYMBOL, id="pair-name", className="pair-name"),
                    html.Span("—", id="pair-price", className="pair-price mono"),
                    html.Span("—", id="pair-change", className="pair-change mono"),
                    html.Div(className="tf-group", id="tf-group", children=[
                        html.Button(label, id=f"tf-{value}", className="tf-btn", n_clicks=0,
                                    **{"data-interval": value})
                        for label, value in TIMEFRAMES
                    ]),
                    dcc.Checklist(id="indicator-toggles", className="indicator-toggles",
                                  persistence=True, persistence_type="local",
                                  options=[{"label": lab, "value": v} for lab, v in INDICATORS],
                                  value=[], inline=True),
                ]),
                html.Div(id="chart-error", className="form-error"),
                html.Div(id="chart-note", className="field-hint chart-note"),
                dcc.Graph(id="price-chart", className="price-chart",
                          config={"displaylogo": False, "scrollZoom": True,
                                  "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
                          figure={"data": [], "layout": {"height": 460}}),
            ]),
            html.Div(className="panel tables-panel", children=[
                dcc.Tabs(id="table-tabs", value="orders", className="tabs", children=[
                    dcc.Tab(label="Positions", value="positions", id="tab-positions",
                            children=positions_grid()),
                    dcc.Tab(label="Orders", value="orders", id="tab-orders",
                            children=orders_grid()),
                    dcc.Tab(label="Trades", value="trades", id="tab-trades",
                            children=trades_grid()),
                ]),
            ]),
        ]),
    ])


def analytics_page() -> html.Div:
    graph_cfg = {"displaylogo": False}
    cards = [("PnL over time", "an-pnl"), ("Volume by symbol", "an-volume"),
             ("Fill latency", "an-latency"), ("Orders by status", "an-status"),
             ("Event throughput", "an-throughput")]
    return html.Div(id="page-analytics", className="page analytics-page",
                    style={"display": "none"}, children=[
        html.Div(className="page-title", children=[
            html.H2("Analytics"),
            html.Button("Refresh", id="analytics-refresh", className="btn small", n_clicks=0),
            html.Span(id="analytics-summary", className="muted"),
        ]),
        html.Div(id="analytics-error", className="form-error"),
        html.Div(className="analytics-grid", children=[
            html.Div(className="panel", children=[
                html.H4(title), dcc.Graph(id=gid, config=graph_cfg,
                                          figure={"data": [], "layout": {"height": 300}})])
            for title, gid in cards
        ]),
    ])


def audit_page() -> html.Div:
    return html.Div(id="page-audit", className="page audit-page", style={"display": "none"},
                    children=[
        html.Div(className="page-title", children=[
            html.H2("Audit"),
            dcc.Dropdown(id="audit-order", placeholder="choose one of your orders",
                         className="audit-order-select", options=[]),
            html.Button("Load", id="audit-load", className="btn small", n_clicks=0),
            html.Button("Export JSON", id="audit-export-json", className="btn small",
                        n_clicks=0),
            html.Button("Export CSV", id="audit-export-csv", className="btn small", n_clicks=0),
            dcc.Download(id="audit-download"),
        ]),
        html.Div(id="audit-error", className="form-error"),
        html.Div(id="audit-chain", className="chain-status"),
        html.Div(className="audit-grid", children=[
            html.Div(className="panel", children=[
                html.H4("Event timeline"), html.Div(id="audit-timeline")]),
            html.Div(className="panel", children=[
                html.H4("State at version"),
                dcc.Slider(id="audit-version", min=1, max=1, step=1, value=1, marks={}),
                html.Div(id="audit-state", className="state-json"),
            ]),
        ]),
    ])


def account_page() -> html.Div:
    """Exchange keys, password, sessions: drawn and driven by dashboard/account_view.py."""
    env_options = [{"label": "Paper exchange (bundled)", "value": "paper"},
                   {"label": "Binance Spot Testnet", "value": "testnet"},
                   {"label": "Binance live", "value": "live"}]
    return html.Div(id="page-account", className="page account-page", style={"display": "none"},
                    children=[
        html.Div(className="page-title", children=[html.H2("Account"),
                                                   html.Span(id="account-email",
                                                             className="muted")]),
        html.Div(className="account-grid", children=[
            html.Div(className="panel", id="keys-panel", children=[
                html.H4("Exchange keys"),
                html.Div(id="keys-status", className="keys-status"),
                _field("API key", dcc.Input(id="keys-api-key", type="text",
                                            autoComplete="off")),
                _field("Secret key", dcc.Input(id="keys-secret-key", type="password",
                                               autoComplete="off")),
                _field("Environment", dcc.Dropdown(id="keys-env", options=env_options,
                                                   value="paper", clearable=False)),
                html.Div(className="button-row", children=[
                    html.Button("Connect keys", id="keys-save", className="btn primary",
                                n_clicks=0),
                    html.Button("Remove keys", id="keys-remove", className="btn", n_clicks=0),
                ]),
                html.Div(id="keys-message", className="form-message", role="status"),
                html.P("Keys are checked with the exchange, then stored encrypted; they are "
                       "never shown again.", className="field-hint"),
            ]),
            html.Div(className="panel", id="password-panel", children=[
                html.H4("Password"),
                _field("Current password", dcc.Input(id="pw-current", type="password",
                                                     autoComplete="current-password")),
                _field("New password", dcc.Input(id="pw-new", type="password",
                                                 autoComplete="new-password"),
                       f"at least {MIN_PASSWORD_LENGTH} characters"),
                _field("Repeat the new password", dcc.Input(id="pw-new2", type="password",
                                                            autoComplete="new-password")),
                html.Button("Change password", id="pw-change", className="btn primary",
                            n_clicks=0),
                html.Div(id="pw-message", className="form-message", role="status"),
                html.P("Changing the password signs out every other session.",
                       className="field-hint"),
            ]),
            html.Div(className="panel", id="sessions-panel", children=[
                html.H4("Sessions"),
                html.P("Signed in somewhere you no longer use? End every session, this one "
                       "included.", className="muted"),
                html.Button("Sign out everywhere", id="signout-all", className="btn sell",
                            n_clicks=0),
                html.Div(id="signout-message", className="form-message", role="status"),
            ]),
        ]),
    ])


def serve_layout(public_api_url: str) -> html.Div:
    """Build the root layout: stores, header, toasts and every page."""
    return html.Div(id="app-root", className="app", children=[
        dcc.Location(id="url", refresh="callback-nav"),
        # The session lives in localStorage so every tab of the browser shares it.
        dcc.Store(id="auth", storage_type="local"),
        dcc.Store(id="config", data={"apiUrl": public_api_url.rstrip("/")}),
        dcc.Store(id="boot"),
        dcc.Store(id="route", data={"page": "login", "symbol": DEFAULT_SYMBOL}),
        dcc.Store(id="chart-settings", storage_type="local",
                  data={"interval": "1m", "indicators": []}),
        dcc.Store(id="orders-store", data=[]),
        dcc.Store(id="trades-store", data=[]),
        dcc.Store(id="positions-store", data=[]),
        dcc.Store(id="market-store", data={}),
        dcc.Store(id="alerts-store", data=[]),
        dcc.Store(id="audit-data"),
        # /api/me as last read (keys, their environment and status): the header badge, the
        # balance source and the Account page read it.
        dcc.Store(id="me-store"),
        dcc.Store(id="me-refresh", data=0),
        dcc.Store(id="cancel-result"),
        # The chart's closes out, its indicators back (dashboard/indicators.py).
        dcc.Store(id="chart-closes"),
        dcc.Store(id="indicator-store"),
        dcc.Store(id="indicator-applied"),
        header(),
        html.Main(className="app-main", children=[
            login_page(), register_page(), trade_page(), analytics_page(), audit_page(),
            account_page(),
        ]),
        html.Div(id="toasts", className="toasts", **{"aria-live": "polite"}),
    ])
