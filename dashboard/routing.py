"""Which page the URL asks for, who may see it, and what the header shows for it.

Dash's page container draws the page itself (`dashboard/pages/`); this module keeps the
`route` store ({page, symbol[, orderId]}: the ticket, the chart and the views read the symbol
and the audited order from it), sends a signed-out visitor to `/login` and a signed-in one
away from it, shows the trade desk on `/trade`, and marks the active link in the nav.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback

from dashboard import ids
from dashboard.api_client import token_of

DEFAULT_SYMBOL = "BTCUSDT"
PUBLIC_PAGES = frozenset({"login", "register"})
_SHOWN: dict[str, str] = {}
_HIDDEN = {"display": "none"}


@dataclass(frozen=True)
class Route:
    """Where the browser should be: the page, the trade symbol, the audited order, and the
    path to move to when the asked one is not allowed or not known (None: stay)."""

    page: str
    symbol: str
    order_id: str | None = None
    redirect: str | None = None

    def store(self) -> dict[str, str]:
        """The `route` store's data."""
        data = {"page": self.page, "symbol": self.symbol}
        if self.order_id:
            data["orderId"] = self.order_id
        return data


def resolve(pathname: str | None, signed_in: bool, last_symbol: str | None = None) -> Route:
    """The route for a path: `/trade/<SYMBOL>`, `/audit/<orderId>`, `/analytics`, ...;
    anything else, and `/`, goes to the desk (or to /login when signed out)."""
    parts = [p for p in (pathname or "/").split("/") if p]
    symbol = (last_symbol or DEFAULT_SYMBOL).upper()
    page = parts[0] if parts else ""
    if page == "trade" and len(parts) > 1:
        symbol = parts[1].upper()
    if not signed_in and page not in PUBLIC_PAGES:
        return Route("login", symbol, redirect="/login")
    if page not in ids.PAGES or (signed_in and page in PUBLIC_PAGES):
        return Route("trade", symbol, redirect=f"/trade/{symbol}")
    order_id = parts[1] if page == "audit" and len(parts) > 1 else None
    return Route(page, symbol, order_id)


@callback(
    Output(ids.ROUTE, "data"), Output(ids.URL, "pathname"),
    Output(ids.page("trade"), "style"),
    *[Output(ids.nav_link(p), "className") for p in ids.NAV_PAGES],
    Output(ids.NAV, "style"), Output(ids.NAV, "className"), Output(ids.LIVE_WRAP, "style"),
    Output(ids.MENU_TOGGLE, "style"),
    Input(ids.URL, "pathname"), Input(ids.AUTH, "data"), State(ids.ROUTE, "data"),
)
def follow_url(pathname: str | None, auth: Any, last: dict[str, Any] | None) -> tuple[Any, ...]:
    """Route the path: the store, a redirect, the desk shown or not, the nav's state."""
    signed_in = token_of(auth) is not None
    route = resolve(pathname, signed_in, (last or {}).get("symbol"))
    signed_in_only = _SHOWN if signed_in else _HIDDEN
    nav_classes = ["nav-link" + (" active" if p == route.page else "") for p in ids.NAV_PAGES]
    # The nav (a menu below 900 px) closes on every navigation.
    return (route.store(), route.redirect or dash.no_update,
            _SHOWN if route.page == "trade" else _HIDDEN, *nav_classes,
            signed_in_only, "nav", signed_in_only, signed_in_only)


# The page alone, set only when it changes (ids.PAGE_SHOWN says who reads it and why).
clientside_callback(
    """function (route, last) {
        const page = (route && route.page) || null;
        return page === last ? window.dash_clientside.no_update : page;
    }""",
    Output(ids.PAGE_SHOWN, "data"), Input(ids.ROUTE, "data"), State(ids.PAGE_SHOWN, "data"),
)


@callback(Output(ids.NAV, "className", allow_duplicate=True),
          Input(ids.MENU_TOGGLE, "n_clicks"), State(ids.NAV, "className"),
          prevent_initial_call=True)
def toggle_menu(_n: int | None, classes: str | None) -> str:
    """The menu button opens and closes the nav on narrow screens."""
    return "nav" if "open" in (classes or "").split() else "nav open"
