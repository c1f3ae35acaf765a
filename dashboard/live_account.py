"""The account side of the live desk: the user stream, the stream's status dot, balances, the
API's marks, and the rows of the Trades and Positions grids.

The user stream is an `EventStream` component (dashboard/components): its URL, with a
one-use stream token, comes from `user_stream_url` here, again whenever the component says
the source closed for good; every (re)open reads a REST snapshot (`user_snapshot`). A
clientside callback (`assets/20-live.js`, on the click -> FILLED path) merges the stream's
events and the snapshots into `orders-store`, `trades-store` and `positions-store`, as the
API sends them. Everything off that path is here: the rows are formatted with `Decimal`
(never floats), and unrealized PnL is re-marked with the latest price (issue 18, defect 1):
the live price of the symbol on screen (at most once a second, through the ticket's gated
market store), the API's marks (every MARKS_MS) for the others.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

import dash
import httpx
from dash import (
    ClientsideFunction,
    Input,
    Output,
    Patch,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
)
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, rows_of, token_of
from dashboard.components import EventStream
from dashboard.ticket import TICKET_MARKET, decimal_or_none, decimals, plain, rules_of

BALANCES_MS = 15_000
MARKS_MS = 5_000
NONE = "—"
# The user stream's named events (adapters/api: the SSE route of /api/stream).
USER_EVENTS = ("ORDER_UPDATE", "TRADE", "POSITION", "RESET", "ALERT")
# Each batch of the user stream repeats its last USER_KEEP events, so none is lost when Dash
# runs the merge once for two batches; the merge skips what it has seen.
USER_KEEP = 200
# What a (re)open reads from REST: the rows a replay of the stream cannot send.
SNAPSHOT_READS = (("orders", "/api/trading/orders?limit=500"),
                  ("trades", "/api/trading/trades?limit=500"),
                  ("positions", "/api/trading/positions"))
# The dot's class and its words, by the stream's state.
STATUS = {"live": "live", "connecting": "reconnecting", "down": "disconnected"}

_api_url = ""
_transport: httpx.BaseTransport | None = None


def configure(api_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url, _transport
    _api_url, _transport = api_url.rstrip("/"), transport


def _client(token: str | None) -> ApiClient:
    return ApiClient(_api_url, token, transport=_transport)


def stores() -> list[Any]:
    """The account stores and timers of the shell's layout."""
    return [
        EventStream(id=ids.USER_STREAM, events=list(USER_EVENTS), batchMs=100, keep=USER_KEEP),
        dcc.Store(id=ids.USER_SNAPSHOT), dcc.Store(id=ids.SNAPSHOT_DUE),
        dcc.Store(id=ids.BALANCES_STORE, data={}),
        dcc.Store(id=ids.BALANCES_DUE),
        dcc.Interval(id=ids.BALANCES_TICK, interval=BALANCES_MS, disabled=True),
        dcc.Store(id=ids.MARKS_STORE, data={}),
        dcc.Interval(id=ids.MARKS_TICK, interval=MARKS_MS, disabled=True),
    ]


# ---- pure parts -------------------------------------------------------------------------
def number(value: Any, dp: int | None = None) -> str:
    """A decimal for a grid cell: `dp` places (half up, never "-0.00"), or without `dp` the
    exact value with trailing zeros dropped ("0.00100000" -> "0.001"); "—" when unknown."""
    if value is None or value == "":
        return NONE
    amount = decimal_or_none(value)
    if amount is None:
        return str(value)
    if dp is not None:
        amount = amount.quantize(Decimal(1).scaleb(-dp), ROUND_HALF_UP)
        return format(abs(amount) if amount == 0 else amount, "f")
    return plain(abs(amount) if amount == 0 else amount)


def balances_of(data: Any) -> dict[str, dict[str, str]]:
    """{ASSET: {free, locked}} from `[{asset, free, locked}]`, `{balances: [...]}` or
    `{ASSET: {free, locked}}`."""
    rows: Any = data.get("balances", data) if isinstance(data, dict) else data
    if isinstance(rows, dict):
        rows = [{"asset": k, **v} for k, v in rows.items() if isinstance(v, dict)]
    return {str(b["asset"]): {"free": str(b.get("free")), "locked": str(b.get("locked") or "0")}
            for b in rows or [] if isinstance(b, dict) and b.get("asset")}


