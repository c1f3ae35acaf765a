"""The wallet and PnL summary: equity, realized and unrealized PnL (today and in total), fees
and win rate, all valued in one quote asset (USDT), from the read models and live marks.

Definitions (docs/api.md, `GET /api/account/summary`):
- equity: every balance (free + locked) valued at its `<ASSET><QUOTE>` mark; an asset
  without a mark is listed in `unpricedAssets` and left out.
- realized PnL: the positions' gross realized PnL (docs/read-side.md), converted from each
  symbol's quote asset. Today = now minus the positions as of 00:00 UTC.
- unrealized PnL: (mark - average entry) x quantity. Today = now minus the unrealized PnL of
  the day-start positions at the day's opening price, so that realized + unrealized today is
  the change of the book's value since midnight.
- fees: every commission valued in the quote (a base-asset fee at its fill price, another
  asset such as BNB at its mark now).
- win rate: of the fills that closed (part of) a position, the share that realized a gain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from projections.positions import Position, split_symbol

ZERO = Decimal(0)
Marks = Callable[[str], Decimal | None]  # symbol -> last price, None when unknown


@dataclass(frozen=True)
class Amounts:
    """A figure today and in total; None where a price it needs is unknown."""

    today: Decimal | None
    total: Decimal | None


@dataclass(frozen=True)
class Summary:
    """What `GET /api/account/summary` returns, in `quote_asset`."""

    quote_asset: str
    equity: Decimal
    unpriced_assets: tuple[str, ...]
    realized: Amounts
    unrealized: Amounts
    fees: Amounts
    wins: int
    losses: int

    @property
    def win_rate(self) -> Decimal | None:
        closed = self.wins + self.losses
        return None if closed == 0 else Decimal(self.wins) / Decimal(closed)

    @property
    def net(self) -> Amounts:
        """Realized + unrealized - fees."""
        return Amounts(_net(self.realized.today, self.unrealized.today, self.fees.today),
                       _net(self.realized.total, self.unrealized.total, self.fees.total))


def _net(realized: Decimal | None, unrealized: Decimal | None,
         fees: Decimal | None) -> Decimal | None:
    if realized is None or unrealized is None or fees is None:
        return None
    return realized + unrealized - fees


class Valuer:
    """Convert amounts of any asset into the quote asset at the marks."""

    def __init__(self, quote_asset: str, marks: Marks) -> None:
        self.quote_asset = quote_asset
        self._marks = marks

    def price(self, asset: str) -> Decimal | None:
        """One unit of `asset` in the quote asset, None without a mark."""
        if asset == self.quote_asset:
            return Decimal(1)
        return self._marks(asset + self.quote_asset)

    def value(self, amount: Decimal, asset: str) -> Decimal | None:
        if amount == 0:
            return ZERO
        price = self.price(asset)
        return None if price is None else amount * price


def _add(total: Decimal | None, part: Decimal | None) -> Decimal | None:
    return None if total is None or part is None else total + part


def equity(balances: Mapping[str, Decimal], valuer: Valuer) -> tuple[Decimal, tuple[str, ...]]:
    """The balances' value in the quote asset, and the assets that have no price."""
    total, unpriced = ZERO, []
    for asset, amount in sorted(balances.items()):
        value = valuer.value(amount, asset)
        if value is None:
            unpriced.append(asset)
        else:
            total += value
    return total, tuple(unpriced)


def _fees(position: Position, valuer: Valuer) -> Decimal | None:
    quote = split_symbol(position.symbol)[1]
    total = valuer.value(position.fees, quote)
    for asset, amount in position.other_fees.items():
        total = _add(total, valuer.value(amount, asset))
    return total


def _fee_delta(now: Position, start: Position, valuer: Valuer) -> Decimal | None:
    quote = split_symbol(now.symbol)[1]
    total = valuer.value(now.fees - start.fees, quote)
    for asset in set(now.other_fees) | set(start.other_fees):
        delta = now.other_fees.get(asset, ZERO) - start.other_fees.get(asset, ZERO)
        total = _add(total, valuer.value(delta, asset))
    return total


def summarize(positions: Iterable[Position], day_start: Mapping[str, Position],
              balances: Mapping[str, Decimal], marks: Marks,
              day_open: Mapping[str, Decimal], wins: int, losses: int,
              quote_asset: str = "USDT") -> Summary:
    """Fold positions, their state at 00:00 UTC, balances and prices into the summary.

    `day_start` holds the position of each symbol as of the day's start (missing: flat and
    untraded then); `day_open` the day's opening price of each symbol held at the start.
    """
    valuer = Valuer(quote_asset, marks)
    value, unpriced = equity(balances, valuer)
    realized_total: Decimal | None = ZERO
    realized_today: Decimal | None = ZERO
    unrealized_total: Decimal | None = ZERO
    unrealized_today: Decimal | None = ZERO
    fees_total: Decimal | None = ZERO
    fees_today: Decimal | None = ZERO
    for p in positions:
        quote = split_symbol(p.symbol)[1]
        start = day_start.get(p.symbol, Position(symbol=p.symbol))
        realized_total = _add(realized_total, valuer.value(p.realized_pnl, quote))
        realized_today = _add(realized_today,
                              valuer.value(p.realized_pnl - start.realized_pnl, quote))
        fees_total = _add(fees_total, _fees(p, valuer))
        fees_today = _add(fees_today, _fee_delta(p, start, valuer))
        mark = marks(p.symbol)
        now_open = ZERO if p.quantity == 0 else (
            None if mark is None else p.unrealized_pnl(mark))
        opening = day_open.get(p.symbol)
        then_open = ZERO if start.quantity == 0 else (
            None if opening is None else start.unrealized_pnl(opening))
        unrealized_total = _add(unrealized_total,
                                None if now_open is None else valuer.value(now_open, quote))
        today = None if now_open is None or then_open is None else now_open - then_open
        unrealized_today = _add(unrealized_today,
                                None if today is None else valuer.value(today, quote))
    return Summary(quote_asset=quote_asset, equity=value, unpriced_assets=unpriced,
                   realized=Amounts(realized_today, realized_total),
                   unrealized=Amounts(unrealized_today, unrealized_total),
                   fees=Amounts(fees_today, fees_total), wins=wins, losses=losses)
