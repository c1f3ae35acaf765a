"""Market data for the dashboard: symbols and their rules, candles, ticker, order book,
market trades, and their live streams.

Public (no token): the same data every exchange publishes without an account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from sse_starlette import EventSourceResponse

from adapters.api.deps import ApiContext, Ctx, client_ip
from adapters.api.errors import too_many_requests
from adapters.api.routes.stream import StreamSlot, stream_response
from adapters.api.serializers import dec
from adapters.platform.aio import cancel_and_wait
from adapters.platform.metrics import SSE_CLIENTS
from domain.errors import UnknownSymbol, ValidationFailed

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/market", tags=["market"])
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d", "1w"]
SymbolPath = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9]+$")]
TICKER_EVERY_SECONDS = 1.0
CACHE_SECONDS = 2.0  # klines and tickers: how long one exchange answer serves everyone
MARKET_STREAMS_PER_IP = 16
CHANNELS = ("kline", "depth", "trades")


class MarketCache:
    """Short-lived answers of the exchange, one fetch at a time per key (single flight), so
    however many clients ask, the exchange sees about one request per key every 2 s."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}

    async def get(self, key: tuple[Any, ...], fetch: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._entries.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            value = await fetch()
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), value)
            return value


def limit_ip(ctx: ApiContext, request: Request) -> None:
    """Refuse a client address over its market-data budget."""
    if ctx.market_limiter is None:
        return
    wait = ctx.market_limiter.acquire(client_ip(request))
    if wait:
        raise too_many_requests("too many market-data requests; slow down", wait)


def market_cache(ctx: ApiContext) -> MarketCache:
    if ctx.market_cache is None:
        ctx.market_cache = MarketCache()
    cache: MarketCache = ctx.market_cache
    return cache


def known_symbol(ctx: ApiContext, symbol: str) -> str:
    symbol = symbol.upper()
    if ctx.runtime.symbols.rules(symbol) is None:
        raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
    return symbol


def _limit(value: Decimal) -> str | None:
    return dec(value) if value.is_finite() else None


@router.get("/symbols")
def symbols(ctx: Ctx) -> list[dict[str, Any]]:
    """Every symbol with its exchange status, its filters and the last price seen.

    A limit the exchange does not set (max 0 in exchangeInfo) is null, not "Infinity".
    """
    catalog = ctx.runtime.symbols
    out = []
    for name in catalog.symbols():
        rules = catalog.rules(name)
        assert rules is not None
        out.append({
            "symbol": name, "status": rules.status,
            "baseAsset": rules.base_asset, "quoteAsset": rules.quote_asset,
            "stepSize": dec(rules.step_size), "tickSize": dec(rules.tick_size),
            "minQty": dec(rules.min_qty), "maxQty": _limit(rules.max_qty),
            "minPrice": dec(rules.min_price), "maxPrice": _limit(rules.max_price),
            "minNotional": dec(rules.min_notional),
            "price": dec(catalog.reference_price(name)),
        })
    return out


