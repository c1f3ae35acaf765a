"""The trade page's grids (dash-ag-grid): row ids, delta updates, sorting, filtering, CSV
export, and Cancel as a cell action handled by a server callback on the API client."""

from __future__ import annotations

import time
import uuid
from typing import Any

import dash
import dash_ag_grid as dag
import httpx
from dash import Input, Output, Patch, State, callback, dcc, html

from dashboard import ids, toasts
from dashboard.api_client import SYMBOL_RE, ApiClient, ApiClientError, token_of

_api_url = ""
_transport: httpx.BaseTransport | None = None


def configure(api_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url, _transport
    _api_url = api_url.rstrip("/")
    _transport = transport


_NUMBER = {"cellClass": "mono", "filter": False}
# Rows keep the API's time (so they sort by it and export it); the browser shows it in the
# reader's zone and locale (assets/50-grid.js `fmtTime`).
_TIME = {"field": "time", "headerName": "Time", "minWidth": 140, "filter": False,
         "valueFormatter": {"function": "fmtTime(params.value)"}}
# Filters on the columns one filters by (symbol, side, type, status); every column sorts.
ORDER_COLUMNS: list[dict[str, Any]] = [
    _TIME,
    {"field": "symbol", "headerName": "Symbol", "minWidth": 96},
    {"field": "side", "headerName": "Side", "minWidth": 76, "cellClass": {"function":
        "params.value === 'BUY' ? 'up' : 'down'"}},
    {"field": "type", "headerName": "Type", "minWidth": 84},
    {"field": "price", "headerName": "Price", "minWidth": 90, **_NUMBER},
    {"field": "stop", "headerName": "Stop", "minWidth": 90, **_NUMBER},
    {"field": "quantity", "headerName": "Qty", "minWidth": 70, **_NUMBER},
    {"field": "filled", "headerName": "Filled", "minWidth": 70, **_NUMBER},
    {"field": "average", "headerName": "Avg price", "minWidth": 90, **_NUMBER},
    {"field": "status", "headerName": "Status", "cellRenderer": "OrderStatus",
     "minWidth": 120, "autoHeight": True, "wrapText": True},
    {"field": "latency", "headerName": "Latency", "minWidth": 110, **_NUMBER},
    {"field": "cancellable", "headerName": "", "cellRenderer": "CancelButton",
     "sortable": False, "filter": False, "minWidth": 84, "maxWidth": 90},
]


TRADE_COLUMNS: list[dict[str, Any]] = [
    _TIME,
    {"field": "symbol", "headerName": "Symbol", "minWidth": 96},
    {"field": "side", "headerName": "Side", "minWidth": 76, "cellClass": {"function":
        "params.value === 'BUY' ? 'up' : 'down'"}},
    {"field": "price", "headerName": "Price", "minWidth": 90, **_NUMBER},
    {"field": "quantity", "headerName": "Qty", "minWidth": 80, **_NUMBER},
    {"field": "total", "headerName": "Total", "minWidth": 90, **_NUMBER},
    {"field": "fee", "headerName": "Fee", "minWidth": 170, **_NUMBER},
    {"field": "role", "headerName": "Role", "minWidth": 80},
]
_PNL = {"cellClass": {"function": "'mono ' + (params.value && params.value[0] === '-' ? "
                                  "'down' : (params.value && params.value !== '0.00' && "
                                  "params.value !== '—' ? 'up' : ''))"}, "filter": False}
POSITION_COLUMNS: list[dict[str, Any]] = [
    {"field": "symbol", "headerName": "Symbol", "minWidth": 96},
    {"field": "size", "headerName": "Size", "minWidth": 90, **_NUMBER},
    {"field": "entry", "headerName": "Entry", "minWidth": 100, **_NUMBER},
    {"field": "mark", "headerName": "Mark", "minWidth": 100, **_NUMBER},
    {"field": "unrealized", "headerName": "Unrealized PnL", "minWidth": 120, **_PNL},
    {"field": "realized", "headerName": "Realized PnL", "minWidth": 110, **_PNL},
    {"field": "fees", "headerName": "Fees (quote)", "minWidth": 140, **_NUMBER},
]


def _grid(grid_id: str, columns: list[dict[str, Any]], row_id: str, empty: str,
          file_name: str) -> Any:
    return dag.AgGrid(
        id=grid_id, columnDefs=columns, rowData=[], getRowId=row_id,
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1,
                       "suppressHeaderMenuButton": True},
        dashGridOptions={"animateRows": False, "localeText": {"noRowsToShow": empty},
                         "suppressCellFocus": True},
        csvExportParams={"fileName": file_name}, className="ag-theme-tl",
        filterModel={},  # "Hide other pairs" patches its symbol key
        style={"height": "320px"},
    )


