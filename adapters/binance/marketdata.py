"""Market data from Binance (or the paper exchange) through python-binance.

REST (`AsyncClient`) for candles and the 24-hour ticker; websockets
(`BinanceSocketManager`) for live candles and one multiplexed ticker stream that keeps
`SymbolCatalogAdapter` reference prices current (mark prices, MARKET-order notional checks).
Each (symbol, interval) kline socket is opened once per process and fanned out to every
subscriber; sockets that drop are reopened with exponential backoff.

Where it connects: by default python-binance's class attributes (`AsyncClient.API_URL`,
`BinanceSocketManager.STREAM_URL`), which the composition root or a test fixture may point
at the paper exchange; `api_url` / `stream_url` override them for this instance only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

from adapters.platform.aio import cancel_and_wait

log = logging.getLogger(__name__)

KLINE_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d", "1w")

DEPTH_LEVELS = 20  # the partial book stream the desk's ladder shows
TICKER_FRESH_SECONDS = 5.0
SUBSCRIBER_QUEUE = 100
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0


class MarketDataError(RuntimeError):
    """The exchange did not answer a market-data request."""


@runtime_checkable
class MarketData(Protocol):
    """Candles and tickers per symbol; every price and volume is a decimal string."""

    async def klines(self, symbol: str, interval: str, limit: int) -> list[dict[str, Any]]:
        """Return the last `limit` candles: {time (ms), open, high, low, close, volume}."""
        ...

    async def ticker(self, symbol: str) -> dict[str, Any]:
        """Return {symbol, price, change24h (percent), high24h, low24h, volume24h, time}."""
        ...

    def stream(self, symbol: str, interval: str) -> AsyncIterator[dict[str, Any]]:
        """Yield live kline updates (the candle dict plus `closed: bool`) until cancelled."""
        ...

    async def depth(self, symbol: str, limit: int) -> dict[str, Any]:
        """Return the order book: {bids: [[price, qty]...] best first, asks, lastUpdateId}."""
        ...

    async def trades(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        """Return the last `limit` market trades, oldest first (see `trade_from_rest`)."""
        ...

    def depth_stream(self, symbol: str) -> AsyncIterator[dict[str, Any]]:
        """Yield the top DEPTH_LEVELS of the book about every 100 ms until cancelled."""
        ...

    def trade_stream(self, symbol: str) -> AsyncIterator[dict[str, Any]]:
        """Yield each market trade of `symbol` as it prints until cancelled."""
        ...


def candle_from_array(row: list[Any]) -> dict[str, Any]:
    """Map a REST kline array [openTime, o, h, l, c, v, ...] to our candle dict."""
    return {"time": int(row[0]), "open": str(row[1]), "high": str(row[2]), "low": str(row[3]),
            "close": str(row[4]), "volume": str(row[5])}


def candle_from_event(k: dict[str, Any]) -> dict[str, Any]:
    """Map a websocket kline payload (`k`) to our candle dict plus `closed`."""
    return {"time": int(k["t"]), "open": str(k["o"]), "high": str(k["h"]), "low": str(k["l"]),
            "close": str(k["c"]), "volume": str(k["v"]), "closed": bool(k.get("x", False))}


def ticker_from_rest(data: dict[str, Any]) -> dict[str, Any]:
    """Map GET /api/v3/ticker/24hr to our ticker dict."""
    return {"symbol": data["symbol"], "price": str(data["lastPrice"]),
            "change24h": str(data.get("priceChangePercent", "0")),
            "priceChange24h": str(data.get("priceChange", "0")),
            "high24h": str(data.get("highPrice", "0")), "low24h": str(data.get("lowPrice", "0")),
            "volume24h": str(data.get("volume", "0")),
            "quoteVolume24h": str(data.get("quoteVolume", "0")),
            "time": int(data.get("closeTime") or time.time() * 1000)}


def ticker_from_event(data: dict[str, Any]) -> dict[str, Any]:
    """Map a `<symbol>@ticker` stream payload to our ticker dict."""
    return {"symbol": data["s"], "price": str(data["c"]), "change24h": str(data.get("P", "0")),
            "priceChange24h": str(data.get("p", "0")), "high24h": str(data.get("h", "0")),
            "low24h": str(data.get("l", "0")), "volume24h": str(data.get("v", "0")),
            "quoteVolume24h": str(data.get("q", "0")),
            "time": int(data.get("E") or time.time() * 1000)}


def book_from_depth(data: dict[str, Any]) -> dict[str, Any]:
    """Map a REST depth answer or a partial book stream message to our book dict."""
    return {"bids": [[str(p), str(q)] for p, q, *_ in data.get("bids", [])],
            "asks": [[str(p), str(q)] for p, q, *_ in data.get("asks", [])],
            "lastUpdateId": int(data.get("lastUpdateId", 0))}


def trade_from_rest(data: dict[str, Any]) -> dict[str, Any]:
    """Map one GET /api/v3/trades row to our market trade dict.

    `side` is the taker's: a print whose buyer was the maker was a SELL into the bids.
    """
    return {"id": int(data["id"]), "price": str(data["price"]), "qty": str(data["qty"]),
            "time": int(data["time"]), "side": "SELL" if data.get("isBuyerMaker") else "BUY"}


def trade_from_event(data: dict[str, Any]) -> dict[str, Any]:
    """Map a `<symbol>@trade` stream payload to our market trade dict."""
    return {"id": int(data["t"]), "price": str(data["p"]), "qty": str(data["q"]),
            "time": int(data["T"]), "side": "SELL" if data.get("m") else "BUY"}


class _KlineFeed:
    """One socket (klines, book or trades) shared by every subscriber of its stream."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.task: asyncio.Task[None] | None = None

    def publish(self, candle: dict[str, Any]) -> None:
        for queue in list(self.queues):
            if queue.full():  # a slow reader gets the newest candles, not an ever-longer lag
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(candle)


