"""Every component id of the dashboard's shell, in one place.

Layout and callbacks import these names instead of spelling ids, so a typo is an import error
and "who writes this store?" is a search for one name. The JS in `assets/` cannot import
Python: tests/unit/test_dashboard_ids.py checks that every id it names is laid out.

The order ticket keeps its ids at the top of its own module (issue 18, All-in-One style);
the stores it shares with the shell (`AUTH`, `MARKET_STORE`, `CHART_SETTINGS`, `ROUTE`) are
here, with their data shapes, and so are the chart's (`dashboard/chart.py`).
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------- shell
APP_ROOT: Final = "app-root"
URL: Final = "url"
# Rewrites the address bar without navigating (refresh=False tells no other Location, so
# Dash's page container does not draw the page again): the audited order goes in the URL.
URL_QUIET: Final = "url-quiet"
# {token, user: {id, email}} in localStorage, shared by every tab; the refresh token is an
# HttpOnly cookie no script reads (docs/security.md).
AUTH: Final = "auth"
# Every few seconds a clientside callback refreshes an access token about to expire
# (assets/05-session.js `keep`).
SESSION_TICK: Final = "session-tick"
CONFIG: Final = "config"
BOOT: Final = "boot"
# {page, symbol[, orderId]}: which page shows and the trade page's symbol, from the URL
# (`/trade/<SYMBOL>`, `/audit/<orderId>`).
ROUTE: Final = "route"
TOASTS: Final = "toasts"
LOGIN_NOTICE: Final = "login-notice"

# ---------------------------------------------------------------- header
MENU_TOGGLE: Final = "menu-toggle"
LOGO: Final = "logo"
ENV_BADGE: Final = "env-badge"
NAV: Final = "nav"
LIVE_WRAP: Final = "live-wrap"
LIVE_STATUS: Final = "live-status"
LIVE_LABEL: Final = "live-label"
USER_EMAIL: Final = "user-email"
THEME_TOGGLE: Final = "theme-toggle"
LOGOUT_BTN: Final = "logout-btn"

# ---------------------------------------------------------------- pages
PAGES: Final = ("login", "register", "trade", "history", "analytics", "audit", "account")
NAV_PAGES: Final = ("trade", "history", "analytics", "audit", "account")


def page(name: str) -> str:
    """The id of a page's root element (`page-trade`)."""
    if name not in PAGES:
        raise ValueError(f"no page {name!r}")
    return f"page-{name}"


def mounted(name: str) -> str:
    """The id of the store a page carries so its callbacks run when the page container
    inserts it (a callback runs on insertion only for inputs inserted with it)."""
    page(name)
    return f"{name}-mounted"


def nav_link(name: str) -> str:
    """The id of a page's link in the nav (`nav-audit`)."""
    if name not in NAV_PAGES:
        raise ValueError(f"no nav link for {name!r}")
    return f"nav-{name}"


# ---------------------------------------------------------------- login and registration
LOGIN_EMAIL: Final = "login-email"
LOGIN_PASSWORD: Final = "login-password"  # noqa: S105 - an element id, not a secret
LOGIN_BTN: Final = "login-btn"
LOGIN_ERROR: Final = "login-error"
TO_REGISTER: Final = "to-register"
REG_EMAIL: Final = "reg-email"
REG_PASSWORD: Final = "reg-password"  # noqa: S105 - an element id, not a secret
REG_API_KEY: Final = "reg-api-key"
REG_SECRET_KEY: Final = "reg-secret-key"  # noqa: S105 - an element id, not a secret
REGISTER_BTN: Final = "register-btn"
REGISTER_ERROR: Final = "register-error"
TO_LOGIN: Final = "to-login"