def trades_grid() -> html.Div:
    """The Trades grid (rows from the trades-store through dashboard/live_account.py)."""
    return html.Div(id=ids.TRADES_TABLE, className="grid-wrap", children=[
        html.Div(className="grid-actions", children=[
            html.Label(className="muted", title="empty: from the first trade", children=[
                "from ", dcc.Input(id=ids.TRADES_CSV_FROM, type="date", className="date-input")]),
            html.Label(className="muted", title="empty: up to now", children=[
                "to ", dcc.Input(id=ids.TRADES_CSV_TO, type="date", className="date-input")]),
            html.Button("All trades CSV", id=ids.TRADES_CSV_BTN, className="btn tiny",
                        n_clicks=0, title="every trade with its fee, for taxes"),
            dcc.Download(id=ids.TRADES_CSV_DOWNLOAD),
        ]),
        _grid(ids.TRADES_GRID, TRADE_COLUMNS, "params.data.rowId", "No trades yet.",
              "trades.csv"),
    ])


def positions_grid() -> html.Div:
    """The Positions grid (rows from the positions-store through dashboard/live_account.py)."""
    return html.Div(id=ids.POSITIONS_TABLE, className="grid-wrap", children=[
        _grid(ids.POSITIONS_GRID, POSITION_COLUMNS, "params.data.symbol", "No positions yet.",
              "positions.csv"),
    ])


def orders_grid() -> html.Div:
    """The Orders grid (rows come from the orders-store through `tl.orderRows`)."""
    return html.Div(id=ids.ORDERS_TABLE, className="grid-wrap", children=[
        html.Div(className="grid-actions", children=[
            dcc.ConfirmDialogProvider(
                id=ids.ORDERS_CANCEL_ALL_CONFIRM,
                message="Cancel every open order of this symbol?",
                children=html.Button("Cancel all", id=ids.ORDERS_CANCEL_ALL,
                                     className="btn tiny", n_clicks=0)),
        ]),
        _grid(ids.ORDERS_GRID, ORDER_COLUMNS, "params.data.orderId", "No orders yet.",
              "orders.csv"),
        html.Button("Export CSV", id=ids.ORDERS_EXPORT, className="btn tiny grid-export",
                    n_clicks=0),
    ])


@callback(Output(ids.ORDERS_GRID, "exportDataAsCsv"), Input(ids.ORDERS_EXPORT, "n_clicks"),
          prevent_initial_call=True)
def export_orders(_n: int) -> bool:
    """Download the orders as CSV (sorted and filtered as shown)."""
    return True


@callback(Output(ids.TOAST_STORE, "data", allow_duplicate=True),
          Output(ids.CANCEL_RESULT, "data"),
          Input(ids.ORDERS_GRID, "cellRendererData"), State(ids.AUTH, "data"),
          prevent_initial_call=True)
def cancel_order(data: dict[str, Any] | None, auth: Any) -> tuple[Any, Any]:
    """Cancel the order whose Cancel cell was clicked (an OCO leg: its whole list); the
    stream shows the outcome."""
    order_id = (data or {}).get("rowId")
    value = str((data or {}).get("value") or "")
    if not order_id or not (value == "cancel" or value.startswith("cancel-list:")):
        raise dash.exceptions.PreventUpdate
    try:  # API paths are built only from well-formed ids
        order_id = str(uuid.UUID(str(order_id)))
        path = f"/api/trading/orders/{order_id}"
        if value != "cancel":
            path = f"/api/trading/order-lists/{uuid.UUID(value.removeprefix('cancel-list:'))}"
    except ValueError:
        raise dash.exceptions.PreventUpdate from None
    try:
        ApiClient(_api_url, token_of(auth), transport=_transport).delete(path)
    except ApiClientError as exc:
        return (toasts.push("Cancel refused", exc.message, "error"),
                {"orderId": order_id, "ok": False, "at": time.time()})
    return dash.no_update, {"orderId": order_id, "ok": True, "at": time.time()}


