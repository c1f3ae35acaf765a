"""Market data through python-binance against the paper exchange, and the market routes."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.api.app import create_app
from adapters.binance.marketdata import BinanceMarketData
from adapters.binance.symbols import SymbolCatalogAdapter
from adapters.platform.bootstrap import Runtime
from tests.support.api import (
    LiveServer,
    TestClient,
    next_event,
    sse_events,
)

pytestmark = [pytest.mark.integration]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_klines_ticker_and_live_candles_from_the_paper_exchange(paper_exchange: Any) -> None:
    symbols = SymbolCatalogAdapter()

    async def scenario() -> None:
        market = BinanceMarketData.for_exchange_url(paper_exchange.url, symbols,
                                                    watch=["BTCUSDT", "ETHUSDT"])
        await market.start()
        try:
            candles = await market.klines("BTCUSDT", "1h", 5)
            assert len(candles) == 5
            assert set(candles[0]) == {"time", "open", "high", "low", "close", "volume"}
            assert all(isinstance(c["close"], str) and Decimal(c["close"]) > 0 for c in candles)
            assert candles[0]["time"] < candles[-1]["time"]
            tick = await market.ticker("ETHUSDT")
            assert tick["symbol"] == "ETHUSDT" and Decimal(tick["price"]) > 0
            assert "change24h" in tick
            stream = market.stream("BTCUSDT", "1m")
            first = await asyncio.wait_for(anext(stream), 10)
            assert set(first) == {"time", "open", "high", "low", "close", "volume", "closed"}
            await stream.aclose()
            for _ in range(100):  # the multiplexed ticker stream feeds reference prices
                if symbols.reference_price("ETHUSDT") and symbols.reference_price("BTCUSDT"):
                    break
                await asyncio.sleep(0.05)
            assert symbols.reference_price("BTCUSDT") is not None
            assert market.ticker_connected
        finally:
            await market.aclose()

    run(scenario())


def test_class_attribute_redirection_works_too(binance_on_paper: Any) -> None:
    async def scenario() -> None:
        market = BinanceMarketData(SymbolCatalogAdapter(), watch=[])
        try:
            assert len(await market.klines("SOLUSDT", "5m", 3)) == 3
        finally:
            await market.aclose()

    run(scenario())


def test_market_routes_and_market_sse(paper_exchange: Any, runtime: Runtime) -> None:
    market = BinanceMarketData.for_exchange_url(paper_exchange.url, runtime.symbols)
    with TestClient(create_app(runtime, market=market)) as client:
        candles = client.get("/api/market/btcusdt/klines", params={"interval": "15m",
                                                                   "limit": 3})
        assert candles.status_code == 200 and len(candles.json()) == 3
        assert client.get("/api/market/BTCUSDT/ticker").json()["symbol"] == "BTCUSDT"
        assert client.get("/api/market/BTCUSDT/klines",
                          params={"interval": "2m"}).status_code == 422
        assert client.get("/api/market/BTCUSDT/klines",
                          params={"limit": 5000}).status_code == 422
        unknown = client.get("/api/market/NOPE/klines")
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_symbol"

    market = BinanceMarketData.for_exchange_url(paper_exchange.url, runtime.symbols)
    server = LiveServer(create_app(runtime, market=market)).start()
    try:
        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client, \
                    client.stream("GET", "/api/market/ETHUSDT/stream",
                                  params={"interval": "1m"}) as response:
                assert response.status_code == 200
                events = sse_events(response)
                seen = set()
                while seen != {"KLINE", "TICKER"}:
                    seen.add((await next_event(events, 10)).event)

        run(scenario())
    finally:
        server.stop()
