"""Market data for the dashboard: symbols and their rules, candles, ticker, live candles.

Public (no token): the same data every exchange publishes without an account.
"""

from __future__ import annotations

import asyncio
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
from adapters.platform.metrics import SSE_CLIENTS
from domain.errors import UnknownSymbol

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/market", tags=["market"])
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d", "1w"]
SymbolPath = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9]+$")]
TICKER_EVERY_SECONDS = 1.0
CACHE_SECONDS = 2.0  # klines and tickers: how long one exchange answer serves everyone
MARKET_STREAMS_PER_IP = 16


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


@router.get("/{symbol}/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "KLINE and TICKER events"}})
async def market_stream(symbol: SymbolPath, ctx: Ctx, request: Request,
                        interval: Interval = "1m") -> EventSourceResponse:
    """Live candles (KLINE, the forming candle with `closed`) and the ticker (TICKER, ~1/s)."""
    limit_ip(ctx, request)
    market = ctx.require_market()
    name = known_symbol(ctx, symbol)
    slot = StreamSlot(ctx, "ip:" + client_ip(request), MARKET_STREAMS_PER_IP)

    async def events() -> AsyncIterator[dict[str, Any]]:
        with SSE_CLIENTS.labels(stream="market").track_inprogress():
            async for event in _market_events(market, name, interval, market_cache(ctx)):
                yield event

    return stream_response(events(), slot)


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