@callback(Output(ids.ORDERS_CANCEL_ALL_CONFIRM, "message"),
          Output(ids.ORDERS_CANCEL_ALL, "children"), Input(ids.ROUTE, "data"))
def cancel_all_question(route: dict[str, Any] | None) -> tuple[str, str]:
    """Name the symbol the button cancels, on the button and in its confirmation."""
    symbol = _route_symbol(route)
    return (f"Cancel every open {symbol} order?", f"Cancel all {symbol}") if symbol else (
        "Cancel every open order?", "Cancel all")


@callback(Output(ids.TOAST_STORE, "data", allow_duplicate=True),
          Input(ids.ORDERS_CANCEL_ALL_CONFIRM, "submit_n_clicks"),
          State(ids.ROUTE, "data"), State(ids.AUTH, "data"), prevent_initial_call=True)
def cancel_all(_n: int | None, route: dict[str, Any] | None, auth: Any) -> Any:
    """Cancel every open order of the symbol on screen (one cancel per order, server-side);
    the stream shows each order turn CANCELED."""
    symbol = _route_symbol(route)
    path = "/api/trading/orders" + (f"?symbol={symbol}" if symbol else "")
    try:
        answer = ApiClient(_api_url, token_of(auth), transport=_transport).delete(path)
    except ApiClientError as exc:
        return toasts.push("Cancel all refused", exc.message, "error")
    count = len((answer or {}).get("orderIds") or [])
    what = f"{count} open {symbol + ' ' if symbol else ''}order{'s' if count != 1 else ''}"
    return toasts.push("Cancel requested", f"for {what}" if count else "no open orders")


def _route_symbol(route: dict[str, Any] | None) -> str | None:
    """The trade page's symbol, only when well formed (it goes into an API query)."""
    symbol = str((route or {}).get("symbol") or "").upper()
    return symbol if SYMBOL_RE.fullmatch(symbol) else None


@callback(Output(ids.TRADES_CSV_DOWNLOAD, "data"),
          Output(ids.TOAST_STORE, "data", allow_duplicate=True),
          Input(ids.TRADES_CSV_BTN, "n_clicks"), State(ids.TRADES_CSV_FROM, "value"),
          State(ids.TRADES_CSV_TO, "value"), State(ids.AUTH, "data"), prevent_initial_call=True)
def download_trades(_n: int, start: str | None, end: str | None, auth: Any) -> tuple[Any, Any]:
    """Every trade of the account in the range (not only the grid's), from
    `GET /api/trading/trades.csv`: the API streams it with each fee and its asset."""
    params = {key: value for key, value in (("from", start), ("to", end)) if value}
    try:
        text = ApiClient(_api_url, token_of(auth), transport=_transport).get_text(
            "/api/trading/trades.csv", params=params)
    except ApiClientError as exc:
        return dash.no_update, toasts.push("Trades CSV refused", exc.message, "error")
    name = f"trades-{(start or 'start')[:10]}-{(end or 'now')[:10]}.csv"
    return {"content": text, "filename": name, "type": "text/csv"}, dash.no_update


@callback(Output(ids.ORDERS_GRID, "filterModel"), Output(ids.TRADES_GRID, "filterModel"),
          Output(ids.POSITIONS_GRID, "filterModel"),
          Input(ids.HIDE_OTHER_PAIRS, "value"), Input(ids.ROUTE, "data"))
def hide_other_pairs(hide: list[str] | None, route: dict[str, Any] | None) -> tuple[Any, ...]:
    """"Hide other pairs": the grids' own symbol filter set to the symbol on screen (a
    patch, so the trader's filters on other columns stay)."""
    symbol = _route_symbol(route)
    patch = Patch()
    if hide and symbol:
        patch["symbol"] = {"filterType": "text", "type": "equals", "filter": symbol}
    else:
        del patch["symbol"]
    return patch, patch, patch
