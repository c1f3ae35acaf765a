"""Symbol trading rules (Binance's LOT_SIZE, PRICE_FILTER, NOTIONAL filters) as a value object."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from domain.errors import (
    InvalidPrice,
    InvalidQuantity,
    NotionalTooSmall,
    StopWouldTrigger,
    SymbolNotTrading,
)
from domain.values import OrderType, Side, stop_triggers

TRADING = "TRADING"


def plain(value: Decimal) -> str:
    """Render a Decimal in fixed-point form for messages ("0.0000001", not "1E-7")."""
    return format(value, "f")


def is_multiple(value: Decimal, step: Decimal, origin: Decimal = Decimal(0)) -> bool:
    """Tell whether value lies on the grid origin + k * step (exact Decimal arithmetic)."""
    if step == 0:
        return True
    # Exact: the default 28-digit context would round a long quantity onto the grid.
    # Inputs are bounded (domain/values.py), so 100 digits always hold the result.
    with localcontext() as ctx:
        ctx.prec = 100
        return (value - origin) % step == 0


def decimals(value: Decimal) -> int:
    """Count the decimal places a value needs (trailing zeros do not count)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class PercentPriceBySide:
    """Binance's PERCENT_PRICE_BY_SIDE: how far a limit price may sit from the average price."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal


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
    # From the exchange's live exchangeInfo (the fallback table leaves them at their defaults).
    status: str = TRADING
    market_min_qty: Decimal | None = None  # MARKET_LOT_SIZE
    market_max_qty: Decimal | None = None
    market_step_size: Decimal | None = None
    percent_price: PercentPriceBySide | None = None
    max_num_orders: int | None = None  # MAX_NUM_ORDERS (open orders per account and symbol)

    def check(
        self,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        reference_price: Decimal | None = None,
        side: Side | None = None,
    ) -> None:
        """Raise a named error for the first rule the order breaks.

        MARKET orders are checked for notional against `reference_price` (the last trade
        price) when one is known, as Binance does with its average price; LIMIT prices are
        checked against the same reference for PERCENT_PRICE_BY_SIDE.
        """
        if self.status != TRADING:
            raise SymbolNotTrading(
                f"{self.symbol} is not open for new orders now (exchange status "
                f"{self.status}); try again when the exchange reopens it",
                field="symbol", status=self.status)
        if quantity <= 0:
            raise InvalidQuantity("quantity must be greater than zero", field="quantity")
        if order_type is OrderType.MARKET:
            self._check_market_lot(quantity)
        if quantity < self.min_qty:
            raise InvalidQuantity(
                f"quantity is below the minimum {plain(self.min_qty)} "
                f"for {self.symbol}",
                field="quantity",
                minQty=str(self.min_qty),
            )
        if quantity > self.max_qty:
            raise InvalidQuantity(
                f"quantity is above the maximum {plain(self.max_qty)} "
                f"for {self.symbol}",
                field="quantity",
                maxQty=str(self.max_qty),
            )
        self._check_grid(quantity, self.step_size, self.min_qty, InvalidQuantity,
                         "quantity", "step size", "stepSize")
        if order_type.has_price:
            if price is None:
                raise InvalidPrice(f"price is required for {order_type.value} orders",
                                   field="price")
            self._check_price(price, "price")
            # A stop order's limit price is checked against the market when it triggers.
            if not order_type.has_stop:
                self._check_percent_price(price, reference_price, side)
        elif price is not None:
            raise InvalidPrice("price must not be given for MARKET orders", field="price")
        notional_price = price if order_type.has_price else reference_price
        if notional_price is not None and quantity * notional_price < self.min_notional:
            raise NotionalTooSmall(
                "order value is below "
                f"the minimum notional {plain(self.min_notional)} {self.quote_asset} "
                f"for {self.symbol}",
                field="quantity",
                minNotional=str(self.min_notional),
            )

    def check_stop(self, order_type: OrderType, side: Side, stop_price: Decimal | None,
                   reference_price: Decimal | None = None) -> None:
        """Raise a named error for a stopPrice the order type cannot take.

        Stop orders need one on the price grid, on the far side of the market: Binance
        refuses an order whose stop is already reached ("would trigger immediately").
        """
        if not order_type.has_stop:
            if stop_price is not None:
                raise InvalidPrice(
                    f"stopPrice applies to STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT orders only, "
                    f"not {order_type.value}", field="stopPrice")
            return
        if stop_price is None:
            raise InvalidPrice(f"stopPrice is required for {order_type.value} orders",
                               field="stopPrice")
        self._check_price(stop_price, "stopPrice")
        if reference_price is None or reference_price <= 0:
            return
        if stop_triggers(order_type, side, stop_price, reference_price):
            below = (order_type is OrderType.STOP_LOSS_LIMIT) == (side is Side.SELL)
            raise StopWouldTrigger(
                f"a {side.value} {order_type.value} order's stopPrice must be "
                f"{'below' if below else 'above'} the current price {plain(reference_price)} "
                f"of {self.symbol}; {plain(stop_price)} would trigger immediately",
                field="stopPrice", currentPrice=str(reference_price))

    def check_oco(self, side: Side, quantity: Decimal, price: Decimal, stop_price: Decimal,
                  stop_limit_price: Decimal, reference_price: Decimal | None = None) -> None:
        """Raise a named error for the first rule an OCO order list breaks.

        Each leg passes the checks of its own type (a LIMIT_MAKER at `price`, a
        STOP_LOSS_LIMIT at `stop_limit_price` triggered at `stop_price`), and the legs
        straddle the market as Binance requires: a SELL takes profit above the price and
        stops out below it, a BUY the other way round.
        """
        self.check(OrderType.LIMIT_MAKER, quantity, price, reference_price, side)
        self.check(OrderType.STOP_LOSS_LIMIT, quantity, stop_limit_price, reference_price, side)
        self.check_stop(OrderType.STOP_LOSS_LIMIT, side, stop_price, reference_price)
        above = side is Side.SELL
        known = reference_price is not None and reference_price > 0
        level = reference_price if reference_price is not None and known else stop_price
        if (price <= level) if above else (price >= level):
            what = "the current price" if known else "the stopPrice"
            raise InvalidPrice(
                f"an OCO {side.value}'s take-profit price must be "
                f"{'above' if above else 'below'} {what} {plain(level)} of {self.symbol}, "
                f"and its stopPrice {'below' if above else 'above'} it; "
                f"{plain(price)} would take at once", field="price")

    def check_quote(self, order_type: OrderType, quote_order_qty: Decimal,
                    reference_price: Decimal | None = None, side: Side | None = None) -> None:
        """Raise a named error for the first rule a spend-amount (quoteOrderQty) order breaks.

        NOTIONAL applies to the amount itself; where the live price is known, the quantity
        it buys (rounded down to the MARKET step, as the exchange does) must also pass
        LOT_SIZE and MARKET_LOT_SIZE.
        """
        if self.status != TRADING:
            raise SymbolNotTrading(
                f"{self.symbol} is not open for new orders now (exchange status "
                f"{self.status}); try again when the exchange reopens it",
                field="symbol", status=self.status)
        if order_type is not OrderType.MARKET:
            raise InvalidQuantity("quoteOrderQty applies to MARKET orders only; give a "
                                  "quantity (and a price) for other orders",
                                  field="quoteOrderQty")
        if quote_order_qty <= 0:
            raise InvalidQuantity("quoteOrderQty must be greater than zero",
                                  field="quoteOrderQty")
        if quote_order_qty < self.min_notional:
            raise NotionalTooSmall(
                f"quoteOrderQty is below the minimum notional {plain(self.min_notional)} "
                f"{self.quote_asset} for {self.symbol}",
                field="quoteOrderQty", minNotional=str(self.min_notional))
        if reference_price is None or reference_price <= 0:
            return
        quantity = self.floor_quantity(quote_order_qty / reference_price, market=True)
        minimum = max(self.min_qty, self.market_min_qty or Decimal(0))
        if quantity < minimum or quantity <= 0:
            raise InvalidQuantity(
                f"{plain(quote_order_qty)} {self.quote_asset} buys about {plain(quantity)} "
                f"{self.base_asset} at the current price {plain(reference_price)}, below the "
                f"minimum quantity {plain(minimum)} for {self.symbol}",
                field="quoteOrderQty", minQty=str(minimum))
        maximum = min(self.max_qty, self.market_max_qty or self.max_qty)
        if quantity > maximum:
            raise InvalidQuantity(
                f"{plain(quote_order_qty)} {self.quote_asset} is about {plain(quantity)} "
                f"{self.base_asset} at the current price {plain(reference_price)}, above the "
                f"maximum quantity {plain(maximum)} for MARKET orders on {self.symbol}",
                field="quoteOrderQty", maxQty=str(maximum))

    def floor_quantity(self, quantity: Decimal, market: bool = True) -> Decimal:
        """Round a quantity down onto the step grid (of MARKET orders when `market`).

        Down, never up: closing a position must not sell more than it holds. Zero when
        the quantity is below the grid's origin (the minimum quantity).
        """
        step, origin = self.step_size, self.min_qty
        if market and self.market_step_size:
            step, origin = self.market_step_size, self.market_min_qty or Decimal(0)
        # Both grids must hold: the MARKET grid for MARKET_LOT_SIZE, LOT_SIZE's in any case.
        grids = [(step, origin)]
        if (step, origin) != (self.step_size, self.min_qty):
            grids.append((self.step_size, self.min_qty))
        value = quantity
        with localcontext() as ctx:
            ctx.prec = 100
            for grid_step, grid_origin in grids:
                if not grid_step or value < grid_origin:
                    if value < grid_origin:
                        return Decimal(0)
                    continue
                value = grid_origin + ((value - grid_origin) // grid_step) * grid_step
        return value

    def _check_price(self, price: Decimal, field: str) -> None:
        """PRICE_FILTER: positive, within the symbol's bounds, on the tick grid."""
        if price <= 0:
            raise InvalidPrice(f"{field} must be greater than zero", field=field)
        if price < self.min_price or price > self.max_price:
            raise InvalidPrice(
                f"{field} is outside "
                f"{plain(self.min_price)}..{plain(self.max_price)} for {self.symbol}",
                field=field,
            )
        self._check_grid(price, self.tick_size, self.min_price, InvalidPrice,
                         field, "tick size", "tickSize")

    def _check_grid(self, value: Decimal, step: Decimal, origin: Decimal,
                    error: type[InvalidQuantity] | type[InvalidPrice], field: str,
                    step_name: str, detail: str) -> None:
        """The value sits on the step's grid from `origin` (LOT_SIZE's step, PRICE_FILTER's
        tick); too many decimals is told as such, clearer than "not a multiple"."""
        if step and decimals(value) > decimals(step):
            raise error(
                f"{field} has more decimals than the {step_name} {plain(step)} of "
                f"{self.symbol} allows (at most {decimals(step)})",
                field=field, **{detail: str(step)})
        if not is_multiple(value, step, origin):
            raise error(
                f"{field} is not a multiple of the {step_name} {plain(step)} for {self.symbol}",
                field=field, **{detail: str(step)})

    def _check_market_lot(self, quantity: Decimal) -> None:
        """MARKET_LOT_SIZE: MARKET orders have their own quantity limits (step 0: none)."""
        if self.market_min_qty is not None and quantity < self.market_min_qty:
            raise InvalidQuantity(
                f"quantity is below the minimum {plain(self.market_min_qty)} "
                f"for MARKET orders on {self.symbol}",
                field="quantity", marketMinQty=str(self.market_min_qty))
        if self.market_max_qty and quantity > self.market_max_qty:
            raise InvalidQuantity(
                f"quantity is above the maximum {plain(self.market_max_qty)} "
                f"for MARKET orders on {self.symbol}",
                field="quantity", marketMaxQty=str(self.market_max_qty))
        step = self.market_step_size
        if step and not is_multiple(quantity, step, self.market_min_qty or Decimal(0)):
            raise InvalidQuantity(
                f"quantity is not a multiple of the MARKET step size "
                f"{plain(step)} for {self.symbol}",
                field="quantity", marketStepSize=str(step))

    def _check_percent_price(self, price: Decimal, reference: Decimal | None,
                             side: Side | None) -> None:
        """PERCENT_PRICE_BY_SIDE around the reference (average) price, when both are known."""
        band = self.percent_price
        if band is None or reference is None or reference <= 0 or side is None:
            return
        up, down = ((band.bid_up, band.bid_down) if side is Side.BUY
                    else (band.ask_up, band.ask_down))
        low, high = reference * down, reference * up
        if not low <= price <= high:
            raise InvalidPrice(
                f"{side.value} price is too far from the current price "
                f"{plain(reference)} of {self.symbol}: it must lie within "
                f"{plain(low)}..{plain(high)}",
                field="price", minPrice=str(low), maxPrice=str(high))
