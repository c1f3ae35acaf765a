"""The markets TradeLedger knows by default, with Binance-like filters.

The paper exchange serves these in exchangeInfo and simulates them; the write side
validates against the same rules, so an order we accept is an order the exchange accepts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

from domain.symbols import SymbolRules

D = Decimal


@dataclass(frozen=True)
class Market:
    """A symbol's rules plus what the simulator needs: a start price and its volatility."""

    rules: SymbolRules
    start_price: Decimal
    annual_volatility: float


def _market(symbol: str, base: str, step: str, tick: str, min_qty: str, max_qty: str,
            price: str, vol: float, min_notional: str = "5") -> Market:
    return Market(
        rules=SymbolRules(
            symbol=symbol, base_asset=base, quote_asset="USDT",
            step_size=D(step), tick_size=D(tick), min_qty=D(min_qty), max_qty=D(max_qty),
            min_price=D(tick), max_price=D("1000000"), min_notional=D(min_notional),
        ),
        start_price=D(price),
        annual_volatility=vol,
    )


DEFAULT_MARKETS: dict[str, Market] = {
    m.rules.symbol: m
    for m in (
        _market("BTCUSDT", "BTC", "0.00001", "0.01", "0.00001", "9000", "96500.00", 0.55),
        _market("ETHUSDT", "ETH", "0.0001", "0.01", "0.0001", "9000", "3450.00", 0.70),
        _market("BNBUSDT", "BNB", "0.001", "0.01", "0.001", "9000", "640.00", 0.60),
        _market("SOLUSDT", "SOL", "0.001", "0.01", "0.001", "9000", "235.00", 0.90),
        _market("ADAUSDT", "ADA", "0.1", "0.0001", "0.1", "900000", "0.9800", 0.95),
        _market("XRPUSDT", "XRP", "0.1", "0.0001", "0.1", "900000", "1.4500", 1.00),
        _market("DOGEUSDT", "DOGE", "1", "0.00001", "1", "9000000", "0.38000", 1.10),
        _market("LINKUSDT", "LINK", "0.01", "0.001", "0.01", "90000", "18.500", 0.95),
    )
}


class SymbolCatalogAdapter:
    """SymbolCatalog over a set of rules, with reference prices fed by market data."""

    def __init__(self, rules: dict[str, SymbolRules] | None = None) -> None:
        self._rules = rules or {s: m.rules for s, m in DEFAULT_MARKETS.items()}
        self._prices: dict[str, Decimal] = {}
        self._lock = threading.Lock()

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol)

    def symbols(self) -> list[str]:
        return sorted(self._rules)

    def reference_price(self, symbol: str) -> Decimal | None:
        with self._lock:
            return self._prices.get(symbol)

    def update_price(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            self._prices[symbol] = price
