"""The simulated order book and tape of a symbol: what `depth`, `trades`, `<symbol>@depthN`
and `<symbol>@trade` serve.

The book is drawn around the price walk so that it agrees with where the exchange fills:
its best ask is the price a MARKET buy pays (`MarketSimulator.ask`), its best bid the price
a MARKET sell gets, and with a test liquidity cap (`/admin/price` `liquidity`) the best level
holds exactly that cap. Deeper levels step away a few ticks at a time with sizes that grow
with distance. The book is a pure function of (seed, symbol, update id), so the REST answer
and the stream agree whenever their `lastUpdateId` does, and it changes on every tick.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from adapters.paper_exchange.models import fmt

MAX_DEPTH = 5000  # Binance truncates `limit` above this
DEFAULT_DEPTH = 100
STREAM_LEVELS = (5, 10, 20)  # `<symbol>@depth<levels>[@100ms]`
TAPE_LENGTH = 1000  # recent trades kept per symbol (`trades` limit max)
LEVEL_NOTIONAL = 2_500.0  # median quote value of the best level
GAP_BP = 0.1  # mean distance between levels, basis points of the price


def depth_weight(limit: int) -> int:
    """Binance's REQUEST_WEIGHT of `GET /api/v3/depth` for a `limit`."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(frozen=True)
class MarketTrade:
    """One print on a symbol's tape (a user's fill or the simulated background flow)."""

    trade_id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_maker: bool

    def rest(self) -> dict[str, Any]:
        """The `GET /api/v3/trades` shape."""
        return {"id": self.trade_id, "price": fmt(self.price), "qty": fmt(self.qty),
                "quoteQty": fmt(self.price * self.qty), "time": self.time,
                "isBuyerMaker": self.buyer_maker, "isBestMatch": True}

    def event(self, symbol: str, now: int) -> dict[str, Any]:
        """The `<symbol>@trade` stream shape."""
        return {"e": "trade", "E": now, "s": symbol, "t": self.trade_id,
                "p": fmt(self.price), "q": fmt(self.qty), "T": self.time,
                "m": self.buyer_maker, "M": True}


class Tape:
    """A symbol's most recent trades, newest last, with ids increasing by one."""

    def __init__(self, next_id: int) -> None:
        self.next_id = next_id
        self.trades: deque[MarketTrade] = deque(maxlen=TAPE_LENGTH)

    def add(self, price: Decimal, qty: Decimal, time: int, buyer_maker: bool) -> MarketTrade:
        trade = MarketTrade(self.next_id, price, qty, time, buyer_maker)
        self.next_id += 1
        self.trades.append(trade)
        return trade

    def recent(self, limit: int) -> list[MarketTrade]:
        """The last `limit` trades, oldest first (as Binance lists them)."""
        return list(self.trades)[-limit:] if limit > 0 else []

    def after(self, trade_id: int) -> list[MarketTrade]:
        """Trades with an id above `trade_id`, oldest first."""
        out: list[MarketTrade] = []
        for trade in reversed(self.trades):
            if trade.trade_id <= trade_id:
                break
            out.append(trade)
        out.reverse()
        return out


Level = tuple[Decimal, Decimal]


def book_side(rng: random.Random, best: Decimal, tick: Decimal, step: Decimal, levels: int,
              direction: int, first_qty: Decimal | None) -> list[Level]:
    """`levels` price levels from `best` away from the market (direction -1 bids, +1 asks)."""
    out: list[Level] = []
    price = best
    gap_mean = max(1.0, float(best / tick) * GAP_BP / 10_000)
    for i in range(levels):
        if price <= 0:
            break
        if i == 0 and first_qty is not None:
            qty = first_qty
            if qty <= 0:  # a test drained the best level: the book starts one gap further
                price += direction * tick
                continue
            out.append((price, qty))
            price += direction * tick * max(1, round(rng.expovariate(1 / gap_mean)))
            continue
        else:
            notional = rng.lognormvariate(math.log(LEVEL_NOTIONAL), 0.8) * (1 + i / 25)
            qty = (Decimal(repr(notional)) / price).quantize(step, ROUND_DOWN)
        out.append((price, max(qty, step)))
        price += direction * tick * max(1, round(rng.expovariate(1 / gap_mean)))
    return out


def order_book(seed: int, symbol: str, update_id: int, bid: Decimal, ask: Decimal,
               tick: Decimal, step: Decimal, limit: int,
               liquidity: Decimal | None) -> dict[str, Any]:
    """The `GET /api/v3/depth` body: `limit` levels a side around (bid, ask)."""
    rng = random.Random(f"{seed}:{symbol}:book:{update_id}")  # noqa: S311 - a simulation
    first = None if liquidity is None else max(Decimal(0), liquidity).quantize(step, ROUND_DOWN)
    bids = book_side(rng, bid, tick, step, limit, -1, first)
    asks = book_side(rng, ask, tick, step, limit, 1, first)
    return {"lastUpdateId": update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks]}