class BinanceMarketData:
    """The MarketData port on python-binance (above)."""

    def __init__(self, symbols: Any = None, *, watch: Iterable[str] | None = None,
                 api_url: str | None = None, stream_url: str | None = None,
                 testnet: bool = False) -> None:
        self._symbols = symbols
        self._watch = sorted({s.upper() for s in watch}) if watch is not None else (
            list(symbols.symbols()) if symbols is not None and hasattr(symbols, "symbols")
            else [])
        self._api_url = api_url
        self._stream_url = stream_url
        self._testnet = testnet
        self._client: Any = None
        self._sockets: Any = None
        self._tickers: dict[str, tuple[float, dict[str, Any]]] = {}
        self._feeds: dict[tuple[str, str], _KlineFeed] = {}  # (symbol, stream kind)
        self._ticker_task: asyncio.Task[None] | None = None
        self.ticker_connected = False

    @classmethod
    def for_exchange_url(cls, base_url: str, symbols: Any = None,
                         **kwargs: Any) -> BinanceMarketData:
        """Point at a Binance-compatible server at `base_url` (e.g. the paper exchange)."""
        base = base_url.rstrip("/")
        ws = "ws" + base.removeprefix("http")
        return cls(symbols, api_url=base + "/api", stream_url=ws + "/", **kwargs)

    # ---- life cycle --------------------------------------------------------------
    async def start(self) -> None:
        """Create the clients (inside the running loop) and start the ticker stream."""
        await self._ensure_client()
        if self._watch and self._ticker_task is None:
            self._ticker_task = asyncio.create_task(self._ticker_loop(), name="md-tickers")

    async def aclose(self) -> None:
        await cancel_and_wait([*(f.task for f in self._feeds.values()), self._ticker_task])
        self._feeds.clear()
        self._ticker_task = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close_connection()
            self._client = None

    async def _ensure_client(self) -> Any:
        if self._client is None:
            from binance import AsyncClient, BinanceSocketManager

            # The constructor, not AsyncClient.create(): no ping, so start-up never
            # waits on the exchange; REST calls fail (and are retried) later instead.
            client = AsyncClient(testnet=self._testnet)
            if self._api_url:
                client.API_URL = self._api_url
                client.API_TESTNET_URL = self._api_url
            sockets = BinanceSocketManager(client)
            if self._stream_url:
                sockets.STREAM_URL = self._stream_url
                sockets.STREAM_TESTNET_URL = self._stream_url
            self._client, self._sockets = client, sockets
        return self._client

    # ---- REST --------------------------------------------------------------------
    async def klines(self, symbol: str, interval: str, limit: int) -> list[dict[str, Any]]:
        """Return the last `limit` candles of `symbol`, oldest first."""
        if interval not in KLINE_INTERVALS:
            raise ValueError(f"unsupported interval {interval!r}")
        client = await self._ensure_client()
        try:
            rows = await client.get_klines(symbol=symbol.upper(), interval=interval,
                                           limit=int(limit))
        except Exception as exc:
            raise MarketDataError(f"klines for {symbol} failed: {type(exc).__name__}") from exc
        return [candle_from_array(row) for row in rows]

    async def ticker(self, symbol: str) -> dict[str, Any]:
        """Return the 24-hour ticker: from the ticker stream when fresh, else from REST."""
        symbol = symbol.upper()
        cached = self._tickers.get(symbol)
        if cached and time.monotonic() - cached[0] < TICKER_FRESH_SECONDS:
            return dict(cached[1])
        client = await self._ensure_client()
        try:
            data = await client.get_ticker(symbol=symbol)
        except Exception as exc:
            raise MarketDataError(f"ticker for {symbol} failed: {type(exc).__name__}") from exc
        tick = ticker_from_rest(data)
        self._remember_ticker(tick)
        return tick

    def _remember_ticker(self, tick: dict[str, Any]) -> None:
        symbol = str(tick["symbol"]).upper()
        self._tickers[symbol] = (time.monotonic(), tick)
        self._update_price(symbol, tick["price"])

    def _update_price(self, symbol: str, price: Any) -> None:
        if self._symbols is None:
            return
        try:
            value = Decimal(str(price))
        except InvalidOperation:
            return
        if value.is_finite() and value > 0:
            self._symbols.update_price(symbol, value)

    # ---- websockets --------------------------------------------------------------
    async def _ticker_loop(self) -> None:
        streams = [f"{s.lower()}@ticker" for s in self._watch]
        async for message in self._socket_messages(lambda: self._sockets.multiplex_socket(streams),
                                                   "tickers"):
            self.ticker_connected = True
            data = message.get("data", message)
            if isinstance(data, dict) and data.get("e") == "24hrTicker":
                self._remember_ticker(ticker_from_event(data))

    async def _socket_messages(self, open_socket: Any, label: str) -> AsyncIterator[dict[str, Any]]:
        """Yield messages from a socket, reopening it with backoff whenever it fails."""
        await self._ensure_client()
        backoff = BACKOFF_START
        while True:
            try:
                async with open_socket() as socket:
                    while True:
                        message = await socket.recv()
                        if not isinstance(message, dict):
                            continue
                        if message.get("e") == "error":  # python-binance gave up reconnecting
                            raise MarketDataError(str(message.get("m") or message.get("type")))
                        backoff = BACKOFF_START
                        yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.ticker_connected = False if label == "tickers" else self.ticker_connected
                log.warning("market stream %s dropped (%s: %s); reconnecting in %.1fs",
                            label, type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def depth(self, symbol: str, limit: int) -> dict[str, Any]:
        """Return the order book, `limit` levels a side (GET /api/v3/depth)."""
        client = await self._ensure_client()
        try:
            data = await client.get_order_book(symbol=symbol.upper(), limit=int(limit))
        except Exception as exc:
            raise MarketDataError(f"depth for {symbol} failed: {type(exc).__name__}") from exc
        return book_from_depth(data)

    async def trades(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        """Return the last `limit` market trades, oldest first (GET /api/v3/trades)."""
        client = await self._ensure_client()
        try:
            rows = await client.get_recent_trades(symbol=symbol.upper(), limit=int(limit))
        except Exception as exc:
            raise MarketDataError(f"trades for {symbol} failed: {type(exc).__name__}") from exc
        return [trade_from_rest(row) for row in rows]

    async def _depth_loop(self, symbol: str, feed: _KlineFeed) -> None:
        async for message in self._socket_messages(
                lambda: self._sockets.depth_socket(symbol, depth=str(DEPTH_LEVELS), interval=100),
                f"{symbol.lower()}@depth{DEPTH_LEVELS}@100ms"):
            if "bids" in message and "asks" in message:
                feed.publish(book_from_depth(message))

    async def _trade_loop(self, symbol: str, feed: _KlineFeed) -> None:
        async for message in self._socket_messages(
                lambda: self._sockets.trade_socket(symbol), f"{symbol.lower()}@trade"):
            if message.get("e") == "trade":
                trade = trade_from_event(message)
                self._update_price(symbol, trade["price"])
                feed.publish(trade)

    def depth_stream(self, symbol: str) -> AsyncIterator[dict[str, Any]]:
        """Yield the top DEPTH_LEVELS of the book (~every 100 ms) until the caller stops."""
        name = symbol.upper()
        return self._subscribe((name, "depth"), lambda feed: self._depth_loop(name, feed))

    def trade_stream(self, symbol: str) -> AsyncIterator[dict[str, Any]]:
        """Yield each market trade as it prints until the caller stops iterating."""
        name = symbol.upper()
        return self._subscribe((name, "trade"), lambda feed: self._trade_loop(name, feed))

    async def _kline_loop(self, symbol: str, interval: str, feed: _KlineFeed) -> None:
        label = f"{symbol.lower()}@kline_{interval}"
        async for message in self._socket_messages(
                lambda: self._sockets.kline_socket(symbol, interval), label):
            k = message.get("k")
            if message.get("e") == "kline" and isinstance(k, dict):
                candle = candle_from_event(k)
                self._update_price(symbol, candle["close"])
                feed.publish(candle)

    def stream(self, symbol: str, interval: str) -> AsyncIterator[dict[str, Any]]:
        """Yield live candles of (symbol, interval) until the caller stops iterating."""
        if interval not in KLINE_INTERVALS:
            raise ValueError(f"unsupported interval {interval!r}")
        name = symbol.upper()
        return self._subscribe((name, interval),
                               lambda feed: self._kline_loop(name, interval, feed))

    async def _subscribe(
            self, key: tuple[str, str],
            loop: Callable[[_KlineFeed], Coroutine[Any, Any, None]],
    ) -> AsyncIterator[dict[str, Any]]:
        """Share one socket per key among its subscribers; close it with the last one, so an
        unwatched stream costs nothing."""
        await self._ensure_client()
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _KlineFeed()
            feed.task = asyncio.create_task(loop(feed), name=f"md-{key[0]}-{key[1]}")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        feed.queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            feed.queues.discard(queue)
            if not feed.queues and self._feeds.get(key) is feed:
                del self._feeds[key]
                if feed.task:
                    feed.task.cancel()
