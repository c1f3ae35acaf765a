"""Simulated markets: a seeded geometric random walk per symbol, with 1m candle history.

Prices are held as whole ticks (`price = ticks * tick_size`) and volumes as whole units of
1e-8, so every stored number is exact; floats appear only as random draws that size a move.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from adapters.paper_exchange.book import DEFAULT_DEPTH, MarketTrade, Tape, order_book
from adapters.paper_exchange.markets import Market
from adapters.paper_exchange.models import fmt
from adapters.paper_exchange.store import CandleRow, Store

MINUTE = 60_000
DAY = 1_440 * MINUTE
WEEK = 7 * DAY
MONDAY = 4 * DAY  # 1970-01-05, a Monday: Binance's weekly candles open on Mondays (UTC).
YEAR_MS = 365 * DAY
UNIT = Decimal("0.00000001")  # volumes are stored as integers of this unit
INTERVALS: dict[str, int] = {
    "1m": MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "1h": 60 * MINUTE,
    "4h": 240 * MINUTE, "1d": DAY, "1w": WEEK,
}
HALF_SPREAD = Decimal("0.0001")  # MARKET orders pay 1 bp over/under the last price
# Book update ids and tape trade ids are saved with the prices about once a minute; a restart
# resumes this far above the saved ones so that they never go backwards.
ID_HEADROOM = 1_000_000


def bucket_start(t: int, interval: int) -> int:
    """Return the open time of the candle of length `interval` that contains time t."""
    if interval == WEEK:
        return (t - MONDAY) // WEEK * WEEK + MONDAY
    return t - t % interval


def aggregate(rows: list[CandleRow], interval: int) -> list[CandleRow]:
    """Merge consecutive 1m candles into candles of `interval` milliseconds."""
    out: list[CandleRow] = []
    for t, o, h, low, c, v, q, n in rows:
        start = bucket_start(t, interval)
        if out and out[-1][0] == start:
            pt, po, ph, pl, _, pv, pq, pn = out[-1]
            out[-1] = (pt, po, max(ph, h), min(pl, low), c, pv + v, pq + q, pn + n)
        else:
            out.append((start, o, h, low, c, v, q, n))
    return out


@dataclass
class SymbolState:
    """One symbol's live state: the last price, the open candle and test overrides."""

    market: Market
    ticks: int
    candle: list[int]  # the open 1m candle: [open_time, o, h, l, c, v, q, n]
    frozen: bool = False
    liquidity: Decimal | None = None
    day_cache: tuple[int, CandleRow | None] | None = None
    update_id: int = 1  # the book's lastUpdateId: every move and every fill bumps it
    tape: Tape = field(default_factory=lambda: Tape(1))

    @property
    def tick_size(self) -> Decimal:
        """Return the symbol's price tick."""
        return self.market.rules.tick_size

    @property
    def price(self) -> Decimal:
        """Return the last price."""
        return self.ticks * self.tick_size

    def to_price(self, ticks: int) -> Decimal:
        """Turn a tick count into a price."""
        return ticks * self.tick_size


