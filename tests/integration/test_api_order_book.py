"""The order book and market trades through python-binance against the paper exchange, and
the API's depth / trades routes and their DEPTH / MARKET_TRADE events on the market SSE."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx

from adapters.api.app import create_app
from adapters.binance.marketdata import DEPTH_LEVELS, BinanceMarketData
from adapters.binance.symbols import SymbolCatalogAdapter
from adapters.platform.bootstrap import Runtime
from tests.support.api import LiveServer, TestClient, next_event, sse_events
from tests.support.paper_exchange import PaperExchangeHandle, binance_module_marks

pytestmark = binance_module_marks(timeout=90)

D = Decimal


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_market_data_reads_the_book_and_the_tape(paper_exchange: PaperExchangeHandle) -> None:
    async def scenario() -> None:
        market = BinanceMarketData.for_exchange_url(paper_exchange.url, SymbolCatalogAdapter(),
                                                    watch=[])
        try:
            book = await market.depth("ETHUSDT", 10)
            assert set(book) == {"bids", "asks", "lastUpdateId"}
            assert len(book["bids"]) == len(book["asks"]) == 10
            assert D(book["bids"][0][0]) < D(book["asks"][0][0])
            trades: list[dict[str, Any]] = []
            while not trades:  # the walk prints a trade on each tick after start-up
                await asyncio.sleep(0.1)
                trades = await market.trades("ETHUSDT", 5)
            assert len(trades) <= 5
            assert set(trades[0]) == {"id", "price", "qty", "time", "side"}
            assert trades[0]["side"] in ("BUY", "SELL")
            depth = market.depth_stream("ETHUSDT")
            live = await asyncio.wait_for(anext(depth), 10)
            assert len(live["bids"]) == DEPTH_LEVELS
            tape = market.trade_stream("ETHUSDT")
            print_ = await asyncio.wait_for(anext(tape), 10)
            assert D(print_["price"]) > 0 and print_["id"] > 0
            assert len(market._feeds) == 2
            await depth.aclose()
            await tape.aclose()
            assert market._feeds == {}  # nobody watches: the sockets are closed
        finally:
            await market.aclose()

    run(scenario())


def test_depth_and_trades_routes(paper_exchange: PaperExchangeHandle, runtime: Runtime) -> None:
    market = BinanceMarketData.for_exchange_url(paper_exchange.url, runtime.symbols)
    with TestClient(create_app(runtime, market=market)) as client:
        book = client.get("/api/market/btcusdt/depth", params={"limit": 5})
        assert book.status_code == 200
        body = book.json()
        assert len(body["bids"]) == len(body["asks"]) == 5
        assert isinstance(body["lastUpdateId"], int)
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in body["bids"])
        trades = client.get("/api/market/BTCUSDT/trades", params={"limit": 3})
        assert trades.status_code == 200 and len(trades.json()) <= 3
        assert all(t["side"] in ("BUY", "SELL") for t in trades.json())
        for params in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}):
            assert client.get("/api/market/BTCUSDT/depth", params=params).status_code == 422
            assert client.get("/api/market/BTCUSDT/trades", params=params).status_code == 422
        unknown = client.get("/api/market/NOPE/depth")
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_symbol"
        bad = client.get("/api/market/BTCUSDT/stream", params={"channels": "depth,gossip"})
        assert bad.status_code == 422 and "channels" in bad.text


def test_market_sse_relays_depth_and_trades_only_when_asked(
        paper_exchange: PaperExchangeHandle, runtime: Runtime) -> None:
    market = BinanceMarketData.for_exchange_url(paper_exchange.url, runtime.symbols)
    server = LiveServer(create_app(runtime, market=market)).start()

    async def watch(channels: str | None, wanted: set[str]) -> dict[str, Any]:
        params = {"channels": channels} if channels else {}
        seen: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client, \
                client.stream("GET", "/api/market/SOLUSDT/stream", params=params) as response:
            assert response.status_code == 200
            events = sse_events(response)
            while set(seen) != wanted or len(seen) < len(wanted):
                event = await next_event(events, 10)
                assert event.event in wanted, event.event
                seen[event.event] = json.loads(event.data)
                if set(seen) == wanted:
                    break
        return seen

    try:
        seen = run(watch("depth,trades", {"DEPTH", "MARKET_TRADE"}))
        assert len(seen["DEPTH"]["bids"]) == DEPTH_LEVELS
        assert set(seen["MARKET_TRADE"]) == {"id", "price", "qty", "time", "side"}
        assert set(run(watch(None, {"KLINE", "TICKER"}))) == {"KLINE", "TICKER"}
        both = run(watch("kline,depth", {"KLINE", "TICKER", "DEPTH"}))
        assert set(both) == {"KLINE", "TICKER", "DEPTH"}
        for _ in range(100):  # the last watcher left: no exchange socket stays open
            if not market._feeds:
                break
            run(asyncio.sleep(0.05))
        assert market._feeds == {}
    finally:
        server.stop()
