"""The price chart of the trade desk, drawn on the Dash server: its layout and its callbacks.

Data flow (ids in `dashboard/ids.py`):

- `CHART_VIEW` ({symbol, interval, indicators, dark}) is set by a clientside gate
  (`assets/30-market.js`) from `route`, `chart-settings` and the theme, only when one of
  them really changes (a token refresh rewrites `route` with the same value).
- `market_stream_url` (server) gives the tab's market stream (`MARKET_STREAM`, an
  EventStream component) the URL of that symbol and interval, with a one-use stream token.
- `draw` (server): the view -> the whole figure. History from the API's klines route through
  `api_client` (cached here for a few seconds, so a switch back and forth or many tabs on one
  symbol cost the API one call), indicators from `dashboard/indicators.py`, theme palette,
  the "needs N candles" note; `CHART_META` says what was drawn (symbol, interval, trace
  indices, price range, palette) for the callbacks below.
- Live ticks: a clientside callback (`receive`) turns the stream's batches into
  `MARKET_STORE` (price, 24 h change, rules: what the ticket reads) and `CHART_TICKS`; another
  (`tick`) patches the last candle in place or appends one
  (`dash_clientside.Patch`), so a tick never takes a server round trip. At most once a second
  it also asks `refresh_indicators` (server) for the indicator series with the live candle
  (`CHART_INDICATOR_REQUEST`: the live candles only, never the closes of the chart); they
  come back in `CHART_INDICATORS` and are patched in if that figure is still on screen.
- Overlays: a clientside filter slims `orders-store` / `trades-store` to this symbol's open
  priced orders and fills (`CHART_OVERLAY_ROWS`: 500 rows never travel to the server for
  one line); `overlays` (server) patches the fill markers, the order lines and the edge
  labels into the figure.
- Symbols: `load_symbols` (server) reads `/api/market/symbols` once into `SYMBOLS_STORE`
  (rules by symbol) and the ticket's dropdown; `receive` puts the symbol's into
  `MARKET_STORE`.

Prices here are display floats, as Plotly draws them; no money is computed in this module.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

import dash
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
    html,
)
from dash.exceptions import PreventUpdate

from dashboard import ids, indicators
from dashboard.api_client import SYMBOL_RE, ApiClient, ApiClientError, rows_of, token_of
from dashboard.components import EventStream
from dashboard.ticket import SYMBOL_SELECT

DEFAULT_SYMBOL = "BTCUSDT"
TIMEFRAMES = (("1m", "1m"), ("5m", "5m"), ("1h", "1h"), ("1D", "1d"), ("1W", "1w"))
# The market stream's batches, at most twice a second: each re-renders the dcc.Graph, and at
# four a second the main thread ran long tasks often enough that a dropped stream was noticed
# ~0.1 s later (docs/dashboard.md, 2026-12-06). Binance itself sends a kline every 1-2 s.
MARKET_BATCH_MS = 500
INDICATORS = (("SMA 20", "sma"), ("EMA 20", "ema"), ("Bollinger", "bb"), ("RSI 14", "rsi"))
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000,
               "1w": 604_800_000}
HISTORY = 300  # candles per view
# A draw reads history at most this old (the API itself caches klines for 2 s); an indicator
# refresh merges the live candles into history up to REFRESH_MAX_AGE old.
DRAW_MAX_AGE, REFRESH_MAX_AGE = 2.0, 10.0
# Indicators need this many candles; fewer and the note under the chart says so.
NEEDS = {"sma": 20, "ema": 20, "bb": 20, "rsi": 15}
NAMES = {"sma": "SMA 20", "ema": "EMA 20", "bb": "Bollinger", "rsi": "RSI 14"}
# Fixed trace indices, so a tick or an overlay can patch its trace without the figure.
CANDLES, VOLUME, BUYS, SELLS, FIRST_INDICATOR = 0, 1, 2, 3, 4
STOP_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
LINE_TYPES = ("LIMIT", "LIMIT_MAKER", *STOP_TYPES)

_api_url = ""
_history: dict[tuple[str, str], tuple[float, list[dict[str, float]]]] = {}
_history_lock = threading.Lock()


def configure(api_url: str) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url
    _api_url = api_url.rstrip("/")


# ---- pure parts -------------------------------------------------------------------------
def palette(dark: bool) -> dict[str, str]:
    """The chart's colours in the light or the dark theme."""
    if dark:
        return {"bg": "#131722", "grid": "#242a38", "text": "#c9d1e0", "up": "#26a69a",
                "down": "#ef5350"}
    return {"bg": "#ffffff", "grid": "#eceff4", "text": "#2b3040", "up": "#16a34a",
            "down": "#dc2626"}


