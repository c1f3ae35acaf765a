"""One-click close: the MARKET order that brings a position back to flat."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Path, status
from fastapi.responses import JSONResponse

from adapters.api.deps import ApiContext, Ctx
from adapters.api.routes.orders import OrderPlacer, client_order_id_for, submit
from adapters.api.tokens import Principal
from commands.messages import PlaceOrder
from domain.errors import InvalidQuantity, NothingToClose, UnknownSymbol
from domain.symbols import plain

router = APIRouter(prefix="/api/trading/positions", tags=["orders"])

Symbol = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9]+$",
                             description="the position's symbol, e.g. BTCUSDT")]


def closing_order(ctx: ApiContext, user: Principal, symbol: str,
                  client_order_id: str) -> PlaceOrder:
    """The MARKET order that closes the position: its size rounded down to the step."""
    symbol = symbol.upper()
    rules = ctx.runtime.symbols.rules(symbol)
    if rules is None:
        raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
    position = ctx.require_read_models().get_position(user.account_id, symbol)
    if position is None or position.quantity == 0:
        raise NothingToClose(f"there is no open position in {symbol} to close",
                             field="symbol")
    # Down, never up: a long is closed by selling at most what it holds (a short, rare
    # on spot, by buying back at most its size).
    size = abs(position.quantity)
    quantity = rules.floor_quantity(size, market=True)
    minimum = max(rules.min_qty, rules.market_min_qty or Decimal(0))
    if quantity <= 0 or quantity < minimum:
        raise InvalidQuantity(
            f"the {symbol} position of {plain(size)} rounds down to {plain(quantity)}, below "
            f"the exchange's minimum order of {plain(minimum)}: it cannot be closed with one "
            "order", field="quantity", positionQuantity=plain(size), minQty=plain(minimum))
    return PlaceOrder(account_id=user.account_id, client_order_id=client_order_id,
                      symbol=symbol, side="SELL" if position.quantity > 0 else "BUY",
                      order_type="MARKET", quantity=quantity)


@router.post("/{symbol}/close", status_code=status.HTTP_202_ACCEPTED, response_model=None)
async def close_position(
    symbol: Symbol,
    user: OrderPlacer,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Place the MARKET order that closes the position (its size rounded down to the step)."""
    client_order_id = client_order_id_for(None, idempotency_key)
    command = await anyio.to_thread.run_sync(closing_order, ctx, user, symbol, client_order_id)
    return await submit(ctx, user, command, symbol=command.symbol, side=command.side,
                        type="MARKET", quantity=plain(command.quantity))  # type: ignore[arg-type]
