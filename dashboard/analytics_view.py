"""The analytics page: figures built server-side from `GET /api/analytics`, the order and
trade lists and the position history (PnL over time sums the server's per-symbol PnL; orders
by status are counted here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, token_of

STATUS_COLOURS = {
    "FILLED": "#16a34a", "PARTIALLY_FILLED": "#65a30d", "NEW": "#2563eb", "ACCEPTED": "#2563eb",
    "SUBMITTED": "#0891b2", "PENDING": "#d97706", "CANCEL_REQUESTED": "#a16207",
    "CANCELED": "#6b7280", "REJECTED": "#dc2626", "EXPIRED": "#9ca3af",
}


def _base_layout(fig: go.Figure, **kwargs: Any) -> go.Figure:
    # Transparent so one figure reads on the light and the dark theme alike.
    layout: dict[str, Any] = {
        "height": 300, "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": "#8a94a6", "size": 11}, "showlegend": False,
    }
    fig.update_layout(**{**layout, **kwargs})
    fig.update_xaxes(gridcolor="rgba(138,148,166,0.2)")
    fig.update_yaxes(gridcolor="rgba(138,148,166,0.2)")
    return fig


def _empty(message: str) -> go.Figure:
    fig = _base_layout(go.Figure())
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def pnl_series(history: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal]]:
    """(time, realized, net of fees) summed over symbols after each fill, from the server's
    position history (`GET /api/trading/positions/history`): the same numbers Positions
    shows, never re-derived here."""
    realized: dict[str, Decimal] = {}
    net: dict[str, Decimal] = {}
    out: list[tuple[str, Decimal, Decimal]] = []
    for row in history:  # oldest first
        symbol = str(row.get("symbol"))
        realized[symbol] = Decimal(str(row.get("realizedPnl") or "0"))
        net[symbol] = Decimal(str(row.get("netPnl") or row.get("realizedPnl") or "0"))
        out.append((str(row.get("updatedAt")), sum(realized.values(), Decimal(0)),
                    sum(net.values(), Decimal(0))))
    return out


def pnl_figure(history: list[dict[str, Any]], positions: list[dict[str, Any]]) -> go.Figure:
    series = pnl_series(history)
    if not series:
        return _empty("no fills yet")
    quote = "USDT"
    # Sums are exact Decimals; Plotly draws floats (strings would become categories).
    x = [t for t, _, _ in series]
    fig = go.Figure(go.Scatter(x=x, y=[float(r) for _, r, _ in series],
                               mode="lines+markers", line={"shape": "hv", "color": "#2563eb"},
                               name="realized", customdata=[str(r) for _, r, _ in series],
                               hovertemplate="%{customdata} " + quote + "<extra>realized</extra>"))
    fig.add_trace(go.Scatter(x=x, y=[float(n) for _, _, n in series], mode="lines",
                             line={"shape": "hv", "color": "#64748b", "dash": "dot"},
                             name="net of fees"))
    unrealized = sum((Decimal(str(p["unrealizedPnl"])) for p in positions
                      if p.get("unrealizedPnl") not in (None, "")), Decimal(0))
    if positions:
        fig.add_trace(go.Scatter(x=[series[-1][0]], y=[float(series[-1][1] + unrealized)],
                                 mode="markers", marker={"size": 10, "color": "#d97706"},
                                 name="incl. unrealized"))
    # The legend sits under the plot, where the toolbar cannot cover it.
    return _base_layout(fig, yaxis_title=quote, showlegend=True,
                        legend={"orientation": "h", "y": -0.2})


def volume_figure(analytics: dict[str, Any]) -> go.Figure:
    volume: dict[str, Decimal] = defaultdict(Decimal)
    for row in analytics.get("ordersPerMinute", []):
        volume[str(row["symbol"])] += Decimal(str(row.get("volume") or "0"))
    if not any(volume.values()):
        return _empty("no volume in the last 24 h")
    symbols = sorted(volume, key=lambda s: volume[s], reverse=True)
    fig = go.Figure(go.Bar(x=symbols, y=[float(volume[s]) for s in symbols],
                           marker_color="#0891b2"))
    return _base_layout(fig, yaxis_title="quote volume (24 h)")


def latency_figure(analytics: dict[str, Any]) -> go.Figure:
    buckets = analytics.get("fillLatencyHistogram", [])
    if not any(int(b.get("count", 0)) for b in buckets):
        return _empty("no filled orders yet")
    labels, previous = [], "0"
    for b in buckets:
        bound = str(b["leMs"])
        labels.append(f"≤ {bound} ms" if bound.isdigit() else f"> {previous} ms")
        previous = bound
    fig = go.Figure(go.Bar(x=labels, y=[int(b["count"]) for b in buckets],
                           marker_color="#8b5cf6"))
    return _base_layout(fig, yaxis_title="market orders", xaxis_title="placed → filled")


def status_figure(orders: list[dict[str, Any]]) -> go.Figure:
    counts = Counter(str(o.get("status")) for o in orders)
    if not counts:
        return _empty("no orders yet")
    labels = sorted(counts, key=lambda s: counts[s], reverse=True)
    fig = go.Figure(go.Pie(labels=labels, values=[counts[s] for s in labels], hole=0.5,
                           marker={"colors": [STATUS_COLOURS.get(s, "#64748b") for s in labels]}))
    return _base_layout(fig, showlegend=True, legend={"orientation": "h", "y": -0.1})


def throughput_figure(analytics: dict[str, Any]) -> go.Figure:
    rows = analytics.get("eventsPerMinute", [])
    if not rows:
        return _empty("no events in the last 24 h")
    fig = go.Figure(go.Bar(x=[r["minute"] for r in rows], y=[int(r["events"]) for r in rows],
                           width=[60_000] * len(rows), marker_color="#16a34a"))
    # At least half an hour wide, so a lone minute is a bar, not the whole plot.
    last = datetime.fromisoformat(str(rows[-1]["minute"]))
    first = min(datetime.fromisoformat(str(rows[0]["minute"])), last - timedelta(minutes=30))
    fig.update_xaxes(type="date", tickformat="%H:%M",
                     range=[first.isoformat(), (last + timedelta(minutes=2)).isoformat()])
    return _base_layout(fig, yaxis_title="events / minute", bargap=0.1)


def build_figures(analytics: dict[str, Any], orders: list[dict[str, Any]],
                  trades: list[dict[str, Any]], positions: list[dict[str, Any]],
                  history: list[dict[str, Any]] | None = None
                  ) -> tuple[list[go.Figure], str]:
    """The five figures and a one-line summary."""
    figures = [pnl_figure(history or [], positions), volume_figure(analytics),
               latency_figure(analytics), status_figure(orders), throughput_figure(analytics)]
    rejected = sum(int(r.get("count", 0)) for r in analytics.get("rejectionReasons", []))
    summary = (f"{len(orders)} orders · {len(trades)} fills · {rejected} rejections"
               + (" (first 500 orders/trades)" if len(orders) >= 500 else ""))
    return figures, summary


_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url
    _api_url = api_url.rstrip("/")


@callback(*[Output(i, "figure") for i in
            (ids.AN_PNL, ids.AN_VOLUME, ids.AN_LATENCY, ids.AN_STATUS, ids.AN_THROUGHPUT)],
          Output(ids.ANALYTICS_SUMMARY, "children"), Output(ids.ANALYTICS_ERROR, "children"),
          Input(ids.ROUTE, "data"), Input(ids.ANALYTICS_REFRESH, "n_clicks"),
          State(ids.AUTH, "data"))
def draw(route: dict[str, Any] | None, _n: int | None, auth: Any) -> tuple[Any, ...]:
    """Fetch and draw the analytics whenever the page is shown or refreshed."""
    if not route or route.get("page") != "analytics" or not token_of(auth):
        raise dash.exceptions.PreventUpdate
    client = ApiClient(_api_url, token_of(auth))
    try:
        analytics = client.get("/api/analytics")
        orders = client.get("/api/trading/orders", {"limit": 500})
        trades = client.get("/api/trading/trades", {"limit": 500})
        positions = client.get("/api/trading/positions")
        history = client.get("/api/trading/positions/history", {"limit": 5000})
    except ApiClientError as exc:
        return (*([dash.no_update] * 5), "", f"Analytics unavailable: {exc.message}")
    figures, summary = build_figures(analytics, orders, trades, positions, history)
    return (*figures, summary, "")