@router.get("/{symbol}/klines")
async def klines(symbol: SymbolPath, ctx: Ctx, request: Request, interval: Interval = "1m",
                 limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
    """Candles, oldest first: {time (open time, ms), open, high, low, close, volume}."""
    limit_ip(ctx, request)
    market, name = ctx.require_market(), known_symbol(ctx, symbol)
    result: list[dict[str, Any]] = await market_cache(ctx).get(
        ("klines", name, interval, limit), lambda: market.klines(name, interval, limit))
    return result


@router.get("/{symbol}/ticker")
async def ticker(symbol: SymbolPath, ctx: Ctx, request: Request) -> dict[str, Any]:
    """Last price and 24-hour change."""
    limit_ip(ctx, request)
    market, name = ctx.require_market(), known_symbol(ctx, symbol)
    result: dict[str, Any] = await market_cache(ctx).get(("ticker", name),
                                                         lambda: market.ticker(name))
    return result


@router.get("/{symbol}/depth")
async def depth(symbol: SymbolPath, ctx: Ctx, request: Request,
                limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    """The order book: {bids: [[price, qty]...] best first, asks: [...], lastUpdateId}."""
    limit_ip(ctx, request)
    market, name = ctx.require_market(), known_symbol(ctx, symbol)
    result: dict[str, Any] = await market_cache(ctx).get(
        ("depth", name, limit), lambda: market.depth(name, limit))
    return result


@router.get("/{symbol}/trades")
async def trades(symbol: SymbolPath, ctx: Ctx, request: Request,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    """Recent market trades, oldest first: {id, price, qty, time (ms), side (the taker's)}."""
    limit_ip(ctx, request)
    market, name = ctx.require_market(), known_symbol(ctx, symbol)
    result: list[dict[str, Any]] = await market_cache(ctx).get(
        ("trades", name, limit), lambda: market.trades(name, limit))
    return result


def parse_channels(text: str) -> tuple[str, ...]:
    """Read `channels=kline,depth,trades` (any non-empty subset, in any order)."""
    chosen = tuple(dict.fromkeys(c.strip().lower() for c in text.split(",") if c.strip()))
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown or not chosen:
        raise ValidationFailed(
            f"channels must be a comma-separated subset of {', '.join(CHANNELS)}",
            field="channels")
    return chosen


@router.get("/{symbol}/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "KLINE, TICKER, DEPTH and MARKET_TRADE events"}})
async def market_stream(symbol: SymbolPath, ctx: Ctx, request: Request,
                        interval: Interval = "1m",
                        channels: Annotated[str, Query(max_length=40)] = "kline",
                        ) -> EventSourceResponse:
    """Live market data of one symbol; `channels` picks what (default `kline`):

    - `kline`: candles (KLINE, the forming candle with `closed`) and the ticker (TICKER, ~1/s);
    - `depth`: the top 20 levels of the book (DEPTH, up to every 100 ms);
    - `trades`: each market trade as it prints (MARKET_TRADE).

    The exchange is subscribed to a channel only while some client watches it.
    """
    limit_ip(ctx, request)
    market = ctx.require_market()
    name = known_symbol(ctx, symbol)
    chosen = parse_channels(channels)
    slot = StreamSlot(ctx, "ip:" + client_ip(request), MARKET_STREAMS_PER_IP)
    sources: list[AsyncIterator[dict[str, Any]]] = []
    if "kline" in chosen:
        sources.append(_market_events(market, name, interval, market_cache(ctx)))
    if "depth" in chosen:
        sources.append(_named("DEPTH", market.depth_stream(name)))
    if "trades" in chosen:
        sources.append(_named("MARKET_TRADE", market.trade_stream(name)))

    async def events() -> AsyncIterator[dict[str, Any]]:
        with SSE_CLIENTS.labels(stream="market").track_inprogress():
            async for event in merge(sources):
                yield event

    return stream_response(events(), slot)


async def _named(event: str, items: AsyncIterator[dict[str, Any]],
                 ) -> AsyncIterator[dict[str, Any]]:
    async for item in items:
        yield {"event": event, "data": json.dumps(item, separators=(",", ":"))}


async def merge(sources: list[AsyncIterator[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    """Interleave several event streams as they produce; closing this closes them all (so
    their exchange subscriptions end with the last watcher)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)

    async def pump(source: AsyncIterator[dict[str, Any]]) -> None:
        async for item in source:
            await queue.put(item)

    tasks = [asyncio.create_task(pump(s)) for s in sources]
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait([getter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                continue
            getter.cancel()
            for task in done:  # a source ended or failed: so does the stream
                task.result()
            return
    finally:
        await cancel_and_wait(tasks)
        for source in sources:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


async def _market_events(market: Any, name: str, interval: str,
                         cache: MarketCache) -> AsyncIterator[dict[str, Any]]:
    """Candle updates of one symbol and interval, with the ticker about once a second."""
    last_ticker = 0.0
    async for candle in market.stream(name, interval):
        yield {"event": "KLINE", "data": json.dumps(candle, separators=(",", ":"))}
        now = time.monotonic()
        if now - last_ticker >= TICKER_EVERY_SECONDS:
            last_ticker = now
            try:
                tick = await cache.get(("ticker", name), lambda: market.ticker(name))
            except Exception as exc:  # a ticker hiccup must not end the candle stream
                log.debug("ticker for %s failed: %s", name, exc)
                continue
            yield {"event": "TICKER", "data": json.dumps(tick, separators=(",", ":"))}