def price_dp(rules: dict[str, Any]) -> int:
    """How many decimals a symbol's prices show (its tick size; 2 when unknown)."""
    return decimals(rules["tickSize"]) if rules.get("tickSize") else 2


def fee_text(trade: dict[str, Any], rules: dict[str, Any]) -> str:
    """A fee in its own asset, and its value in the quote asset when paid in the base."""
    asset = str(trade.get("commissionAsset") or "")
    out = f"{number(trade.get('commission'))} {asset}".rstrip()
    fee, price = decimal_or_none(trade.get("commission")), decimal_or_none(trade.get("price"))
    if asset and asset == rules["baseAsset"] and fee and price is not None:
        out += f" (≈ {number(fee * price, 2)} {rules['quoteAsset']})"
    return out


def trade_row(trade: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    """One row of the Trades grid (keyed by order id and trade id)."""
    return {
        "rowId": f"{trade.get('orderId')}:{trade.get('tradeId')}", "time": trade.get("time"),
        "symbol": trade.get("symbol"), "side": trade.get("side"),
        "price": number(trade.get("price"), price_dp(rules)),
        "quantity": number(trade.get("quantity")), "total": number(trade.get("quoteQuantity"), 2),
        "fee": fee_text(trade, rules), "role": "maker" if trade.get("isMaker") else "taker",
    }


def mark_of(position: dict[str, Any], marks: dict[str, Any], market: dict[str, Any]) -> Any:
    """The newest price known for a position: the live price of the symbol on screen, else
    the API's last mark."""
    symbol = position.get("symbol")
    if market.get("symbol") == symbol and decimal_or_none(market.get("price")):
        return market["price"]
    return marks.get(str(symbol)) or position.get("markPrice")


def position_row(position: dict[str, Any], marks: dict[str, Any], market: dict[str, Any],
                 rules: dict[str, Any]) -> dict[str, Any]:
    """One row of the Positions grid: unrealized PnL = (mark - entry) * size at the newest
    mark; fees in the quote asset plus those paid in other assets."""
    dp = price_dp(rules)
    mark = mark_of(position, marks, market)
    size = decimal_or_none(position.get("quantity"))
    entry = decimal_or_none(position.get("averageEntryPrice"))
    last = decimal_or_none(mark)
    unrealized: Any = position.get("unrealizedPnl")
    if last is not None and size is not None and entry is not None:
        unrealized = (last - entry) * size
    fees = f"{number(position.get('fees'), 2)} {rules['quoteAsset']}"
    for asset, amount in (position.get("otherFees") or {}).items():
        fees += f" + {number(amount)} {asset}"
    return {"symbol": position.get("symbol"), "size": number(position.get("quantity")),
            "entry": number(position.get("averageEntryPrice"), dp),
            "mark": number(mark, dp) if mark else NONE, "unrealized": number(unrealized, 2),
            "realized": number(position.get("realizedPnl"), 2), "fees": fees}


def shown(position: dict[str, Any]) -> bool:
    """A position is listed while open or once it has realized something."""
    return any(decimal_or_none(position.get(k)) != 0 for k in ("quantity", "realizedPnl"))


def symbol_rules(symbols: dict[str, Any] | None, symbol: Any) -> dict[str, Any]:
    """A symbol's rules (tick size, base and quote asset) from the symbols store, which
    dashboard/chart.py reads from the API; defaults while it is unknown."""
    known = (symbols or {}).get(str(symbol)) or {}
    return rules_of({"symbol": str(symbol or ""), "rules": known})


# ---- callbacks --------------------------------------------------------------------------
# The dot in the header: green live, amber reconnecting, red down. Clientside: it is how a
# trader learns the connection dropped, and a server hop made that 0.1-0.2 s later on a quiet
# machine (docs/dashboard.md, timings of 2026-12-06 03:55).
clientside_callback(
    f"""function (live) {{
        const names = {json.dumps(STATUS)};
        let status = String(live || "down");
        if (!(status in names)) status = "down";
        return ["live-dot " + status, names[status], names[status]];
    }}""",
    Output(ids.LIVE_STATUS, "className"), Output(ids.LIVE_STATUS, "title"),
    Output(ids.LIVE_LABEL, "children"), Input(ids.USER_STREAM, "status"))


@callback(Output(ids.USER_STREAM, "url"), Output(ids.USER_STREAM, "stream"),
          Input(ids.AUTH, "data"), Input(ids.USER_STREAM, "expired"),
          State(ids.CONFIG, "data"), State(ids.USER_STREAM, "stream"),
          State(ids.USER_STREAM, "url"))
def user_stream_url(auth: Any, _expired: Any, config: Any, stream: Any,
                    url: Any) -> tuple[str | None, str | None]:
    """The user stream's URL with a fresh stream token (good for one connection): on sign-in,
    and again each time the component reports the source closed for good. A refreshed
    access token leaves an open stream alone; another user is another stream (no resume)."""
    token = token_of(auth)
    if token is None:
        return None, None
    user = (auth.get("user") or {}) if isinstance(auth, dict) else {}
    key = f"user:{user.get('id') or user.get('email') or 'me'}"
    if f"{ids.USER_STREAM}.expired" not in ctx.triggered_prop_ids and key == stream and url:
        raise PreventUpdate
    try:
        minted = _client(token).post("/api/stream-token", {})
    except ApiClientError:
        # The component tries its last URL again and asks once more after a while.
        raise PreventUpdate from None
    api = str((config or {}).get("apiUrl") or "").rstrip("/")
    return f"{api}/api/stream?token={quote(str(minted['token']), safe='')}", key


@callback(Output(ids.USER_SNAPSHOT, "data"),
          Input(ids.USER_STREAM, "opened"), Input(ids.SNAPSHOT_DUE, "data"),
          Input(ids.AUTH, "data"))
def user_snapshot(_opened: Any, _due: Any, auth: Any) -> dict[str, Any]:
    """The account's rows from REST on every (re)open of the user stream and on its RESET
    (what it could not replay); merged like the stream's events, so a row seen twice is a
    no-op. Signed out: clear the rows."""
    token = token_of(auth)
    if token is None:
        return {"clear": True}
    # Dash may bring several triggers in one call (the auth store loading with the first
    # open): read when the stream opened or asked, whatever else changed.
    if not {f"{ids.USER_STREAM}.opened", f"{ids.SNAPSHOT_DUE}.data"} & set(ctx.triggered_prop_ids):
        raise PreventUpdate  # signed in: the stream's first open reads it
    client, out = _client(token), {}
    for key, path in SNAPSHOT_READS:
        try:
            out[key] = rows_of(client.get(path), key)
        except ApiClientError:
            continue  # what could be read; the next (re)open reads again
    return out


def _live(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="live", function_name=name)


clientside_callback(
    _live("merge"),
    Output(ids.ORDERS_STORE, "data"), Output(ids.TRADES_STORE, "data"),
    Output(ids.POSITIONS_STORE, "data"), Output(ids.ALERT_FIRED, "data"),
    # The Orders grid's rows too, on the click -> FILLED path: one renderer hop fewer than
    # through orders-store (app.py draws them again when the symbols' rules arrive).
    Output(ids.ORDERS_GRID, "rowData", allow_duplicate=True),
    Input(ids.USER_STREAM, "message"), Input(ids.USER_SNAPSHOT, "data"),
    State(ids.ORDERS_STORE, "data"), State(ids.TRADES_STORE, "data"),
    State(ids.POSITIONS_STORE, "data"), State(ids.SYMBOLS_STORE, "data"),
    prevent_initial_call=True,
)
# RESET (more was missed than a replay sends): read a snapshot again. A callback of its own:
# as an output of the merge, it closed a loop (merge -> snapshot-due -> user_snapshot ->
# user-snapshot -> merge) that made Dash hold every merge for a server round trip, which
# doubled click -> FILLED (docs/dashboard.md, timings of 2026-12-06 06:25).
clientside_callback(
    _live("resetDue"), Output(ids.SNAPSHOT_DUE, "data"),
    Input(ids.USER_STREAM, "message"), prevent_initial_call=True,
)
clientside_callback(
    _live("balancesDue"), Output(ids.BALANCES_DUE, "data"),
    Input(ids.USER_STREAM, "message"), prevent_initial_call=True,
)


@callback(Output(ids.USER_EMAIL, "children"), Output(ids.LOGOUT_BTN, "style"),
          Input(ids.AUTH, "data"))
def show_user(auth: Any) -> tuple[str, dict[str, str]]:
    """Who is signed in, and "Log out" only then."""
    if token_of(auth) is None:
        return "", {"display": "none"}
    return str(((auth or {}).get("user") or {}).get("email") or ""), {"display": ""}


@callback(Output(ids.BALANCES_TICK, "disabled"), Output(ids.MARKS_TICK, "disabled"),
          Input(ids.AUTH, "data"), Input(ids.ROUTE, "data"))
def timers(auth: Any, route: dict[str, Any] | None) -> tuple[bool, bool]:
    """Balances are polled while signed in; marks only on the trade page, where they show."""
    signed_in = token_of(auth) is not None
    return not signed_in, not (signed_in and (route or {}).get("page") == "trade")


@callback(Output(ids.BALANCES_STORE, "data"),
          Input(ids.AUTH, "data"), Input(ids.USER_STREAM, "status"),
          Input(ids.BALANCES_DUE, "data"), Input(ids.BALANCES_TICK, "n_intervals"))
def load_balances(auth: Any, live: str | None, _due: Any, _tick: Any) -> Any:
    """Balances are exchange snapshots the worker stores as they arrive: read on sign-in,
    on every (re)connect, after an order or trade event and every BALANCES_MS."""
    token = token_of(auth)
    if not token:
        return {}
    if live != "live":  # read again once the stream is back
        raise dash.exceptions.PreventUpdate
    try:
        data = _client(token).get("/api/trading/balances")
    except ApiClientError as exc:
        patch = Patch()  # the last balances stay, with what went wrong
        patch["balancesError"] = exc.message
        return patch
    return {"balances": balances_of(data), "balancesError": None}


@callback(Output(ids.MARKS_STORE, "data"), Input(ids.MARKS_TICK, "n_intervals"),
          State(ids.AUTH, "data"), prevent_initial_call=True)
def load_marks(_n: Any, auth: Any) -> dict[str, Any]:
    """The API's mark of every position (GET /api/trading/positions)."""
    token = token_of(auth)
    if not token:
        return {}
    try:
        positions = _client(token).get("/api/trading/positions")
    except ApiClientError:
        raise dash.exceptions.PreventUpdate from None  # the next round
    return {str(p["symbol"]): p["markPrice"] for p in positions or []
            if isinstance(p, dict) and p.get("symbol") and p.get("markPrice")}


@callback(Output(ids.TRADES_GRID, "rowData"), Input(ids.TRADES_STORE, "data"),
          Input(ids.SYMBOLS_STORE, "data"))
def trade_rows(trades: list[dict[str, Any]] | None,
               symbols: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The trades store into the Trades grid (AG Grid keys rows by `rowId`)."""
    return [trade_row(t, symbol_rules(symbols, t.get("symbol"))) for t in trades or []
            if isinstance(t, dict)]


@callback(Output(ids.POSITIONS_GRID, "rowData"), Input(ids.POSITIONS_STORE, "data"),
          Input(ids.MARKS_STORE, "data"), Input(TICKET_MARKET, "data"),
          Input(ids.SYMBOLS_STORE, "data"))
def position_rows(positions: list[dict[str, Any]] | None, marks: dict[str, Any] | None,
                  market: dict[str, Any] | None,
                  symbols: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The positions store into the Positions grid, re-marked with the newest prices."""
    return [position_row(p, marks or {}, market or {}, symbol_rules(symbols, p.get("symbol")))
            for p in positions or [] if isinstance(p, dict) and shown(p)]