# ---------------------------------------------------------------- account stream and stores
# The user's SSE stream (dashboard/components EventStream): `url` and `stream` from a server
# callback that mints a stream token (dashboard/live_account.py), `message` merged into the
# three row stores by a clientside callback (assets/20-live.js), `status` drawn as the dot.
USER_STREAM: Final = "user-stream"
# {orders, trades, positions} read from REST on every (re)open of the stream (what a replay
# cannot send), or {clear: true} on sign-out; merged like the stream's events.
USER_SNAPSHOT: Final = "user-snapshot"
# Set when the stream says RESET (more was missed than it replays): read a snapshot again.
SNAPSHOT_DUE: Final = "snapshot-due"
# Rows as the API sends them, merged by id/version (docs/dashboard.md "Live account data").
ORDERS_STORE: Final = "orders-store"
TRADES_STORE: Final = "trades-store"
POSITIONS_STORE: Final = "positions-store"
# {symbol, price, change, balances, balancesError, rules, t}: the market on screen.
MARKET_STORE: Final = "market-store"
# {interval, indicators}: the chart's timeframe and indicators, in localStorage.
CHART_SETTINGS: Final = "chart-settings"
# ---------------------------------------------------------------- chart (dashboard/chart.py)
PAIR_NAME: Final = "pair-name"
PAIR_PRICE: Final = "pair-price"
PAIR_CHANGE: Final = "pair-change"
TF_GROUP: Final = "tf-group"
INDICATOR_TOGGLES: Final = "indicator-toggles"
CHART_ERROR: Final = "chart-error"
CHART_NOTE: Final = "chart-note"
PRICE_CHART: Final = "price-chart"
# {symbol, interval, indicators, dark}: what the chart shows; set only when it changes.
CHART_VIEW: Final = "chart-view"
# {key, symbol, interval, indicators, traces, palette, t0, n, lo, hi, last}: what was drawn.
CHART_META: Final = "chart-meta"
# The trade page's market SSE stream (EventStream): its URL from a server callback
# (dashboard/chart.py), its KLINE/TICKER events into the chart and the market store, its
# DEPTH/MARKET_TRADE events into the order book (assets/30-market.js, 60-order-book.js).
MARKET_STREAM: Final = "market-stream"
# {key, klines: [{t, o, h, l, c, v}], n}: the market stream's candles (assets/30-market.js).
CHART_TICKS: Final = "chart-ticks"
# Set when the market stream reopens after a gap: draw again from history.
CHART_RELOAD: Final = "chart-reload"
# {key, klines}: the live candles, at most once a second, for the indicators.
CHART_INDICATOR_REQUEST: Final = "chart-indicator-request"
# The page on screen (`route`'s page), set only when it changes: a symbol switch or a token
# refresh rewrites `route` but not the page, so what is about the page, not the symbol (the
# wallet card, /api/me, the commission rates), is not read again on every switch.
PAGE_SHOWN: Final = "page-shown"
# {key, traces, t, series}: the indicator series computed with the live candles.
CHART_INDICATORS: Final = "chart-indicators"
# {key, orders, fills}: the symbol's open priced orders and fills, slimmed in the browser.
CHART_OVERLAY_ROWS: Final = "chart-overlay-rows"
# {SYMBOL: rules}: /api/market/symbols, read once.
SYMBOLS_STORE: Final = "symbols-store"


def timeframe(interval: str) -> str:
    """The id of a timeframe button (`tf-1h`)."""
    return f"tf-{interval}"


ME_STORE: Final = "me-store"
ME_REFRESH: Final = "me-refresh"
CANCEL_RESULT: Final = "cancel-result"
# {balances: {ASSET: {free, locked}}, balancesError}: GET /api/trading/balances, read by a
# server callback every 15 s, on (re)connect and 400 ms after an order or trade event
# (`balances-due`, set by a clientside callback on the user stream's messages).
BALANCES_STORE: Final = "balances-store"
BALANCES_DUE: Final = "balances-due"
BALANCES_TICK: Final = "balances-tick"
# {SYMBOL: markPrice}: the API's marks (GET /api/trading/positions) every 5 s, for the
# symbols not on screen; the one on screen follows the live price.
MARKS_STORE: Final = "marks-store"
MARKS_TICK: Final = "marks-tick"
# [{id, title, body, kind, at}]: the toasts on screen (dashboard/toasts.py); each goes after
# TOAST_SECONDS, checked by `toast-tick`.
TOAST_STORE: Final = "toast-store"
TOAST_TICK: Final = "toast-tick"
# The ALERT events of the user stream, a list per batch: a toast each, and the alert list
# read again (dashboard/toasts.py).
ALERT_FIRED: Final = "alert-fired"

# ---------------------------------------------------------------- trade page: grids, alerts
TABLE_TABS: Final = "table-tabs"
TAB_POSITIONS: Final = "tab-positions"
TAB_ORDERS: Final = "tab-orders"
TAB_TRADES: Final = "tab-trades"
ORDERS_TABLE: Final = "orders-table"
ORDERS_GRID: Final = "orders-grid"
ORDERS_EXPORT: Final = "orders-export"
# "Cancel all" of the symbol on screen, behind a confirmation.
ORDERS_CANCEL_ALL: Final = "orders-cancel-all"
ORDERS_CANCEL_ALL_CONFIRM: Final = "orders-cancel-all-confirm"
# Orders, trades and positions of the symbol on screen only.
HIDE_OTHER_PAIRS: Final = "hide-other-pairs"
# Every trade with its fee for a date range, as CSV (for taxes).
TRADES_CSV_FROM: Final = "trades-csv-from"
TRADES_CSV_TO: Final = "trades-csv-to"
TRADES_CSV_BTN: Final = "trades-csv"
TRADES_CSV_DOWNLOAD: Final = "trades-csv-download"
TRADES_TABLE: Final = "trades-table"
TRADES_GRID: Final = "trades-grid"
POSITIONS_TABLE: Final = "positions-table"
POSITIONS_GRID: Final = "positions-grid"
BALANCE_SOURCE: Final = "balance-source"
ALERTS_PANEL: Final = "alerts-panel"
ALERT_PRICE: Final = "alert-price"
ALERT_ADD: Final = "alert-add"
ALERT_ERROR: Final = "alert-error"
ALERT_LIST: Final = "alert-list"
ALERTS_REFRESH: Final = "alerts-refresh"


