"""The trade page's grids (dash-ag-grid): row ids, delta updates, sorting, filtering, CSV
export, and Cancel as a cell action handled by a server callback on the API client."""

from __future__ import annotations

import time
import uuid
from typing import Any

import dash
import dash_ag_grid as dag
import httpx
from dash import Input, Output, State, callback, html

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, token_of

_api_url = ""
_transport: httpx.BaseTransport | None = None


def configure(api_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url, _transport
    _api_url = api_url.rstrip("/")
    _transport = transport


_NUMBER = {"cellClass": "mono", "filter": False}
# Filters on the columns one filters by (symbol, side, type, status); every column sorts.
ORDER_COLUMNS: list[dict[str, Any]] = [
    {"field": "time", "headerName": "Time", "minWidth": 140, "filter": False},
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
    {"field": "time", "headerName": "Time", "minWidth": 140, "filter": False},
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
        style={"height": "320px"},
    )


def trades_grid() -> html.Div:
    """The Trades grid (rows from the trades-store through `tl.tradeRows`)."""
    return html.Div(id=ids.TRADES_TABLE, className="grid-wrap", children=[
        _grid(ids.TRADES_GRID, TRADE_COLUMNS, "params.data.rowId", "No trades yet.",
              "trades.csv"),
    ])


def positions_grid() -> html.Div:
    """The Positions grid (rows from the positions-store through `tl.positionRows`)."""
    return html.Div(id=ids.POSITIONS_TABLE, className="grid-wrap", children=[
        _grid(ids.POSITIONS_GRID, POSITION_COLUMNS, "params.data.symbol", "No positions yet.",
              "positions.csv"),
    ])


def orders_grid() -> html.Div:
    """The Orders grid (rows come from the orders-store through `tl.orderRows`)."""
    return html.Div(id=ids.ORDERS_TABLE, className="grid-wrap", children=[
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


@callback(Output(ids.TOASTS, "children", allow_duplicate=True),
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
        toast = html.Div(className="toast error", role="alert",
                         children=[html.Strong("Cancel refused"), html.Div(exc.message)])
        return [toast], {"orderId": order_id, "ok": False, "at": time.time()}
    return dash.no_update, {"orderId": order_id, "ok": True, "at": time.time()}
