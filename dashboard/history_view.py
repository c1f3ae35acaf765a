"""The History page's callbacks: a search sends the filters to the API, which filters and
pages on the server (`GET /api/trading/orders|trades`, cursor in `X-Next-Cursor`); "Load
more" appends the next page to the grid with a `Patch`, so any number of rows can be read."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import httpx
from dash import Input, Output, Patch, State, callback
from dash import no_update as NO

from dashboard import ids
from dashboard.api_client import SYMBOL_RE, ApiClient, ApiClientError, token_of

_api_url = ""
_transport: httpx.BaseTransport | None = None
_NUMBER = {"cellClass": "mono"}
COLUMNS: dict[str, list[dict[str, Any]]] = {
    "orders": [
        {"field": "time", "headerName": "Created (UTC)", "minWidth": 150},
        {"field": "symbol", "headerName": "Symbol", "minWidth": 96},
        {"field": "side", "headerName": "Side", "minWidth": 70},
        {"field": "type", "headerName": "Type", "minWidth": 110},
        {"field": "price", "headerName": "Price", "minWidth": 90, **_NUMBER},
        {"field": "quantity", "headerName": "Qty", "minWidth": 80, **_NUMBER},
        {"field": "filled", "headerName": "Filled", "minWidth": 80, **_NUMBER},
        {"field": "average", "headerName": "Avg price", "minWidth": 90, **_NUMBER},
        {"field": "status", "headerName": "Status", "minWidth": 110},
    ],
    "trades": [
        {"field": "time", "headerName": "Time (UTC)", "minWidth": 150},
        {"field": "symbol", "headerName": "Symbol", "minWidth": 96},
        {"field": "side", "headerName": "Side", "minWidth": 70},
        {"field": "price", "headerName": "Price", "minWidth": 90, **_NUMBER},
        {"field": "quantity", "headerName": "Qty", "minWidth": 80, **_NUMBER},
        {"field": "fee", "headerName": "Fee", "minWidth": 140, **_NUMBER},
        {"field": "role", "headerName": "Role", "minWidth": 70},
    ],
}


def configure(api_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url, _transport
    _api_url = api_url.rstrip("/")
    _transport = transport


def history_grid() -> dag.AgGrid:
    return dag.AgGrid(
        id=ids.HISTORY_GRID, columnDefs=COLUMNS["orders"], rowData=[],
        defaultColDef={"sortable": True, "resizable": True, "flex": 1},
        dashGridOptions={"animateRows": False, "suppressCellFocus": True,
                         "localeText": {"noRowsToShow": "Nothing matches."}},
        className="ag-theme-tl", style={"height": "520px"})


def _time(value: Any) -> str:
    return str(value or "")[:19].replace("T", " ")


def rows(kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API orders or trades as the grid's rows."""
    if kind == "trades":
        return [{"time": _time(t.get("time")), "symbol": t.get("symbol"), "side": t.get("side"),
                 "price": t.get("price"), "quantity": t.get("quantity"),
                 "fee": f"{t.get('commission')} {t.get('commissionAsset') or ''}".strip(),
                 "role": "maker" if t.get("isMaker") else "taker"} for t in items]
    return [{"time": _time(o.get("createdAt")), "symbol": o.get("symbol"), "side": o.get("side"),
             "type": o.get("type"), "price": o.get("price") or "market",
             "quantity": o.get("quantity"), "filled": o.get("filledQuantity"),
             "average": o.get("averagePrice") or "—", "status": o.get("status")} for o in items]


def query(kind: str, symbol: str | None, side: str | None, statuses: list[str] | None,
          start: str | None, end: str | None, size: int) -> dict[str, Any]:
    """The API's query parameters for the filters (empty ones left out)."""
    params: dict[str, Any] = {"limit": size}
    if symbol and symbol.strip():
        params["symbol"] = symbol.strip().upper()
    if side:
        params["side"] = side
    if statuses and kind == "orders":
        params["status"] = ",".join(statuses)
    if start:
        params["from"] = start
    if end:
        params["to"] = end
    return params


