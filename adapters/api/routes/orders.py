"""Place and cancel orders; read one order (time travel) and its audit trail from the
event store, so a GET right after a POST always shows the order."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Path, Query, status
from fastapi.responses import JSONResponse

from adapters.api.deps import Ctx, CurrentUser
from adapters.api.errors import too_many_requests
from adapters.api.schemas import OrderAccepted, PlaceOrderRequest
from adapters.api.serializers import audit_entry, events_as_of, order_view, parse_as_of
from adapters.api.tokens import Principal
from commands.messages import PlaceOrder, RequestCancel
from domain.errors import IllegalTransition, OrderNotFound, TooManyOpenOrders, ValidationFailed

router = APIRouter(prefix="/api/trading/orders", tags=["orders"])
SymbolFilter = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9]+$")]

OrderId = Annotated[UUID, Path(description="the order id returned by POST /api/trading/orders")]


def client_order_id_for(body_id: str | None, idempotency_key: str | None) -> str:
    """Use the body's clientOrderId, else one derived from Idempotency-Key, else a new one."""
    if body_id:
        return body_id
    if idempotency_key is not None:
        key = idempotency_key.strip()
        if not key or len(key) > 255:
            raise ValidationFailed("Idempotency-Key must be 1 to 255 characters",
                                   field="Idempotency-Key")
        return "idk-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "tl-" + uuid.uuid4().hex


def load_events(ctx: Ctx, user: Principal, order_id: UUID) -> list[Any]:
    """An order's events if it belongs to `user`; anyone else's order is simply not found."""
    events = list(ctx.runtime.app.events.get(order_id))
    if not events or events[0].__dict__.get("account_id") != user.account_id:
        raise OrderNotFound(f"order {order_id} not found", orderId=str(order_id))
    return events


def check_open_orders(ctx: Ctx, account_id: UUID, symbol: str, adding: int = 1) -> None:
    """MAX_NUM_ORDERS, where checkable: count the open orders the read side knows of
    (`adding` more must fit: an OCO list adds two).

    The read side trails the event store by a moment, so this is a first line only; the
    exchange's own -2010 answer stays the last word.
    """
    rules = ctx.runtime.symbols.rules(symbol.strip().upper())
    if rules is None or not rules.max_num_orders or ctx.read_models is None:
        return
    open_orders = ctx.read_models.count_open_orders(account_id, rules.symbol)
    if open_orders + adding > rules.max_num_orders:
        raise TooManyOpenOrders(
            f"you already have {open_orders} open orders on {rules.symbol}; {adding} more "
            f"would pass the exchange's maximum (MAX_NUM_ORDERS {rules.max_num_orders}); "
            "cancel some first",
            field="symbol", maxNumOrders=rules.max_num_orders)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=None,
             responses={202: {"model": OrderAccepted}})
async def place_order(
    body: PlaceOrderRequest,
    user: CurrentUser,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Validate and place an order; the worker sends it to the exchange.

    Idempotent: the same clientOrderId (or Idempotency-Key) returns the same orderId.
    """
    client_order_id = client_order_id_for(body.clientOrderId, idempotency_key)
    command = PlaceOrder(
        account_id=user.account_id, client_order_id=client_order_id, symbol=body.symbol,
        side=body.side, order_type=body.type, quantity=body.quantity, price=body.price,
        time_in_force=body.timeInForce, quote_order_qty=body.quoteOrderQty,
        stop_price=body.stopPrice,
    )
    return await submit(ctx, user, command)


async def submit(ctx: Ctx, user: Principal, command: PlaceOrder,
                 **extra: Any) -> JSONResponse:
    """Place an order under the per-user rate limit; answer 202 with where to read it."""
    wait = ctx.limiter.acquire(user.account_id)
    if wait:
        raise too_many_requests("too many orders; slow down", wait)
    await anyio.to_thread.run_sync(check_open_orders, ctx, user.account_id, command.symbol)
    # At most as many threads as the event store has connections: more would only queue
    # on its pool lock and cost CPU.
    order_id = await anyio.to_thread.run_sync(ctx.runtime.app.handle, command,
                                              limiter=ctx.write_limiter)
    return JSONResponse(
        {"orderId": str(order_id), "status": "PENDING",
         "clientOrderId": command.client_order_id.strip(), **extra},
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/trading/orders/{order_id}"},
    )


@router.delete("", status_code=status.HTTP_202_ACCEPTED, response_model=None)
def cancel_all_orders(user: CurrentUser, ctx: Ctx, symbol: SymbolFilter = None) -> JSONResponse:
    """Cancel every open order (of `symbol`): one cancel request per order.

    The open orders are the read side's, which trails the event store by a moment: an order
    placed in that moment is not in the list (it can be canceled on its own).
    """
    order_ids = ctx.require_read_models().open_order_ids(user.account_id, symbol)
    requested: list[str] = []
    for order_id in order_ids:
        try:
            ctx.runtime.app.handle(RequestCancel(account_id=user.account_id, order_id=order_id))
        except IllegalTransition:
            continue  # it finished since the read side last saw it: nothing to cancel
        requested.append(str(order_id))
    return JSONResponse({"status": "CANCEL_REQUESTED", "symbol": symbol.upper() if symbol else None,
                         "orderIds": requested}, status_code=status.HTTP_202_ACCEPTED)


@router.delete("/{orderId}", status_code=status.HTTP_202_ACCEPTED, response_model=None)
def cancel_order(orderId: OrderId, user: CurrentUser, ctx: Ctx) -> JSONResponse:
    """Ask for the order to be canceled; the worker tells the exchange."""
    ctx.runtime.app.handle(RequestCancel(account_id=user.account_id, order_id=orderId))
    return JSONResponse({"orderId": str(orderId), "status": "CANCEL_REQUESTED"},
                        status_code=status.HTTP_202_ACCEPTED)


@router.get("/{orderId}")
def get_order(
    orderId: OrderId,
    user: CurrentUser,
    ctx: Ctx,
    asOf: Annotated[str | None, Query(max_length=64, description=(
        "a version number, or an ISO 8601 time: the order as it was then"))] = None,
) -> dict[str, Any]:
    """The order from its event stream (the source of truth), now or as of a version/time."""
    events = load_events(ctx, user, orderId)
    if asOf is not None:
        events = events_as_of(events, parse_as_of(asOf), orderId)
    return order_view(events)[1]


@router.get("/{orderId}/events")
def get_order_events(orderId: OrderId, user: CurrentUser,
                     ctx: Ctx) -> list[dict[str, Any]]:
    """The order's audit trail: every event, oldest first, with who caused it."""
    return [audit_entry(e) for e in load_events(ctx, user, orderId)]
