"""The market-data port the API serves to browsers: candles, a ticker and live kline updates.

Implemented by adapters/binance/marketdata.py (the real exchange or the paper exchange);
tests may pass any object with these methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

KLINE_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d", "1w")


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