class MarketSimulator:
    """Every symbol's price path, candles, tickers and kline/ticker stream payloads."""

    def __init__(self, store: Store, markets: dict[str, Market], seed: int,
                 history_days: int, now: int) -> None:
        self._store = store
        self._seed = seed
        self._rng = random.Random(f"{seed}:live:{now}")  # noqa: S311 - a simulation, not crypto
        self.symbols: dict[str, SymbolState] = {}
        saved = json.loads(store.get_meta("prices") or "{}")
        with store.transaction():
            for symbol, market in markets.items():
                self.symbols[symbol] = self._load(symbol, market, saved.get(symbol), history_days,
                                                  now)
            self.save_prices()

    # -- start-up -------------------------------------------------------------------------

    def _load(self, symbol: str, market: Market, saved: dict[str, Any] | None,
              history_days: int, now: int) -> SymbolState:
        if self._store.last_candle(symbol) is None:
            rows = self._history(symbol, market, bucket_start(now, MINUTE), history_days)
            self._store.save_candles(symbol, rows)
        state = self._resume(symbol, market, saved, now)
        if saved:
            state.update_id = int(saved.get("updateId", 0)) + ID_HEADROOM
            state.tape = Tape(int(saved.get("tradeId", 0)) + ID_HEADROOM)
        return state

    def _resume(self, symbol: str, market: Market, saved: dict[str, Any] | None,
                now: int) -> SymbolState:
        """Pick up the walk where the stored candles and prices left it."""
        minute = bucket_start(now, MINUTE)
        last = self._store.last_candle(symbol)
        frozen = bool(saved and saved.get("frozen"))
        ticks = int(saved["ticks"]) if saved else (
            last[4] if last else int(market.start_price / market.rules.tick_size))
        if last is not None and last[0] == minute:
            return SymbolState(market, ticks, list(last), frozen)
        if last is not None and last[0] < minute - MINUTE:
            rows = self._walk(symbol, market, last[0] + MINUTE, minute, ticks, frozen)
            self._store.save_candles(symbol, rows)
            ticks = rows[-1][4]
        return SymbolState(market, ticks, [minute, ticks, ticks, ticks, ticks, 0, 0, 0], frozen)

    def _history(self, symbol: str, market: Market, end: int, days: int) -> list[CandleRow]:
        """Generate `days` of 1m candles ending just before `end`, closing at the start price."""
        count = days * 1_440
        rng = random.Random(f"{self._seed}:{symbol}:history")  # noqa: S311
        sigma = market.annual_volatility * math.sqrt(MINUTE / YEAR_MS)
        steps = [rng.gauss(0.0, sigma) for _ in range(count)]
        # Walk backwards from the start price so the live market opens where the rules say.
        log_close = math.log(float(market.start_price / market.rules.tick_size))
        closes = [0.0] * count
        for i in range(count - 1, -1, -1):
            closes[i] = log_close
            log_close -= steps[i]
        return self._candles(rng, market, end - count * MINUTE,
                             [max(1, round(math.exp(x))) for x in closes], log_close)

    def _walk(self, symbol: str, market: Market, start: int, end: int, ticks: int,
              frozen: bool) -> list[CandleRow]:
        """Fill the minutes from start to end (exclusive) the server was down for."""
        count = min((end - start) // MINUTE, 60 * 1_440)
        start = end - count * MINUTE
        rng = random.Random(f"{self._seed}:{symbol}:{start}")  # noqa: S311
        sigma = 0.0 if frozen else market.annual_volatility * math.sqrt(MINUTE / YEAR_MS)
        closes, log_price = [], math.log(ticks)
        for _ in range(count):
            log_price += rng.gauss(0.0, sigma)
            closes.append(ticks if frozen else max(1, round(math.exp(log_price))))
        return self._candles(rng, market, start, closes, math.log(ticks))

    @staticmethod
    def _candles(rng: random.Random, market: Market, start: int, closes: list[int],
                 log_open: float) -> list[CandleRow]:
        sigma = market.annual_volatility * math.sqrt(MINUTE / YEAR_MS)
        rows: list[CandleRow] = []
        prev = max(1, round(math.exp(log_open)))
        tick = market.rules.tick_size
        for i, close in enumerate(closes):
            wick = max(prev, close) * sigma * 0.5
            high = max(prev, close) + round(abs(rng.gauss(0.0, wick)))
            low = max(1, min(prev, close) - round(abs(rng.gauss(0.0, wick))))
            notional = Decimal(round(rng.lognormvariate(math.log(150_000), 0.6)))
            price = close * tick
            volume = (notional / price).quantize(UNIT, ROUND_DOWN)
            rows.append((start + i * MINUTE, prev, high, low, close, int(volume / UNIT),
                         int(notional / UNIT), max(1, int(notional) // 1_500)))
            prev = close
        return rows

    def save_prices(self) -> None:
        """Persist each symbol's last price, frozen flag, book update id and next tape id."""
        self._store.set_meta("prices", json.dumps({
            s: {"ticks": st.ticks, "frozen": st.frozen, "updateId": st.update_id,
                "tradeId": st.tape.next_id} for s, st in self.symbols.items()
        }))

    def save_open_candles(self) -> None:
        """Persist the open candles too (on shutdown), so a restart resumes them."""
        with self._store.transaction():
            for symbol, st in self.symbols.items():
                self._store.save_candles(symbol, [tuple(st.candle)])  # type: ignore[list-item]
            self.save_prices()

    # -- live -----------------------------------------------------------------------------

    def step(self, now: int, dt_ms: int) -> list[str]:
        """Advance every unfrozen symbol by one tick of `dt_ms`; return the symbols that moved."""
        moved = []
        self.roll(now)
        for symbol, st in self.symbols.items():
            if st.frozen:
                continue
            sigma = st.market.annual_volatility * math.sqrt(dt_ms / YEAR_MS)
            before = st.ticks
            st.ticks = max(1, round(st.ticks * math.exp(self._rng.gauss(-0.5 * sigma**2, sigma))))
            self._touch(st)
            # Background volume so live candles look traded.
            notional = Decimal(round(self._rng.lognormvariate(math.log(600), 0.6)))
            qty = (notional / st.price).quantize(st.market.rules.step_size, ROUND_DOWN)
            if qty > 0:
                st.tape.add(st.price, qty, now, self._rng.random() < 0.5)
            self._add_volume(st, (notional / st.price).quantize(UNIT, ROUND_DOWN), notional, 1)
            if st.ticks != before:
                moved.append(symbol)
        return moved

    def roll(self, now: int) -> None:
        """Close the open candles if their minute is over and open new ones."""
        minute = bucket_start(now, MINUTE)
        closing = [(s, st) for s, st in self.symbols.items() if st.candle[0] < minute]
        if not closing:
            return
        with self._store.transaction():
            for symbol, st in closing:
                rows: list[CandleRow] = [tuple(st.candle)]  # type: ignore[list-item]
                # Minutes with no tick at all (a stalled loop) become flat candles.
                t = st.candle[0] + MINUTE
                while t < minute:
                    rows.append((t, st.ticks, st.ticks, st.ticks, st.ticks, 0, 0, 0))
                    t += MINUTE
                self._store.save_candles(symbol, rows)
                st.candle = [minute, st.ticks, st.ticks, st.ticks, st.ticks, 0, 0, 0]
            self.save_prices()

    def set_price(self, symbol: str, price: Decimal, now: int, freeze: bool | None,
                  liquidity: Decimal | None) -> None:
        """Move a symbol to `price` (tests); optionally freeze it and cap LIMIT liquidity."""
        self.roll(now)
        st = self.symbols[symbol]
        st.ticks = max(1, int(price / st.tick_size))
        if freeze is not None:
            st.frozen = freeze
        st.liquidity = liquidity
        self._touch(st)
        with self._store.transaction():
            self.save_prices()

    def record_trade(self, symbol: str, qty: Decimal, price: Decimal, now: int,
                     buyer_maker: bool) -> None:
        """Add a user's fill to the open candle's volume, the tape and the book's updates."""
        st = self.symbols[symbol]
        st.tape.add(price, qty, now, buyer_maker)
        st.update_id += 1
        self._add_volume(st, qty, price * qty, 1)

    def _touch(self, st: SymbolState) -> None:
        st.update_id += 1
        c = st.candle
        c[2], c[3], c[4] = max(c[2], st.ticks), min(c[3], st.ticks), st.ticks

    @staticmethod
    def _add_volume(st: SymbolState, qty: Decimal, quote: Decimal, trades: int) -> None:
        st.candle[5] += int(qty / UNIT)
        st.candle[6] += int(quote.quantize(UNIT, ROUND_DOWN) / UNIT)
        st.candle[7] += trades

    def price(self, symbol: str) -> Decimal:
        """Return a symbol's last price."""
        return self.symbols[symbol].price

    def ask(self, symbol: str) -> Decimal:
        """Return the price a MARKET buy pays: last price plus the half spread, up a tick."""
        st = self.symbols[symbol]
        return _round_up(st.price * (1 + HALF_SPREAD), st.tick_size)

    def bid(self, symbol: str) -> Decimal:
        """Return the price a MARKET sell gets: last price minus the half spread, down a tick."""
        st = self.symbols[symbol]
        return max(st.tick_size, (st.price * (1 - HALF_SPREAD)).quantize(st.tick_size, ROUND_DOWN))

    # -- queries --------------------------------------------------------------------------

    def depth(self, symbol: str, limit: int = DEFAULT_DEPTH) -> dict[str, Any]:
        """Return the order book, `limit` levels a side, best first (`GET /api/v3/depth`)."""
        st = self.symbols[symbol]
        return order_book(self._seed, symbol, st.update_id, self.bid(symbol), self.ask(symbol),
                          st.tick_size, st.market.rules.step_size, limit, st.liquidity)

    def recent_trades(self, symbol: str, limit: int) -> list[MarketTrade]:
        """Return the last `limit` prints of the symbol's tape, oldest first."""
        return self.symbols[symbol].tape.recent(limit)

    def klines(self, symbol: str, interval: int, start: int | None, end: int | None,
               limit: int) -> list[CandleRow]:
        """Return up to `limit` candles, as Binance's /api/v3/klines selects them."""
        st = self.symbols[symbol]
        live: CandleRow = tuple(st.candle)  # type: ignore[assignment]
        if start is not None:
            first = bucket_start(start, interval)
            last = first + (limit + 1) * interval - 1
            if end is not None:
                last = min(last, end)
        else:
            last = live[0] if end is None else end
            first = bucket_start(last, interval) - (limit - 1) * interval
        rows = self._store.candles(symbol, first, last)
        if first <= live[0] <= last and (not rows or rows[-1][0] < live[0]):
            rows.append(live)
        out = aggregate(rows, interval)
        if start is not None:
            return [r for r in out if r[0] >= start][:limit]
        return out[-limit:]

    def day_stats(self, symbol: str, now: int) -> CandleRow:
        """Return the rolling 24h window as one candle (open time = window start)."""
        st = self.symbols[symbol]
        live: CandleRow = tuple(st.candle)  # type: ignore[assignment]
        if st.day_cache is None or st.day_cache[0] != live[0]:
            rows = self._store.candles(symbol, live[0] - DAY + MINUTE, live[0] - 1)
            merged = aggregate(rows, 1 << 62)
            st.day_cache = (live[0], (rows[0][0], *merged[0][1:]) if merged else None)
        closed = st.day_cache[1]
        if closed is None:
            return (live[0], *live[1:])
        return (closed[0], closed[1], max(closed[2], live[2]), min(closed[3], live[3]), live[4],
                closed[5] + live[5], closed[6] + live[6], closed[7] + live[7])

    def avg_price(self, symbol: str) -> Decimal:
        """Return the volume-weighted price of the last 5 minutes."""
        st = self.symbols[symbol]
        rows = self._store.candles(symbol, st.candle[0] - 5 * MINUTE, st.candle[0] - 1)
        volume = sum(r[5] for r in rows) + st.candle[5]
        quote = sum(r[6] for r in rows) + st.candle[6]
        if volume == 0:
            return st.price
        return (Decimal(quote) / Decimal(volume)).quantize(UNIT)

    # -- wire formats ---------------------------------------------------------------------

    def kline_array(self, symbol: str, row: CandleRow, interval: int) -> list[Any]:
        """Format a candle as Binance's 12-element kline array."""
        st = self.symbols[symbol]
        t, o, h, low, c, v, q, n = row
        return [t, fmt(st.to_price(o)), fmt(st.to_price(h)), fmt(st.to_price(low)),
                fmt(st.to_price(c)), fmt(v * UNIT), _close_time(t, interval), fmt(q * UNIT), n,
                fmt(v // 2 * UNIT), fmt(q // 2 * UNIT), "0"]

    def kline_event(self, symbol: str, name: str, now: int) -> dict[str, Any]:
        """Build a `<symbol>@kline_<interval>` stream payload for the open candle."""
        interval = INTERVALS[name]
        st = self.symbols[symbol]
        row = self.klines(symbol, interval, None, None, 1)[-1]
        k = self.kline_array(symbol, row, interval)
        return {
            "e": "kline", "E": now, "s": symbol,
            "k": {"t": k[0], "T": k[6], "s": symbol, "i": name, "f": -1, "L": -1,
                  "o": k[1], "c": k[4], "h": k[2], "l": k[3], "v": k[5], "n": k[8],
                  "x": k[6] < st.candle[0], "q": k[7], "V": k[9], "Q": k[10], "B": "0"},
        }

    def ticker_24h(self, symbol: str, now: int) -> dict[str, Any]:
        """Build the /api/v3/ticker/24hr body for a symbol."""
        st = self.symbols[symbol]
        t, o, h, low, _c, v, q, n = self.day_stats(symbol, now)
        open_, last = st.to_price(o), st.price
        change = last - open_
        weighted = (Decimal(q) / Decimal(v)).quantize(UNIT) if v else last
        return {
            "symbol": symbol, "priceChange": fmt(change),
            "priceChangePercent": f"{(change / open_ * 100):.3f}" if open_ else "0.000",
            "weightedAvgPrice": fmt(weighted), "prevClosePrice": fmt(open_),
            "lastPrice": fmt(last), "lastQty": fmt(Decimal(0)),
            "bidPrice": fmt(self.bid(symbol)), "bidQty": fmt(Decimal(1)),
            "askPrice": fmt(self.ask(symbol)), "askQty": fmt(Decimal(1)),
            "openPrice": fmt(open_), "highPrice": fmt(st.to_price(h)),
            "lowPrice": fmt(st.to_price(low)), "volume": fmt(v * UNIT),
            "quoteVolume": fmt(q * UNIT), "openTime": t, "closeTime": now,
            "firstId": -1, "lastId": -1, "count": n,
        }

    def ticker_event(self, symbol: str, now: int) -> dict[str, Any]:
        """Build a `<symbol>@ticker` stream payload."""
        b = self.ticker_24h(symbol, now)
        return {
            "e": "24hrTicker", "E": now, "s": symbol, "p": b["priceChange"],
            "P": b["priceChangePercent"], "w": b["weightedAvgPrice"], "x": b["prevClosePrice"],
            "c": b["lastPrice"], "Q": b["lastQty"], "b": b["bidPrice"], "B": b["bidQty"],
            "a": b["askPrice"], "A": b["askQty"], "o": b["openPrice"], "h": b["highPrice"],
            "l": b["lowPrice"], "v": b["volume"], "q": b["quoteVolume"], "O": b["openTime"],
            "C": b["closeTime"], "F": -1, "L": -1, "n": b["count"],
        }


def _close_time(open_time: int, interval: int) -> int:
    return open_time + interval - 1


def _round_up(value: Decimal, step: Decimal) -> Decimal:
    down = value.quantize(step, ROUND_DOWN)
    return down if down == value else down + step
