"""Average-cost positions: net size, average entry price, realized PnL and fees per symbol.

Decisions (docs/read-side.md has the worked examples):
- `quantity` is signed: positive long, negative short. A SELL larger than a long position
  closes it (realizing PnL on the closed part) and opens a short of the remainder at the
  fill price; a BUY larger than a short does the mirror. On a spot exchange a "short"
  usually means base asset acquired outside TradeLedger was sold.
- `realized_pnl` is gross: price differences only. `fees` adds up every commission valued in
  the quote asset; net PnL = realized_pnl - fees. Commissions in a third asset (e.g. BNB)
  have no price here, so they are kept apart in `other_fees` and left out of PnL.
- A commission in the base asset changes the quantity: a BUY receives quantity - commission;
  a SELL gives up quantity + commission. That commission is valued at the fill price in
  `fees`, and on a SELL the whole decrement realizes PnL, so that once a position is flat,
  realized_pnl - fees equals the quote cash that came in minus the cash that went out.
- Division rounds to the Decimal context (28 significant digits); replay and the live
  projector run the same operations in the same order, so they agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache

ZERO = Decimal(0)

# Longest first, so "FDUSD" wins over "USD"-like suffixes and "USDT" over "USD".
KNOWN_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
    "BRL", "GBP", "AUD", "JPY",
)


@cache
def split_symbol(symbol: str) -> tuple[str, str]:
    """Split a Binance symbol into (base, quote) by its quote-asset suffix."""
    for quote in KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


@dataclass(frozen=True)
class Fill:
    """One execution as the position math needs it."""

    side: str  # BUY or SELL
    price: Decimal
    quantity: Decimal
    commission: Decimal = ZERO
    commission_asset: str = ""
    time: datetime | None = None
    notification_id: int = 0


@dataclass(frozen=True)
class Position:
    """An account's position in one symbol."""

    symbol: str
    quantity: Decimal = ZERO
    average_entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    updated_at: datetime | None = None
    last_notification_id: int = 0
    trade_count: int = 0

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl - self.fees

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        """PnL of the open quantity at `mark_price` (negative quantity = short)."""
        return (mark_price - self.average_entry_price) * self.quantity


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def _trade(position: Position, delta: Decimal, price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Apply a signed quantity change at `price`: return (quantity, average, realized)."""
    qty, avg = position.quantity, position.average_entry_price
    if delta == 0:
        return qty, avg, ZERO
    if qty == 0 or _sign(qty) == _sign(delta):
        new_qty = qty + delta
        new_avg = (abs(qty) * avg + abs(delta) * price) / abs(new_qty)
        return new_qty, new_avg, ZERO
    closed = min(abs(qty), abs(delta))
    # Long closed by a sell earns price - avg; short closed by a buy earns avg - price.
    realized = (price - avg) * closed * _sign(qty)
    new_qty = qty + delta
    if new_qty == 0:
        return new_qty, ZERO, realized
    if _sign(new_qty) == _sign(qty):
        return new_qty, avg, realized
    return new_qty, price, realized  # flipped: the remainder opens at the fill price


def apply_fill(
    position: Position, fill: Fill, base_asset: str | None = None, quote_asset: str | None = None
) -> Position:
    """Return the position after one fill (average-cost method)."""
    if base_asset is None or quote_asset is None:
        base_asset, quote_asset = split_symbol(position.symbol)
    fees = position.fees
    other = dict(position.other_fees)
    base_fee = ZERO
    if fill.commission:
        if fill.commission_asset == quote_asset:
            fees += fill.commission
        elif fill.commission_asset == base_asset:
            base_fee = fill.commission
            fees += fill.commission * fill.price
        else:
            other[fill.commission_asset] = other.get(fill.commission_asset, ZERO) + fill.commission
    if fill.side == "BUY":
        delta = fill.quantity - base_fee
    elif fill.side == "SELL":
        delta = -(fill.quantity + base_fee)
    else:
        raise ValueError(f"unknown side {fill.side!r}")
    qty, avg, realized = _trade(position, delta, fill.price)
    # Built directly: dataclasses.replace inspects the fields on every call (replay applies
    # every fill of the log through here).
    return Position(
        symbol=position.symbol,
        quantity=qty,
        average_entry_price=avg,
        realized_pnl=position.realized_pnl + realized,
        fees=fees,
        other_fees=other,
        updated_at=fill.time or position.updated_at,
        last_notification_id=max(position.last_notification_id, fill.notification_id),
        trade_count=position.trade_count + 1,
    )


def fold_fills(symbol: str, fills: Iterable[Fill]) -> Position:
    """Build a position from its fills in order."""
    position = Position(symbol=symbol)
    for fill in fills:
        position = apply_fill(position, fill)
    return position
