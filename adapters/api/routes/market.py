"""Market data for the dashboard: symbols and their rules, candles, ticker, live candles.

Public (no token): the same data every exchange publishes without an account.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sse_starlette import EventSourceResponse

from adapters.api.deps import ApiContext, Ctx
from adapters.api.routes.stream import PING_SECONDS, SSE_HEADERS
from adapters.api.serializers import dec
from adapters.platform.metrics import SSE_CLIENTS
from domain.errors import UnknownSymbol

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/market", tags=["market"])
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d", "1w"]
SymbolPath = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9]+$")]
TICKER_EVERY_SECONDS = 1.0


def known_symbol(ctx: ApiContext, symbol: str) -> str:
    symbol = symbol.upper()
    if ctx.runtime.symbols.rules(symbol) is None:
        raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
    return symbol


@router.get("/symbols")
def symbols(ctx: Ctx) -> list[dict[str, Any]]:
    """Every tradable symbol with its filters and the last price seen."""
    catalog = ctx.runtime.symbols
    out = []
    for name in catalog.symbols():
        rules = catalog.rules(name)
        assert rules is not None
        out.append({
            "symbol": name, "baseAsset": rules.base_asset, "quoteAsset": rules.quote_asset,
            "stepSize": dec(rules.step_size), "tickSize": dec(rules.tick_size),
            "minQty": dec(rules.min_qty), "maxQty": dec(rules.max_qty),
            "minPrice": dec(rules.min_price), "maxPrice": dec(rules.max_price),
            "minNotional": dec(rules.min_notional),
            "price": dec(catalog.reference_price(name)),
        })
    return out


@router.get("/{symbol}/klines")
async def klines(symbol: SymbolPath, ctx: Ctx, interval: Interval = "1m",
                 limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
    """Candles, oldest first: {time (open time, ms), open, high, low, close, volume}."""
    return await ctx.require_market().klines(known_symbol(ctx, symbol), interval, limit)


@router.get("/{symbol}/ticker")
async def ticker(symbol: SymbolPath, ctx: Ctx) -> dict[str, Any]:
    """Last price and 24-hour change."""
    return await ctx.require_market().ticker(known_symbol(ctx, symbol))


@router.get("/{symbol}/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "KLINE and TICKER events"}})
async def market_stream(symbol: SymbolPath, ctx: Ctx,
                        interval: Interval = "1m") -> EventSourceResponse:
    """Live candles (KLINE, the forming candle with `closed`) and the ticker (TICKER, ~1/s)."""
    market = ctx.require_market()
    name = known_symbol(ctx, symbol)

    async def events() -> AsyncIterator[dict[str, Any]]:
        with SSE_CLIENTS.labels(stream="market").track_inprogress():
            async for event in _market_events(market, name, interval):
                yield event

    return EventSourceResponse(events(), ping=PING_SECONDS, headers=SSE_HEADERS)


async def _market_events(market: Any, name: str, interval: str) -> AsyncIterator[dict[str, Any]]:
    """Candle updates of one symbol and interval, with the ticker about once a second."""
    last_ticker = 0.0
    async for candle in market.stream(name, interval):
        yield {"event": "KLINE", "data": json.dumps(candle, separators=(",", ":"))}
        now = time.monotonic()
        if now - last_ticker >= TICKER_EVERY_SECONDS:
            last_ticker = now
            try:
                tick = await market.ticker(name)
            except Exception as exc:  # a ticker hiccup must not end the candle stream
                log.debug("ticker for %s failed: %s", name, exc)
                continue
            yield {"event": "TICKER", "data": json.dumps(tick, separators=(",", ":"))}
