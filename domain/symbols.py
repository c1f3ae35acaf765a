"""Symbol trading rules (Binance's LOT_SIZE, PRICE_FILTER, NOTIONAL filters) as a value object."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidPrice, InvalidQuantity, NotionalTooSmall
from domain.values import OrderType


def plain(value: Decimal) -> str:
    """Render a Decimal in fixed-point form for messages ("0.0000001", not "1E-7")."""
    return format(value, "f")


def is_multiple(value: Decimal, step: Decimal, origin: Decimal = Decimal(0)) -> bool:
    """Tell whether value lies on the grid origin + k * step (exact Decimal arithmetic)."""
    if step == 0:
        return True
    return (value - origin) % step == 0


@dataclass(frozen=True)
class SymbolRules:
    """What an order on one symbol must satisfy before it may be placed."""

    symbol: str
    base_asset: str
    quote_asset: str
    step_size: Decimal
    tick_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal

    def check(
        self,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        reference_price: Decimal | None = None,
    ) -> None:
        """Raise a named error for the first rule the order breaks.

        MARKET orders are checked for notional against `reference_price` (the last trade
        price) when one is known, as Binance does with its average price.
        """
        if quantity <= 0:
            raise InvalidQuantity("quantity must be greater than zero", field="quantity")
        if quantity < self.min_qty:
            raise InvalidQuantity(
                f"quantity {plain(quantity)} is below the minimum {plain(self.min_qty)} "
                f"for {self.symbol}",
                field="quantity",
                minQty=str(self.min_qty),
            )
        if quantity > self.max_qty:
            raise InvalidQuantity(
                f"quantity {plain(quantity)} is above the maximum {plain(self.max_qty)} "
                f"for {self.symbol}",
                field="quantity",
                maxQty=str(self.max_qty),
            )
        if not is_multiple(quantity, self.step_size, self.min_qty):
            raise InvalidQuantity(
                f"quantity {plain(quantity)} is not a multiple of the step size "
                f"{plain(self.step_size)} for {self.symbol}",
                field="quantity",
                stepSize=str(self.step_size),
            )
        if order_type is OrderType.LIMIT:
            if price is None:
                raise InvalidPrice("price is required for LIMIT orders", field="price")
            if price <= 0:
                raise InvalidPrice("price must be greater than zero", field="price")
            if price < self.min_price or price > self.max_price:
                raise InvalidPrice(
                    f"price {plain(price)} is outside "
                    f"{plain(self.min_price)}..{plain(self.max_price)} for {self.symbol}",
                    field="price",
                )
            if not is_multiple(price, self.tick_size, self.min_price):
                raise InvalidPrice(
                    f"price {plain(price)} is not a multiple of the tick size "
                    f"{plain(self.tick_size)} for {self.symbol}",
                    field="price",
                    tickSize=str(self.tick_size),
                )
        elif price is not None:
            raise InvalidPrice("price must not be given for MARKET orders", field="price")
        notional_price = price if order_type is OrderType.LIMIT else reference_price
        if notional_price is not None and quantity * notional_price < self.min_notional:
            raise NotionalTooSmall(
                f"order value {plain(quantity * notional_price)} {self.quote_asset} is below "
                f"the minimum notional {plain(self.min_notional)} {self.quote_asset} "
                f"for {self.symbol}",
                field="quantity",
                minNotional=str(self.min_notional),
            )
