"""The markets the paper exchange serves by default, with Binance-like filters.

The paper exchange serves these in exchangeInfo and simulates them. The write side validates
against the exchange's live exchangeInfo (adapters/binance/symbols.py); this table is only
its fallback when the exchange cannot be reached at start.
"""

from __future__ import annotations

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
