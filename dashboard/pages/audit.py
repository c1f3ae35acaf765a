"""Audit (`/audit[/<orderId>]`): an order's trail, drawn by dashboard/audit_view.py."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import ids


def layout(**_path: str) -> html.Div:
    """The page's component tree."""
    return html.Div(id=ids.page("audit"), className="page audit-page",
                    children=[
        dcc.Store(id=ids.mounted("audit"), data=True),
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


dash.register_page(__name__, path="/audit", path_template="/audit/<order_id>", name="Audit",
                   title="Audit · TradeLedger", layout=layout)