def alert_remove(alert_id: str) -> dict[str, str]:
    """The pattern-matching id of one alert's remove button."""
    return {"type": ALERT_REMOVE_TYPE, "id": alert_id}


ALERT_REMOVE_TYPE: Final = "alert-remove"

# ---------------------------------------------------------------- analytics
ANALYTICS_REFRESH: Final = "analytics-refresh"
ANALYTICS_SUMMARY: Final = "analytics-summary"
ANALYTICS_ERROR: Final = "analytics-error"
AN_PNL: Final = "an-pnl"
AN_VOLUME: Final = "an-volume"
AN_LATENCY: Final = "an-latency"
AN_STATUS: Final = "an-status"
AN_THROUGHPUT: Final = "an-throughput"

# ---------------------------------------------------------------- audit
AUDIT_ORDER: Final = "audit-order"
AUDIT_LOAD: Final = "audit-load"
AUDIT_EXPORT_JSON: Final = "audit-export-json"
AUDIT_EXPORT_CSV: Final = "audit-export-csv"
AUDIT_DOWNLOAD: Final = "audit-download"
AUDIT_ERROR: Final = "audit-error"
AUDIT_CHAIN: Final = "audit-chain"
AUDIT_TIMELINE: Final = "audit-timeline"
AUDIT_VERSION: Final = "audit-version"
AUDIT_STATE: Final = "audit-state"
AUDIT_DATA: Final = "audit-data"


def audit_event(version: int | str) -> str:
    """The id of one event in the audit timeline (`audit-ev-3`)."""
    return f"audit-ev-{version}"


# ---------------------------------------------------------------- account page
ACCOUNT_EMAIL: Final = "account-email"
KEYS_PANEL: Final = "keys-panel"
KEYS_STATUS: Final = "keys-status"
KEYS_REJECTED: Final = "keys-rejected"
KEYS_API_KEY: Final = "keys-api-key"
KEYS_SECRET_KEY: Final = "keys-secret-key"  # noqa: S105 - an element id, not a secret
KEYS_ENV: Final = "keys-env"
KEYS_SAVE: Final = "keys-save"
KEYS_REMOVE: Final = "keys-remove"
KEYS_MESSAGE: Final = "keys-message"
PASSWORD_PANEL: Final = "password-panel"  # noqa: S105 - an element id, not a secret
PW_CURRENT: Final = "pw-current"
PW_NEW: Final = "pw-new"
PW_NEW2: Final = "pw-new2"
PW_CHANGE: Final = "pw-change"
PW_MESSAGE: Final = "pw-message"
SESSIONS_PANEL: Final = "sessions-panel"
SIGNOUT_ALL: Final = "signout-all"
SIGNOUT_MESSAGE: Final = "signout-message"


def static_ids() -> dict[str, str]:
    """Every plain id above by its constant's name (what the tests check)."""
    return {name: value for name, value in globals().items()
            if name.isupper() and isinstance(value, str) and not name.endswith("_TYPE")}


# ---------------------------------------------------- history (dashboard/history_view.py)
HISTORY_KIND: Final = "history-kind"        # orders | trades
HISTORY_SYMBOL: Final = "history-symbol"
HISTORY_SIDE: Final = "history-side"
HISTORY_STATUS: Final = "history-status"
HISTORY_FROM: Final = "history-from"
HISTORY_TO: Final = "history-to"
HISTORY_SEARCH: Final = "history-search"
HISTORY_PAGE_SIZE: Final = "history-page-size"
HISTORY_MORE: Final = "history-more"
HISTORY_GRID: Final = "history-grid"
HISTORY_INFO: Final = "history-info"
HISTORY_ERROR: Final = "history-error"
HISTORY_CURSOR: Final = "history-cursor"    # {kind, params, cursor}: the next page's request
