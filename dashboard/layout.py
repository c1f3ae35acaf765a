"""The dashboard's component tree: one shell holding every page, shown and hidden by route.

Every page stays mounted so that live state (the open streams, the chart, the tables) survives
navigation, and switching symbol is a history push, never a reload.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.grids import orders_grid, positions_grid, trades_grid

DEFAULT_SYMBOL = "BTCUSDT"
TIMEFRAMES = (("1m", "1m"), ("5m", "5m"), ("1h", "1h"), ("1D", "1d"), ("1W", "1w"))
INDICATORS = (("SMA 20", "sma"), ("EMA 20", "ema"), ("Bollinger", "bb"), ("RSI 14", "rsi"))
PAGES = ids.PAGES
NAV_PAGES = ids.NAV_PAGES
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


def login_page() -> html.Div:
    return html.Div(id=ids.page("login"), className="page auth-page", style={"display": "none"},
                    children=[html.Div(className="auth-card", children=[
                        html.H2("Sign in"),
                        _field("Email", dcc.Input(id=ids.LOGIN_EMAIL, type="email",
                                                  autoComplete="username", debounce=False)),
                        _field("Password", dcc.Input(id=ids.LOGIN_PASSWORD, type="password",
                                                     autoComplete="current-password")),
                        html.Button("Sign in", id=ids.LOGIN_BTN, className="btn primary wide",
                                    n_clicks=0),
                        html.Div(id=ids.LOGIN_ERROR, className="form-error"),
                        html.P(["No account? ", dcc.Link("Register", href="/register",
                                                         id=ids.TO_REGISTER)]),
                    ])])


def register_page() -> html.Div:
    return html.Div(id=ids.page("register"), className="page auth-page", style={"display": "none"},
                    children=[html.Div(className="auth-card", children=[
                        html.H2("Create an account"),
                        _field("Email", dcc.Input(id=ids.REG_EMAIL, type="email",
                                                  autoComplete="username")),
                        _field("Password", dcc.Input(id=ids.REG_PASSWORD, type="password",
                                                     autoComplete="new-password"),
                               f"at least {MIN_PASSWORD_LENGTH} characters"),
                        html.Details(className="keys-box", children=[
                            html.Summary("Binance Testnet keys (optional)"),
                            _field("API key", dcc.Input(id=ids.REG_API_KEY, type="text",
                                                        autoComplete="off")),
                            _field("Secret key", dcc.Input(id=ids.REG_SECRET_KEY, type="password",
                                                           autoComplete="off")),
                            html.P("Stored encrypted; never shown again. Without keys you trade "
                                   "on the bundled paper exchange.", className="field-hint"),
                        ]),
                        html.Button("Register", id=ids.REGISTER_BTN, className="btn primary wide",
                                    n_clicks=0),
                        html.Div(id=ids.REGISTER_ERROR, className="form-error"),
                        html.P(["Have an account? ", dcc.Link("Sign in", href="/login",
                                                              id=ids.TO_LOGIN)]),
                    ])])


def order_ticket() -> html.Div:
    """Buy/Sell, Market/Limit, quantity by amount or % of balance, price, total, place."""
    return html.Div(className="panel ticket", id="ticket", children=[
        html.Div(className="seg side-seg", children=[
            html.Button("Buy", id="side-buy", className="seg-btn buy active", n_clicks=0,
                        title="Buy (B)"),
            html.Button("Sell", id="side-sell", className="seg-btn sell", n_clicks=0,
                        title="Sell (S)"),
        ]),
        html.Div(className="seg type-seg", children=[
            html.Button("Market", id="type-market", className="seg-btn active", n_clicks=0,
                        title="Market (M)"),
            html.Button("Limit", id="type-limit", className="seg-btn", n_clicks=0,
                        title="Limit (L)"),
        ]),
        _field("Symbol", dcc.Dropdown(id="symbol-select", options=[DEFAULT_SYMBOL],
                                      value=DEFAULT_SYMBOL, clearable=False, searchable=True)),
        html.Div(id="price-field", style={"display": "none"}, children=[
            _field("Limit price", dcc.Input(id="ticket-price", type="text", inputMode="decimal",
                                            placeholder="price", debounce=False)),
            html.Div(id="price-error", className="field-error"),
        ]),
        html.Div(className="seg qty-mode", children=[
            html.Button("Amount", id="qty-mode-amount", className="seg-btn small active",
                        n_clicks=0),
            html.Button("% of balance", id="qty-mode-pct", className="seg-btn small",
                        n_clicks=0),
        ]),
        _field("Quantity", dcc.Input(id="ticket-qty", type="text", inputMode="decimal",
                                     placeholder="quantity", debounce=False)),
        html.Div(id="qty-error", className="field-error"),
        html.Div(id="pct-field", style={"display": "none"}, children=[
            dcc.Slider(id="ticket-pct", min=0, max=100, step=1, value=0,
                       marks={0: "0%", 25: "25%", 50: "50%", 75: "75%", 100: "100%"},
                       tooltip={"placement": "bottom", "always_visible": False}),
            html.Div(className="pct-buttons", children=[
                html.Button(f"{pct}%", id=f"pct-{pct}", className="btn tiny", n_clicks=0,
                            **{"data-pct": str(pct)})
                for pct in (10, 25, 50, 75, 100)
            ]),
        ]),
        html.Div(className="ticket-row", children=[
            html.Span("Available", className="muted"),
            html.Span("—", id="ticket-available", className="mono"),
        ]),
        html.Div(className="ticket-row", children=[
            html.Span("Total", className="muted"),
            html.Span("—", id="ticket-total", className="mono"),
        ]),
        html.Button("Buy BTCUSDT", id="place-btn", className="btn buy wide", n_clicks=0,
                    title="Place order (Shift+Enter)"),
        # A fat-finger check: far from the market, or sent with Shift+Enter, asks first.
        html.Div(id="confirm-box", className="confirm-box", style={"display": "none"},
                 role="alertdialog", children=[
            html.Div(id="confirm-text", className="confirm-text"),
            html.Div(className="confirm-actions", children=[
                html.Button("Place order", id="confirm-yes", className="btn small primary",
                            n_clicks=0),
                html.Button("Cancel", id="confirm-no", className="btn small", n_clicks=0),
            ]),
        ]),
        html.Div(id="ticket-message", className="form-message", role="status"),
        html.Div(id=ids.BALANCE_SOURCE, className="field-hint balance-source"),
        html.P("Shortcuts: B buy · S sell · M market · L limit · Q quantity · "
               "Shift+Enter place · 1-5 timeframe", className="field-hint shortcuts"),
    ])


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
    return html.Div(id=ids.page("trade"), className="page trade-page", style={"display": "none"},
                    children=[
        html.Aside(className="left-col", children=[order_ticket(), alerts_panel()]),
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


def analytics_page() -> html.Div:
    graph_cfg = {"displaylogo": False}
    cards = [("PnL over time", ids.AN_PNL), ("Volume by symbol", ids.AN_VOLUME),
             ("Fill latency", ids.AN_LATENCY), ("Orders by status", ids.AN_STATUS),
             ("Event throughput", ids.AN_THROUGHPUT)]
    return html.Div(id=ids.page("analytics"), className="page analytics-page",
                    style={"display": "none"}, children=[
        html.Div(className="page-title", children=[
            html.H2("Analytics"),
            html.Button("Refresh", id=ids.ANALYTICS_REFRESH, className="btn small", n_clicks=0),
            html.Span(id=ids.ANALYTICS_SUMMARY, className="muted"),
        ]),
        html.Div(id=ids.ANALYTICS_ERROR, className="form-error"),
        html.Div(className="analytics-grid", children=[
            html.Div(className="panel", children=[
                html.H4(title), dcc.Graph(id=gid, config=graph_cfg,
                                          figure={"data": [], "layout": {"height": 300}})])
            for title, gid in cards
        ]),
    ])


def audit_page() -> html.Div:
    return html.Div(id=ids.page("audit"), className="page audit-page", style={"display": "none"},
                    children=[
        html.Div(className="page-title", children=[
            html.H2("Audit"),
            dcc.Dropdown(id=ids.AUDIT_ORDER, placeholder="choose one of your orders",
                         className="audit-order-select", options=[]),
            html.Button("Load", id=ids.AUDIT_LOAD, className="btn small", n_clicks=0),
            html.Button("Export JSON", id=ids.AUDIT_EXPORT_JSON, className="btn small",
                        n_clicks=0),
            html.Button("Export CSV", id=ids.AUDIT_EXPORT_CSV, className="btn small", n_clicks=0),
            dcc.Download(id=ids.AUDIT_DOWNLOAD),
        ]),
        html.Div(id=ids.AUDIT_ERROR, className="form-error"),
        html.Div(id=ids.AUDIT_CHAIN, className="chain-status"),
        html.Div(className="audit-grid", children=[
            html.Div(className="panel", children=[
                html.H4("Event timeline"), html.Div(id=ids.AUDIT_TIMELINE)]),
            html.Div(className="panel", children=[
                html.H4("State at version"),
                dcc.Slider(id=ids.AUDIT_VERSION, min=1, max=1, step=1, value=1, marks={}),
                html.Div(id=ids.AUDIT_STATE, className="state-json"),
            ]),
        ]),
    ])


def account_page() -> html.Div:
    """Exchange keys, password, sessions: drawn and driven by dashboard/account_view.py."""
    env_options = [{"label": "Paper exchange (bundled)", "value": "paper"},
                   {"label": "Binance Spot Testnet", "value": "testnet"},
                   {"label": "Binance live", "value": "live"}]
    return html.Div(id=ids.page("account"), className="page account-page",
                    style={"display": "none"},
                    children=[
        html.Div(className="page-title", children=[html.H2("Account"),
                                                   html.Span(id=ids.ACCOUNT_EMAIL,
                                                             className="muted")]),
        html.Div(className="account-grid", children=[
            html.Div(className="panel", id=ids.KEYS_PANEL, children=[
                html.H4("Exchange keys"),
                html.Div(id=ids.KEYS_STATUS, className="keys-status"),
                _field("API key", dcc.Input(id=ids.KEYS_API_KEY, type="text",
                                            autoComplete="off")),
                _field("Secret key", dcc.Input(id=ids.KEYS_SECRET_KEY, type="password",
                                               autoComplete="off")),
                _field("Environment", dcc.Dropdown(id=ids.KEYS_ENV, options=env_options,
                                                   value="paper", clearable=False)),
                html.Div(className="button-row", children=[
                    html.Button("Connect keys", id=ids.KEYS_SAVE, className="btn primary",
                                n_clicks=0),
                    html.Button("Remove keys", id=ids.KEYS_REMOVE, className="btn", n_clicks=0),
                ]),
                html.Div(id=ids.KEYS_MESSAGE, className="form-message", role="status"),
                html.P("Keys are checked with the exchange, then stored encrypted; they are "
                       "never shown again.", className="field-hint"),
            ]),
            html.Div(className="panel", id=ids.PASSWORD_PANEL, children=[
                html.H4("Password"),
                _field("Current password", dcc.Input(id=ids.PW_CURRENT, type="password",
                                                     autoComplete="current-password")),
                _field("New password", dcc.Input(id=ids.PW_NEW, type="password",
                                                 autoComplete="new-password"),
                       f"at least {MIN_PASSWORD_LENGTH} characters"),
                _field("Repeat the new password", dcc.Input(id=ids.PW_NEW2, type="password",
                                                            autoComplete="new-password")),
                html.Button("Change password", id=ids.PW_CHANGE, className="btn primary",
                            n_clicks=0),
                html.Div(id=ids.PW_MESSAGE, className="form-message", role="status"),
                html.P("Changing the password signs out every other session.",
                       className="field-hint"),
            ]),
            html.Div(className="panel", id=ids.SESSIONS_PANEL, children=[
                html.H4("Sessions"),
                html.P("Signed in somewhere you no longer use? End every session, this one "
                       "included.", className="muted"),
                html.Button("Sign out everywhere", id=ids.SIGNOUT_ALL, className="btn sell",
                            n_clicks=0),
                html.Div(id=ids.SIGNOUT_MESSAGE, className="form-message", role="status"),
            ]),
        ]),
    ])


def serve_layout(public_api_url: str) -> html.Div:
    """Build the root layout: stores, header, toasts and every page."""
    return html.Div(id=ids.APP_ROOT, className="app", children=[
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        # The session lives in localStorage so every tab of the browser shares it.
        dcc.Store(id=ids.AUTH, storage_type="local"),
        dcc.Store(id=ids.CONFIG, data={"apiUrl": public_api_url.rstrip("/")}),
        dcc.Store(id=ids.BOOT),
        dcc.Store(id=ids.ROUTE, data={"page": "login", "symbol": DEFAULT_SYMBOL}),
        dcc.Store(id="ticket-state", data={"side": "BUY", "type": "MARKET", "qtyMode": "amount"}),
        dcc.Store(id=ids.CHART_SETTINGS, storage_type="local",
                  data={"interval": "1m", "indicators": []}),
        dcc.Store(id=ids.ORDERS_STORE, data=[]),
        dcc.Store(id=ids.TRADES_STORE, data=[]),
        dcc.Store(id=ids.POSITIONS_STORE, data=[]),
        dcc.Store(id=ids.MARKET_STORE, data={}),
        dcc.Store(id=ids.AUDIT_DATA),
        # /api/me as last read (keys, their environment and status): the header badge, the
        # balance source and the Account page read it.
        dcc.Store(id=ids.ME_STORE),
        dcc.Store(id=ids.ME_REFRESH, data=0),
        dcc.Store(id=ids.CANCEL_RESULT),
        # The chart's closes out, its indicators back (dashboard/indicators.py).
        dcc.Store(id="chart-closes"),
        dcc.Store(id="indicator-store"),
        dcc.Store(id="indicator-applied"),
        header(),
        html.Main(className="app-main", children=[
            login_page(), register_page(), trade_page(), analytics_page(), audit_page(),
            account_page(),
        ]),
        html.Div(id=ids.TOASTS, className="toasts", **{"aria-live": "polite"}),
    ])
