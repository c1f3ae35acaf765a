"""The trade desk's page (`/trade[/<SYMBOL>]`).

The desk itself lives in the shell (`dashboard/layout.py` says why) and `dashboard/routing.py`
shows it on this path; the page container holds nothing for it.
"""

from __future__ import annotations

import dash
from dash import html


def layout(**_path: str) -> html.Div:
    """Nothing: the desk is drawn by the shell, so a symbol switch rebuilds nothing."""
    return html.Div(className="desk-placeholder")


dash.register_page(__name__, path="/trade", path_template="/trade/<symbol>", name="Trade",
                   title="Trade · TradeLedger", layout=layout)
