"""One-click close of the position on screen, with a confirmation (issue 19).

The API places the closing MARKET order (POST /api/trading/positions/{symbol}/close: SELL a
long, BUY back a short, the size rounded down to the step); the ticket's message then follows
that order like any other (dashboard/ticket.py).
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from dash import Input, Output, State, callback, ctx, dcc, html
from dash import no_update as NO

from dashboard import ids, ticket
from dashboard.api_client import ApiClient, ApiClientError, token_of

# ---- ids --------------------------------------------------------------------------------
PANEL = "close-panel"
BUTTON = "close-position"
CONFIRM_BOX, CONFIRM_TEXT = "close-confirm-box", "close-confirm-text"
YES, NO_BUTTON = "close-yes", "close-no"
PENDING = "close-pending"  # {symbol, key}: the close waiting for its confirmation
POSITIONS = ids.POSITIONS_STORE  # the shell's live positions

_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callbacks where the API is (the server's view of it)."""
    global _api_url
    _api_url = api_url


def position_size(positions: Any, symbol: str) -> Decimal:
    """The signed size of one symbol's position in the positions store (0 when none)."""
    for position in positions or []:
        if isinstance(position, dict) and position.get("symbol") == symbol:
            return ticket.decimal_or_none(position.get("quantity")) or Decimal(0)
    return Decimal(0)


def close_question(symbol: str, size: Decimal) -> str:
    """The confirmation's words: what the closing order will do."""
    side = "SELL" if size > 0 else "BUY back"
    return (f"Close your {symbol} position: {side} {ticket.plain(abs(size))} at market "
            "(rounded down to the step)?")


def layout() -> html.Div:
    """The close button under the ticket, and its confirmation."""
    return html.Div(className="panel close-panel", id=PANEL, children=[
        dcc.Store(id=PENDING),
        html.Button("Close position", id=BUTTON, className="btn small wide", n_clicks=0,
                    title="Close the position of the symbol on screen at market"),
        html.Div(id=CONFIRM_BOX, className="confirm-box", style=ticket.HIDE, role="alertdialog",
                 children=[
            html.Div(id=CONFIRM_TEXT, className="confirm-text"),
            html.Div(className="confirm-actions", children=[
                html.Button("Close position", id=YES, className="btn small sell", n_clicks=0),
                html.Button("Keep it", id=NO_BUTTON, className="btn small", n_clicks=0),
            ]),
        ]),
    ])


@callback(Output(BUTTON, "children"), Input(ticket.URL, "pathname"))
def label(pathname: Any) -> str:
    """Name the symbol the button closes."""
    return f"Close {ticket.symbol_of(pathname)} position"


@callback(
    Output(CONFIRM_BOX, "style"), Output(CONFIRM_TEXT, "children"), Output(PENDING, "data"),
    Output(ticket.MESSAGE, "children", allow_duplicate=True),
    Output(ticket.MESSAGE, "className", allow_duplicate=True),
    Output(ticket.FOLLOWED, "data", allow_duplicate=True),
    Input(BUTTON, "n_clicks"), Input(YES, "n_clicks"), Input(NO_BUTTON, "n_clicks"),
    State(ticket.URL, "pathname"), State(POSITIONS, "data"), State(PENDING, "data"),
    State(ticket.AUTH, "data"), State(ticket.MARKET, "data"),
    prevent_initial_call=True,
)
def close(_n: int, _yes: int, _no: int, pathname: Any, positions: Any,
          pending: dict[str, Any] | None, auth: Any, market: Any) -> tuple[Any, ...]:
    """Ask first; on Yes, place the closing order and let the ticket's message follow it."""
    hide = ticket.HIDE
    if ctx.triggered_id == NO_BUTTON:
        return hide, "", None, NO, NO, NO
    if ctx.triggered_id == BUTTON:
        symbol = ticket.symbol_of(pathname)
        size = position_size(positions, symbol)
        if size == 0:
            return (hide, "", None, f"You have no open {symbol} position.",
                    "form-message pending", NO)
        # One Idempotency-Key per confirmation: a double click on Yes closes once.
        return (ticket.SHOW, close_question(symbol, size),
                {"symbol": symbol, "key": f"close-{secrets.token_hex(8)}"}, NO, NO, NO)
    if not pending:
        return hide, "", None, NO, NO, NO
    symbol = str(pending["symbol"])
    try:
        answer = ApiClient(_api_url, token_of(auth)).post(
            f"/api/trading/positions/{symbol}/close",
            headers={"Idempotency-Key": str(pending["key"])}) or {}
    except ApiClientError as exc:
        # A refused close has no field to show it at (dust below the minimum, no position).
        message, kind, qty_error, *_ = ticket.error_outcome(exc)
        if not message:
            message, kind = qty_error, "form-message error"
        return hide, "", None, message, kind, NO
    quantity = ticket.decimal_or_none(answer.get("quantity"))
    size = ticket.plain(quantity) if quantity is not None else ""
    what = f"{answer.get('side', '')} {size} {symbol} (close)"
    tick = ticket.rules_of(market).get("tickSize") or "0.01"
    return (hide, "", None, f"{what} sent…", "form-message pending",
            {"orderId": answer.get("orderId"), "what": what, "tick": tick})
