"""Toasts: a store of messages, drawn by a server callback, each gone after TOAST_SECONDS.

A callback that has something to say returns `push(title, body, kind)` for `TOAST_STORE`: a
`Patch` that appends one toast, so two callbacks toasting at once never drop each other's.
The price alert of the user stream arrives in `ALERT_FIRED` and becomes a toast here too.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from dash import Input, Output, Patch, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.alerts_view import plain

TOAST_SECONDS = 8.0
TICK_MS = 1_000


def push(title: str, body: str, kind: str = "", patch: Patch | None = None) -> Patch:
    """One more toast (kind: "" | "info" | "error"), for an Output of `TOAST_STORE` (added
    to `patch` when given)."""
    patch = Patch() if patch is None else patch
    patch.append({"id": uuid.uuid4().hex, "title": title, "body": body, "kind": kind,
                  "at": time.time()})
    return patch


def stores() -> list[Any]:
    """The toast store and the timer that retires old toasts (in the shell's layout)."""
    return [dcc.Store(id=ids.TOAST_STORE, data=[]), dcc.Store(id=ids.ALERT_FIRED),
            dcc.Interval(id=ids.TOAST_TICK, interval=TICK_MS, disabled=True)]


def toast(item: dict[str, Any]) -> html.Div:
    """One toast; an error one is an alert for screen readers, the others a status."""
    kind = str(item.get("kind") or "")
    return html.Div(key=str(item.get("id") or ""), className=f"toast {kind}".strip(),
                    role="alert" if kind == "error" else "status",
                    children=[html.Strong(str(item.get("title") or "")),
                              html.Div(str(item.get("body") or ""))])


@callback(Output(ids.TOASTS, "children"), Output(ids.TOAST_TICK, "disabled"),
          Input(ids.TOAST_STORE, "data"))
def show_toasts(items: list[dict[str, Any]] | None) -> tuple[list[html.Div], bool]:
    """Draw the toasts; the timer runs only while there is one to retire."""
    items = [i for i in items or [] if isinstance(i, dict)]
    return [toast(i) for i in items], not items


@callback(Output(ids.TOAST_STORE, "data", allow_duplicate=True),
          Input(ids.TOAST_TICK, "n_intervals"), State(ids.TOAST_STORE, "data"),
          prevent_initial_call=True)
def retire_toasts(_n: int | None, items: list[dict[str, Any]] | None) -> Patch:
    """Take away the toasts older than TOAST_SECONDS (by value: one pushed meanwhile stays)."""
    now = time.time()
    old = [item for item in items or []
           if not isinstance(item, dict) or now - float(item.get("at") or 0) >= TOAST_SECONDS]
    if not old:  # nothing to retire: the toasts on screen are not drawn again
        raise PreventUpdate
    patch = Patch()
    for item in old:
        patch.remove(item)
    return patch


def alert_text(alert: dict[str, Any]) -> str:
    """"BTCUSDT crossed 96227.49 (now 96230.1)": prices as people write them."""
    return (f"{alert.get('symbol')} crossed {plain(alert.get('price'))} "
            f"(now {plain(alert.get('firedPrice'))})")


@callback(Output(ids.TOAST_STORE, "data", allow_duplicate=True),
          Output(ids.ALERTS_REFRESH, "data", allow_duplicate=True),
          Input(ids.ALERT_FIRED, "data"), prevent_initial_call=True)
def alerts_fired(alerts: list[dict[str, Any]] | None) -> tuple[Any, Any]:
    """Price alerts fired (the stream's ALERT events of one batch): a toast each, and the
    alert list read again."""
    fired = [a for a in alerts or [] if isinstance(a, dict) and a.get("symbol")]
    if not fired:
        return no_update, no_update
    patch = Patch()
    for alert in fired:
        push("Price alert", alert_text(alert), "info", patch)
    return patch, time.time()