def candle(k: dict[str, Any]) -> dict[str, float]:
    """A kline of the API ({time | openTime, open, high, low, close, volume}) as floats."""
    return {"t": int(k["time"] if k.get("time") is not None else k["openTime"]),
            "o": float(k["open"]), "h": float(k["high"]), "l": float(k["low"]),
            "c": float(k["close"]), "v": float(k["volume"])}


def merge_live(history: list[dict[str, float]], live: list[dict[str, Any]],
               step: int) -> list[dict[str, float]] | None:
    """History with the live candles (replacing the last, or appended); None when the live
    candles leave a gap (history too old: read it again)."""
    out = list(history)
    parsed: list[dict[str, float]] = []
    for raw in live:
        try:
            parsed.append({"t": int(raw["t"]),
                           **{key: float(raw[key]) for key in ("o", "h", "l", "c", "v")}})
        except (KeyError, TypeError, ValueError):
            continue
    for k_t in sorted(parsed, key=lambda k: k["t"]):
        t = int(k_t["t"])
        if out and t == out[-1]["t"]:
            out[-1] = k_t
        elif not out or t > out[-1]["t"]:
            if out and t - out[-1]["t"] > step:
                return None
            out.append(k_t)
    return out[-HISTORY:]


def indicator_note(wanted: list[str], n: int) -> str:
    """What the timeframe is too short for ("SMA 20 needs at least 20 candles; ...")."""
    short = [i for i in wanted if i in NEEDS and n < NEEDS[i]]
    if not short or not n:
        return ""
    return (", ".join(NAMES[i] for i in short) + (" need" if len(short) > 1 else " needs")
            + f" at least {max(NEEDS[i] for i in short)} candles; this timeframe has {n}."
            " Pick a shorter timeframe.")