def _fetch(kind: str, params: dict[str, Any], auth: Any) -> tuple[list[dict[str, Any]], str | None]:
    return ApiClient(_api_url, token_of(auth), transport=_transport).get_page(
        f"/api/trading/{kind}", params=params)


def _info(kind: str, shown: int, more: bool) -> str:
    noun = kind if shown != 1 else kind[:-1]
    return f"{shown} {noun} shown" + (", more to load" if more else ", all shown")


@callback(Output(ids.HISTORY_GRID, "columnDefs"), Output(ids.HISTORY_GRID, "rowData"),
          Output(ids.HISTORY_CURSOR, "data"), Output(ids.HISTORY_INFO, "children"),
          Output(ids.HISTORY_MORE, "disabled"), Output(ids.HISTORY_ERROR, "children"),
          Output(ids.HISTORY_STATUS, "disabled"),
          Input(ids.HISTORY_SEARCH, "n_clicks"), Input(ids.mounted("history"), "data"),
          Input(ids.HISTORY_KIND, "value"),
          State(ids.HISTORY_SYMBOL, "value"), State(ids.HISTORY_SIDE, "value"),
          State(ids.HISTORY_STATUS, "value"), State(ids.HISTORY_FROM, "value"),
          State(ids.HISTORY_TO, "value"), State(ids.HISTORY_PAGE_SIZE, "value"),
          State(ids.AUTH, "data"))
def search(_n: int, _mounted: Any, kind: str, symbol: str | None, side: str | None,
           statuses: list[str] | None, start: str | None, end: str | None, size: int | None,
           auth: Any) -> tuple[Any, ...]:
    """The first page for the filters; the cursor of the next one is kept for Load more."""
    kind = "trades" if kind == "trades" else "orders"
    if symbol and symbol.strip() and not SYMBOL_RE.fullmatch(symbol.strip().upper()):
        return (NO, NO, NO, NO, NO, "A symbol is letters and digits, like BTCUSDT.",
                kind == "trades")
    params = query(kind, symbol, side, statuses, start, end, int(size or 100))
    try:
        items, cursor = _fetch(kind, params, auth)
    except ApiClientError as exc:
        return COLUMNS[kind], [], None, "", True, exc.message, kind == "trades"
    following = {"kind": kind, "params": params, "cursor": cursor, "shown": len(items)}
    return (COLUMNS[kind], rows(kind, items), following, _info(kind, len(items), bool(cursor)),
            not cursor, "", kind == "trades")


@callback(Output(ids.HISTORY_GRID, "rowData", allow_duplicate=True),
          Output(ids.HISTORY_CURSOR, "data", allow_duplicate=True),
          Output(ids.HISTORY_INFO, "children", allow_duplicate=True),
          Output(ids.HISTORY_MORE, "disabled", allow_duplicate=True),
          Output(ids.HISTORY_ERROR, "children", allow_duplicate=True),
          Input(ids.HISTORY_MORE, "n_clicks"), State(ids.HISTORY_CURSOR, "data"),
          State(ids.AUTH, "data"), prevent_initial_call=True)
def load_more(_n: int, following: dict[str, Any] | None, auth: Any) -> tuple[Any, ...]:
    """The next page, appended to the rows already shown."""
    if not following or not following.get("cursor"):
        return NO, NO, NO, True, NO
    kind = following["kind"]
    try:
        items, cursor = _fetch(kind, {**following["params"], "cursor": following["cursor"]},
                               auth)
    except ApiClientError as exc:
        return NO, NO, NO, False, exc.message
    grid = Patch()
    grid.extend(rows(kind, items))
    shown = int(following.get("shown") or 0) + len(items)
    return (grid, {**following, "cursor": cursor, "shown": shown},
            _info(kind, shown, bool(cursor)), not cursor, "")


