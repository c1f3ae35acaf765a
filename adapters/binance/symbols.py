"""The write side's symbol catalog: each symbol's rules and a reference price fed by market
data (mark prices, MARKET-order notional checks)."""

from __future__ import annotations

import threading
from decimal import Decimal

from adapters.paper_exchange.markets import DEFAULT_MARKETS
from domain.symbols import SymbolRules


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