def _ind_traces(wanted: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(series name, trace style) of each indicator trace, in the figure's order."""
    out: list[tuple[str, dict[str, Any]]] = []
    if "sma" in wanted:
        out.append(("sma", {"name": "SMA 20", "line": {"color": "#f59e0b", "width": 1.4}}))
    if "ema" in wanted:
        out.append(("ema", {"name": "EMA 20", "line": {"color": "#8b5cf6", "width": 1.4}}))
    if "bb" in wanted:
        band = {"color": "#3b82f6", "width": 1, "dash": "dot"}
        out.append(("bbUpper", {"name": "BB upper", "line": band}))
        out.append(("bbLower", {"name": "BB lower", "line": band, "fill": "tonexty",
                                "fillcolor": "rgba(59,130,246,0.06)"}))
    if "rsi" in wanted:
        out.append(("rsi", {"name": "RSI 14", "yaxis": "y3",
                            "line": {"color": "#ec4899", "width": 1.2}}))
    return out


def indicator_series(candles: list[dict[str, float]], wanted: list[str]) -> dict[str, Any]:
    """The wanted series for these candles, by trace series name."""
    return indicators.compute({"t": [k["t"] for k in candles], "c": [k["c"] for k in candles],
                               "want": wanted})


def figure(symbol: str, interval: str, candles: list[dict[str, float]], wanted: list[str],
           dark: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole figure (overlays empty: `overlays` patches them in) and its meta."""
    pal = palette(dark)
    x = [k["t"] for k in candles]
    show_rsi = "rsi" in wanted
    data: list[dict[str, Any]] = [
        {"type": "candlestick", "name": symbol, "x": x, "xaxis": "x", "yaxis": "y",
         "open": [k["o"] for k in candles], "high": [k["h"] for k in candles],
         "low": [k["l"] for k in candles], "close": [k["c"] for k in candles],
         "increasing": {"line": {"color": pal["up"]}, "fillcolor": pal["up"]},
         "decreasing": {"line": {"color": pal["down"]}, "fillcolor": pal["down"]},
         "showlegend": False},
        {"type": "bar", "name": "Volume", "x": x, "y": [k["v"] for k in candles],
         "yaxis": "y2", "showlegend": False, "hovertemplate": "%{y}<extra>volume</extra>",
         "marker": {"color": [pal["up"] if k["c"] >= k["o"] else pal["down"] for k in candles],
                    "opacity": 0.5}},
    ]
    for side in ("BUY", "SELL"):
        data.append({
            "type": "scatter", "mode": "markers", "name": "Buys" if side == "BUY" else "Sells",
            "x": [], "y": [], "text": [], "hovertemplate": "%{text}<extra></extra>",
            "showlegend": False,
            "marker": {"symbol": "triangle-up" if side == "BUY" else "triangle-down",
                       "size": 11, "color": pal["up"] if side == "BUY" else pal["down"],
                       "line": {"color": pal["text"], "width": 1}},
        })
    series = indicator_series(candles, wanted) if wanted else {}
    traces: dict[str, int] = {}
    for name, style in _ind_traces(wanted):
        traces[name] = len(data)
        data.append({"type": "scatter", "mode": "lines", "x": x, "y": series.get(name, []),
                     **style})
    layout: dict[str, Any] = {
        "uirevision": f"{symbol}:{interval}", "height": 460,
        "margin": {"l": 10, "r": 60, "t": 10, "b": 30},
        "paper_bgcolor": pal["bg"], "plot_bgcolor": pal["bg"],
        "font": {"color": pal["text"], "size": 11},
        "showlegend": bool(wanted),
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "font": {"size": 10}},
        "xaxis": {"type": "date", "rangeslider": {"visible": False}, "gridcolor": pal["grid"],
                  "showspikes": True, "spikemode": "across", "spikethickness": 1},
        "yaxis": {"side": "right", "gridcolor": pal["grid"],
                  "domain": [0.42, 1] if show_rsi else [0.24, 1], "fixedrange": False},
        "yaxis2": {"side": "right", "gridcolor": pal["grid"],
                   "domain": [0.24, 0.38] if show_rsi else [0, 0.2], "showticklabels": False},
        "shapes": [], "annotations": [], "hovermode": "x", "dragmode": "pan",
    }
    if show_rsi:
        layout["yaxis3"] = {"side": "right", "gridcolor": pal["grid"], "domain": [0, 0.18],
                            "range": [0, 100], "tickvals": [30, 70]}
    meta = {
        "key": f"{symbol}:{interval}", "symbol": symbol, "interval": interval,
        "indicators": wanted, "traces": traces, "dark": dark,
        "up": pal["up"], "down": pal["down"], "bg": pal["bg"], "text": pal["text"],
        "t0": x[0] if x else None, "n": len(x),
        "lo": min((k["l"] for k in candles), default=None),
        "hi": max((k["h"] for k in candles), default=None),
        "last": candles[-1]["c"] if candles else None,
    }
    return {"data": data, "layout": layout}, meta


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _time_ms(value: Any) -> float | None:
    """A trade's time: epoch ms, or an ISO-8601 text."""
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def fill_markers(fills: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Buys and Sells markers, each on the candle its fill happened in (a fill drawn at its
    own time, after the last candle's open, would widen the x axis: a blank strip)."""
    t0 = meta.get("t0")
    step = INTERVAL_MS.get(str(meta.get("interval")), 0)
    out: dict[str, dict[str, Any]] = {}
    for side, name in (("BUY", "Buys"), ("SELL", "Sells")):
        xs, ys, texts = [], [], []
        for f in fills:
            if str(f.get("side", "")).upper() != side:
                continue
            t, price = _time_ms(f.get("time")), _float(f.get("price"))
            if t is None or price is None or t0 is None or t < t0:
                continue
            xs.append(int(t0 + (t - t0) // step * step) if step else int(t))
            ys.append(price)
            texts.append(f"{side} {f.get('quantity')} @ {f.get('price')}")
        out[name] = {"x": xs, "y": ys, "text": texts}
    return out


def order_lines(orders: list[dict[str, Any]], meta: dict[str, Any]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(shapes, annotations) for open limit, stop and OCO orders: a line at the price (a
    stop: dash-dot at its trigger until triggered), or an edge label when the order is far
    outside the candles (a line there would squash them; within 5 % of the last close an
    order is always a line)."""
    lo, hi, last = meta.get("lo"), meta.get("hi"), meta.get("last") or 0
    pad = max((hi - lo) * 0.15, last * 0.05) if lo is not None and hi is not None else 0
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for o in orders:
        kind = str(o.get("type", "")).upper()
        if kind not in LINE_TYPES or not o.get("price"):
            continue
        color = meta["up"] if str(o.get("side", "")).upper() == "BUY" else meta["down"]
        leg = "" if o.get("orderListId") is None else ("TP " if kind == "LIMIT_MAKER" else "SL ")
        what = f"{leg}{o.get('side')} {o.get('quantity')}"
        if kind in STOP_TYPES and o.get("stopPrice") and not o.get("stopTriggered"):
            y, label, dash_ = _float(o["stopPrice"]), \
                f"{what} stop {o['stopPrice']} → {o['price']}", "dashdot"
        else:
            y, label, dash_ = _float(o["price"]), f"{what} @ {o['price']}", "dash"
        if y is None:
            continue
        font = {"size": 10, "color": color}
        if lo is not None and hi is not None and (y < lo - pad or y > hi + pad):
            above = y > hi
            notes.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y domain",
                          "y": 1 if above else 0, "yanchor": "top" if above else "bottom",
                          "text": label + (" ↑" if above else " ↓"), "showarrow": False,
                          "font": font, "bgcolor": meta["bg"]})
            continue
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                       "y0": y, "y1": y, "line": {"color": color, "width": 1, "dash": dash_}})
        notes.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": y,
                      "yanchor": "bottom", "text": label, "showarrow": False, "font": font})
    return shapes, notes


def normalise_symbol(s: dict[str, Any]) -> dict[str, Any]:
    """A symbol's rules as the ticket reads them (stepSize, tickSize, base/quote assets)."""
    out = dict(s)
    for f in s.get("filters") or []:
        kind = f.get("filterType")
        if kind == "LOT_SIZE":
            out.setdefault("stepSize", f.get("stepSize"))
            out.setdefault("minQty", f.get("minQty"))
        elif kind == "PRICE_FILTER":
            out.setdefault("tickSize", f.get("tickSize"))
        elif kind in ("NOTIONAL", "MIN_NOTIONAL"):
            out.setdefault("minNotional", f.get("minNotional"))
    out["quoteAsset"] = out.get("quoteAsset") or "USDT"
    out["baseAsset"] = out.get("baseAsset") or str(out.get("symbol", "")).removesuffix(
        out["quoteAsset"])
    return out


# ---- the API, through a small cache -----------------------------------------------------
def history(symbol: str, interval: str, token: str | None,
            max_age: float = DRAW_MAX_AGE) -> list[dict[str, float]]:
    """The last HISTORY candles, oldest first (ApiClientError when the API says no)."""
    key = (symbol, interval)
    with _history_lock:
        hit = _history.get(key)
    if hit is not None and time.monotonic() - hit[0] < max_age:
        return hit[1]
    rows = rows_of(ApiClient(_api_url, token).get(f"/api/market/{symbol}/klines",
                                                  {"interval": interval, "limit": HISTORY}),
                   "klines")
    candles = sorted((candle(k) for k in rows), key=lambda k: k["t"])
    with _history_lock:
        if len(_history) > 200:
            _history.clear()
        _history[key] = (time.monotonic(), candles)
    return candles


# ---- layout -----------------------------------------------------------------------------
def layout() -> html.Div:
    """The pair bar (name, price, change, timeframes, indicator toggles), the error and
    note lines, the graph and the chart's stores."""
    return html.Div(className="panel chart-panel", children=[
        html.Div(className="pair-bar", children=[
            html.Span(DEFAULT_SYMBOL, id=ids.PAIR_NAME, className="pair-name"),
            html.Span("—", id=ids.PAIR_PRICE, className="pair-price mono"),
            html.Span("—", id=ids.PAIR_CHANGE, className="pair-change mono"),
            html.Div(className="tf-group", id=ids.TF_GROUP, children=[
                html.Button(label, id=ids.timeframe(value), className="tf-btn", n_clicks=0,
                            **{"data-interval": value})
                for label, value in TIMEFRAMES
            ]),
            dcc.Checklist(id=ids.INDICATOR_TOGGLES, className="indicator-toggles",
                          persistence=True, persistence_type="local",
                          options=[{"label": lab, "value": v} for lab, v in INDICATORS],
                          value=[], inline=True),
        ]),
        html.Div(id=ids.CHART_ERROR, className="form-error"),
        html.Div(id=ids.CHART_NOTE, className="field-hint chart-note"),
        dcc.Graph(id=ids.PRICE_CHART, className="price-chart",
                  config={"displaylogo": False, "scrollZoom": True,
                          "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
                  figure={"data": [], "layout": {"height": 460}}),
        dcc.Store(id=ids.CHART_VIEW), dcc.Store(id=ids.CHART_META),
        EventStream(id=ids.MARKET_STREAM, batchMs=MARKET_BATCH_MS,
                    events=["KLINE", "TICKER", "DEPTH", "MARKET_TRADE"]),
        dcc.Store(id=ids.CHART_TICKS), dcc.Store(id=ids.CHART_RELOAD),
        dcc.Store(id=ids.CHART_INDICATOR_REQUEST), dcc.Store(id=ids.CHART_INDICATORS),
        dcc.Store(id=ids.CHART_OVERLAY_ROWS),
        dcc.Store(id=ids.SYMBOLS_STORE),
    ])


# ---- callbacks --------------------------------------------------------------------------
def _view(view: Any) -> tuple[str, str, list[str], bool]:
    view = view if isinstance(view, dict) else {}
    symbol = str(view.get("symbol") or "").upper()
    if not SYMBOL_RE.fullmatch(symbol):
        raise PreventUpdate
    interval = str(view.get("interval") or "1m")
    if interval not in INTERVAL_MS:
        interval = "1m"
    wanted = [i for i in (view.get("indicators") or []) if i in NEEDS]
    return symbol, interval, wanted, bool(view.get("dark"))


@callback(
    Output(ids.PRICE_CHART, "figure"), Output(ids.CHART_META, "data"),
    Output(ids.CHART_NOTE, "children"), Output(ids.CHART_ERROR, "children"),
    Input(ids.CHART_VIEW, "data"), Input(ids.CHART_RELOAD, "data"), State(ids.AUTH, "data"),
)
def draw(view: Any, _reload: Any, auth: Any) -> tuple[Any, ...]:
    """A new symbol, timeframe, indicator set or theme (or the stream back after a gap):
    the whole figure, from the API's history."""
    symbol, interval, wanted, dark = _view(view)
    error = ""
    try:
        candles = history(symbol, interval, token_of(auth))
    except ApiClientError as exc:
        candles, error = [], f"Chart unavailable: {exc.message}"
    fig, meta = figure(symbol, interval, candles, wanted, dark)
    return fig, meta, indicator_note(wanted, len(candles)), error


@callback(
    Output(ids.CHART_INDICATORS, "data"),
    Input(ids.CHART_INDICATOR_REQUEST, "data"), State(ids.CHART_META, "data"),
    State(ids.AUTH, "data"), prevent_initial_call=True,
)
def refresh_indicators(request: Any, meta: Any, auth: Any) -> Any:
    """The indicator series with the live candles (at most once a second while ticks come):
    history from the cache, the live candles from the request. The clientside
    `market.indicators` patches them in only if the figure on screen is still the one they
    were computed for (the trader may have switched meanwhile)."""
    if not isinstance(request, dict) or not isinstance(meta, dict) \
            or request.get("key") != meta.get("key") or not meta.get("traces"):
        return dash.no_update
    symbol, interval = str(meta["symbol"]), str(meta["interval"])
    live = [k for k in request.get("klines") or [] if isinstance(k, dict)][-5:]
    try:
        candles = merge_live(history(symbol, interval, token_of(auth), REFRESH_MAX_AGE),
                             live, INTERVAL_MS[interval])
        if candles is None:  # a gap: the cached history is too old
            candles = merge_live(history(symbol, interval, token_of(auth), 0.0), live,
                                 INTERVAL_MS[interval]) or []
    except ApiClientError:
        return dash.no_update
    series = indicator_series(candles, list(meta.get("indicators") or []))
    return {"key": meta["key"], "traces": meta["traces"], "t": series.get("t", []),
            "series": {name: series.get(name, []) for name in meta["traces"]}}


@callback(
    Output(ids.PRICE_CHART, "figure", allow_duplicate=True),
    Input(ids.CHART_OVERLAY_ROWS, "data"), State(ids.CHART_META, "data"),
    prevent_initial_call=True,
)
def overlays(rows: Any, meta: Any) -> Any:
    """The user's fills and open orders of the symbol on the chart drawn."""
    if not isinstance(rows, dict) or not isinstance(meta, dict) \
            or rows.get("key") != meta.get("key"):
        return dash.no_update
    markers = fill_markers(list(rows.get("fills") or []), meta)
    shapes, notes = order_lines(list(rows.get("orders") or []), meta)
    patch = Patch()
    for index, name in ((BUYS, "Buys"), (SELLS, "Sells")):
        for prop, values in markers[name].items():
            patch["data"][index][prop] = values
        patch["data"][index]["showlegend"] = bool(markers[name]["x"])
    patch["layout"]["shapes"] = shapes
    patch["layout"]["annotations"] = notes
    return patch


@callback(
    Output(ids.SYMBOLS_STORE, "data"), Output(SYMBOL_SELECT, "options"),
    Input(ids.CONFIG, "data"), Input(ids.AUTH, "data"), State(ids.SYMBOLS_STORE, "data"),
)
def load_symbols(_config: Any, _auth: Any, known: Any) -> tuple[Any, Any]:
    """Every symbol's rules (public, read once; again on sign-in while unknown)."""
    if known:
        raise PreventUpdate
    try:
        rows = rows_of(ApiClient(_api_url, None).get("/api/market/symbols"), "symbols")
    except ApiClientError:
        raise PreventUpdate from None
    rules = {str(r["symbol"]): normalise_symbol(r) for r in rows
             if isinstance(r, dict) and r.get("symbol")}
    return rules, sorted(rules)


# ---- clientside: the hot path and the gates (assets/30-market.js says why each is JS) -----
def _market(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="market", function_name=name)


clientside_callback(
    _market("view"), Output(ids.CHART_VIEW, "data"),
    Input(ids.ROUTE, "data"), Input(ids.CHART_SETTINGS, "data"),
    Input(ids.THEME_TOGGLE, "children"), State(ids.CHART_VIEW, "data"),
)
clientside_callback(
    _market("receive"),
    Output(ids.MARKET_STORE, "data"), Output(ids.CHART_TICKS, "data"),
    Input(ids.MARKET_STREAM, "message"), Input(ids.SYMBOLS_STORE, "data"),
    Input(ids.CHART_VIEW, "data"), Input(ids.CHART_META, "data"),
    State(ids.MARKET_STORE, "data"),
)
clientside_callback(
    _market("tick"),
    Output(ids.PRICE_CHART, "figure", allow_duplicate=True),
    Output(ids.PAIR_PRICE, "children"), Output(ids.PAIR_CHANGE, "children"),
    Output(ids.PAIR_CHANGE, "className"), Output(ids.CHART_INDICATOR_REQUEST, "data"),
    Input(ids.CHART_TICKS, "data"), Input(ids.CHART_META, "data"), Input(ids.MARKET_STORE, "data"),
    State(ids.PRICE_CHART, "figure"), State(ids.PAIR_PRICE, "children"),
    State(ids.PAIR_CHANGE, "children"), prevent_initial_call=True,
)
clientside_callback(
    _market("indicators"), Output(ids.PRICE_CHART, "figure", allow_duplicate=True),
    Input(ids.CHART_INDICATORS, "data"), State(ids.CHART_META, "data"),
    prevent_initial_call=True,
)
clientside_callback(
    _market("overlayRows"), Output(ids.CHART_OVERLAY_ROWS, "data"),
    Input(ids.ORDERS_STORE, "data"), Input(ids.TRADES_STORE, "data"),
    Input(ids.CHART_META, "data"), State(ids.CHART_OVERLAY_ROWS, "data"),
    prevent_initial_call=True,
)
# The market stream back after a gap (its second or later open): draw again from history,
# so the candles it missed appear.
clientside_callback(
    """function (opened) {
        return opened && opened.n > 1 ? Date.now() : window.dash_clientside.no_update;
    }""",
    Output(ids.CHART_RELOAD, "data"), Input(ids.MARKET_STREAM, "opened"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.MARKET_STREAM, "url"), Output(ids.MARKET_STREAM, "stream"),
    Input(ids.ROUTE, "data"), Input(ids.CHART_VIEW, "data"), Input(ids.MARKET_STREAM, "expired"),
    State(ids.AUTH, "data"), State(ids.CONFIG, "data"),
    State(ids.MARKET_STREAM, "stream"), State(ids.MARKET_STREAM, "url"),
)
def market_stream_url(route: Any, view: Any, _expired: Any, auth: Any, config: Any,
                      stream: Any, url: Any) -> tuple[str | None, str | None]:
    """The desk's one market stream (klines and the ticker for the chart, depth and trades
    for the order book: a browser allows six connections per host, and a tab already holds
    the user stream). Open while the trade page shows; a new symbol or timeframe is another
    stream. Signed in, it carries a one-use stream token (the user's own market budget),
    minted again whenever the component reports the source closed for good."""
    if (route or {}).get("page") != "trade" or not view:
        return None, None
    symbol, interval, _wanted, _dark = _view(view)
    key = f"{symbol}:{interval}"
    if f"{ids.MARKET_STREAM}.expired" not in ctx.triggered_prop_ids and key == stream and url:
        raise PreventUpdate  # the theme, the indicators or a refreshed token: same stream
    api = str((config or {}).get("apiUrl") or "").rstrip("/")
    url = f"{api}/api/market/{symbol}/stream?interval={interval}&channels=kline,depth,trades"
    token = token_of(auth)
    if token:
        try:
            url += "&token=" + quote(str(ApiClient(_api_url, token).post(
                "/api/stream-token", {})["token"]), safe="")
        except ApiClientError:
            pass  # the public stream, with the address's budget
    return url, key
