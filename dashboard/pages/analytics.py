"""Analytics (`/analytics`), drawn by dashboard/analytics_view.py from the API."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import ids


def layout(**_path: str) -> html.Div:
    """The page's component tree."""
    graph_cfg = {"displaylogo": False}
    cards = [("PnL over time", ids.AN_PNL), ("Volume by symbol", ids.AN_VOLUME),
             ("Fill latency", ids.AN_LATENCY), ("Orders by status", ids.AN_STATUS),
             ("Event throughput", ids.AN_THROUGHPUT)]
    return html.Div(id=ids.page("analytics"), className="page analytics-page", children=[
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


dash.register_page(__name__, path="/analytics", name="Analytics",
                   title="Analytics · TradeLedger", layout=layout)
