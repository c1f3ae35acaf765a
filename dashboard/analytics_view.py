"""The analytics page: figures built server-side from `GET /api/analytics` plus the order and
trade lists (PnL over time and orders by status are derived here: the analytics route does not
carry them)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, State

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


@dataclass
class _Book:
    """Average-cost book of one symbol, for realized PnL."""

    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)


def realized_pnl_series(trades: list[dict[str, Any]]) -> list[tuple[str, Decimal]]:
    """Cumulative realized PnL (quote asset, net of quote-asset fees) after each trade, in time
    order, by the average-cost method; sells beyond the held quantity open no short."""
    books: dict[str, _Book] = defaultdict(_Book)
    total = Decimal(0)
    out: list[tuple[str, Decimal]] = []
    for t in sorted(trades, key=lambda t: str(t.get("time"))):
        book = books[str(t.get("symbol"))]
        qty, price = Decimal(str(t["quantity"])), Decimal(str(t["price"]))
        fee = Decimal(str(t.get("commission") or "0"))
        symbol = str(t.get("symbol", ""))
        if str(t.get("side", "")).upper() == "BUY":
            book.quantity += qty
            book.cost += qty * price
        elif book.quantity > 0:
            sold = min(qty, book.quantity)
            average = book.cost / book.quantity
            total += (price - average) * sold
            book.cost -= average * sold
            book.quantity -= sold
        fee_asset = str(t.get("commissionAsset") or "")
        if fee and fee_asset and symbol.endswith(fee_asset):
            total -= fee  # only fees paid in the quote asset are money out of the PnL
        out.append((str(t.get("time")), total))
    return out


def pnl_figure(trades: list[dict[str, Any]], positions: list[dict[str, Any]]) -> go.Figure:
    series = realized_pnl_series(trades)
    if not series:
        return _empty("no fills yet")
    # Sums are exact Decimals; Plotly draws floats (strings would become categories).
    fig = go.Figure(go.Scatter(x=[t for t, _ in series], y=[float(v) for _, v in series],
                               mode="lines+markers", line={"shape": "hv", "color": "#2563eb"},
                               name="realized"))
    unrealized = sum((Decimal(str(p["unrealizedPnl"])) for p in positions
                      if p.get("unrealizedPnl") not in (None, "")), Decimal(0))
    if positions:
        fig.add_trace(go.Scatter(x=[series[-1][0]], y=[float(series[-1][1] + unrealized)],
                                 mode="markers", marker={"size": 10, "color": "#d97706"},
                                 name="incl. unrealized"))
    return _base_layout(fig, yaxis_title="USDT", showlegend=True,
                        legend={"orientation": "h", "y": 1.1})


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
    return _base_layout(fig, yaxis_title="orders", xaxis_title="placed → filled")


def status_figure(orders: list[dict[str, Any]]) -> go.Figure:
    counts = Counter(str(o.get("status")) for o in orders)
    if not counts:
        return _empty("no orders yet")
    labels = sorted(counts, key=lambda s: counts[s], reverse=True)
    fig = go.Figure(go.Pie(labels=labels, values=[counts[s] for s in labels], hole=0.5,
                           marker={"colors": [STATUS_COLOURS.get(s, "#64748b") for s in labels]}))
    return _base_layout(fig, showlegend=True)


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
                  trades: list[dict[str, Any]], positions: list[dict[str, Any]]
                  ) -> tuple[list[go.Figure], str]:
    """The five figures and a one-line summary."""
    figures = [pnl_figure(trades, positions), volume_figure(analytics),
               latency_figure(analytics), status_figure(orders), throughput_figure(analytics)]
    rejected = sum(int(r.get("count", 0)) for r in analytics.get("rejectionReasons", []))
    summary = (f"{len(orders)} orders · {len(trades)} fills · {rejected} rejections"
               + (" (first 500 orders/trades)" if len(orders) >= 500 else ""))
    return figures, summary


def register(app: dash.Dash, api_url: str) -> None:
    """Fetch and draw the analytics whenever the page is shown or refreshed."""
    outputs = [Output(i, "figure") for i in
               ("an-pnl", "an-volume", "an-latency", "an-status", "an-throughput")]

    @app.callback(*outputs, Output("analytics-summary", "children"),
                  Output("analytics-error", "children"),
                  Input("route", "data"), Input("analytics-refresh", "n_clicks"),
                  State("auth", "data"))
    def _draw(route: dict[str, Any] | None, _n: int | None, auth: Any) -> tuple[Any, ...]:
        if not route or route.get("page") != "analytics" or not token_of(auth):
            raise dash.exceptions.PreventUpdate
        client = ApiClient(api_url, token_of(auth))
        try:
            analytics = client.get("/api/analytics")
            orders = client.get("/api/trading/orders", {"limit": 500})
            trades = client.get("/api/trading/trades", {"limit": 500})
            positions = client.get("/api/trading/positions")
        except ApiClientError as exc:
            return (*([dash.no_update] * 5), "", f"Analytics unavailable: {exc.message}")
        figures, summary = build_figures(analytics, orders, trades, positions)
        return (*figures, summary, "")
