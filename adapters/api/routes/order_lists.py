"""OCO order lists: place one (two orders saved together), read it from its legs' event
streams, cancel it (a cancel request per open leg)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Path, status
from fastapi.responses import JSONResponse

from adapters.api.deps import Ctx, CurrentUser
from adapters.api.errors import too_many_requests
from adapters.api.routes.orders import check_open_orders, client_order_id_for, load_events
from adapters.api.schemas import PlaceOrderListRequest
from adapters.api.serializers import order_view
from adapters.api.tokens import Principal
from commands.messages import PlaceOrderList, RequestCancel
from domain.errors import IllegalTransition, OrderNotFound
from domain.values import TERMINAL_STATUSES

router = APIRouter(prefix="/api/trading/order-lists", tags=["orders"])
ListId = Annotated[UUID, Path(description="the orderListId returned by POST "
                                          "/api/trading/order-lists")]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=None)
async def place_order_list(
    body: PlaceOrderListRequest,
    user: CurrentUser,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Validate and place an OCO order list; the worker sends it to the exchange.

    Idempotent as orders are: the same clientOrderId (or Idempotency-Key) is the same list.
    """
    # A generated id leaves room for the legs' "-sl" / "-tp" within Binance's 36.
    client_order_id = client_order_id_for(body.clientOrderId, idempotency_key)[:33]
    command = PlaceOrderList(
        account_id=user.account_id, client_order_id=client_order_id, symbol=body.symbol,
        side=body.side, quantity=body.quantity, price=body.price, stop_price=body.stopPrice,
        stop_limit_price=body.stopLimitPrice, stop_limit_time_in_force=body.stopLimitTimeInForce,
        list_type=body.type)
    wait = ctx.limiter.acquire(user.account_id)
    if wait:
        raise too_many_requests("too many orders; slow down", wait)
    await anyio.to_thread.run_sync(check_open_orders, ctx, user.account_id, command.symbol, 2)
    list_id, leg_ids = await anyio.to_thread.run_sync(ctx.runtime.app.handle, command,
                                                      limiter=ctx.write_limiter)
    return JSONResponse(
        {"orderListId": str(list_id), "contingencyType": "OCO", "status": "PENDING",
         "listClientOrderId": client_order_id,
         "orders": [{"orderId": str(leg_id)} for leg_id in leg_ids]},
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/trading/order-lists/{list_id}"})


def list_legs(ctx: Ctx, user: Principal, list_id: UUID) -> list[dict[str, Any]]:
    """The list's legs as orders (from their events), the stop-loss leg first; another
    user's list, or an order that names no list, is not found."""
    order, first = order_view(load_events(ctx, user, list_id))
    if order.order_list_id != list_id:
        raise OrderNotFound(f"order list {list_id} not found", orderListId=str(list_id))
    legs = [first]
    for leg_id in order.list_leg_ids[1:]:
        legs.append(order_view(load_events(ctx, user, leg_id))[1])
    return legs


@router.get("/{orderListId}")
def get_order_list(orderListId: ListId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """The list and its legs, from the event store (readable right after the POST)."""
    legs = list_legs(ctx, user, orderListId)
    done = all(leg["status"] in TERMINAL_STATUSES for leg in legs)
    return {"orderListId": str(orderListId), "contingencyType": "OCO",
            "listClientOrderId": legs[0]["clientOrderId"].removesuffix("-sl"),
            "symbol": legs[0]["symbol"], "side": legs[0]["side"],
            "listOrderStatus": "ALL_DONE" if done else "EXECUTING", "orders": legs}


@router.delete("/{orderListId}", status_code=status.HTTP_202_ACCEPTED, response_model=None)
def cancel_order_list(orderListId: ListId, user: CurrentUser, ctx: Ctx) -> JSONResponse:
    """Ask for every open leg to be canceled (on the exchange, one cancel ends the list)."""
    requested = []
    for leg in list_legs(ctx, user, orderListId):
        if leg["status"] in TERMINAL_STATUSES:
            continue
        try:
            ctx.runtime.app.handle(RequestCancel(account_id=user.account_id,
                                                 order_id=UUID(leg["orderId"])))
        except IllegalTransition:
            continue  # it finished meanwhile
        requested.append(leg["orderId"])
    if not requested:
        raise IllegalTransition(f"order list {orderListId} is done; nothing to cancel",
                                orderListId=str(orderListId))
    return JSONResponse({"orderListId": str(orderListId), "status": "CANCEL_REQUESTED",
                         "orderIds": requested}, status_code=status.HTTP_202_ACCEPTED)
