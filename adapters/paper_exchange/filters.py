"""A symbol's trading status and the filters beyond `SymbolRules`, changeable at run time.

`SymbolRules` (PRICE_FILTER, LOT_SIZE, NOTIONAL minimum) comes from the market table;
PERCENT_PRICE_BY_SIDE, MARKET_LOT_SIZE, MAX_NUM_ORDERS, the NOTIONAL maximum and the status
live here. `POST /admin/exchange-info` changes either, as Binance changes exchangeInfo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.paper_exchange import errors as e
from adapters.paper_exchange.markets import Market
from adapters.paper_exchange.models import fmt

STATUSES = ("TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY")
FILTER_TYPES = ("PRICE_FILTER", "LOT_SIZE", "NOTIONAL", "PERCENT_PRICE_BY_SIDE",
                "MARKET_LOT_SIZE", "MAX_NUM_ORDERS")
D = Decimal
WIDE_UP, WIDE_DOWN, NONE, NOTIONAL_MAX = D(1000), D("0.001"), D(0), D(9_000_000)


@dataclass
class SymbolState:
    """Status and extra filters of one symbol (Binance-like defaults)."""

    status: str = "TRADING"
    # PERCENT_PRICE_BY_SIDE: BUY within [down, up] x reference, SELL likewise. The default
    # band is wider than Binance's BTCUSDT (0.2 to 5) so that resting orders far from the
    # price, which many suites place, stay valid; /admin/exchange-info narrows it. avgPriceMins
    # 0 makes the last price the reference (the docs' rule), so a test's price jump applies
    # to the next order at once instead of after a 5-minute average catches up.
    bid_multiplier_up: Decimal = WIDE_UP
    bid_multiplier_down: Decimal = WIDE_DOWN
    ask_multiplier_up: Decimal = WIDE_UP
    ask_multiplier_down: Decimal = WIDE_DOWN
    avg_price_mins: int = 0
    market_min_qty: Decimal = NONE
    market_max_qty: Decimal = NONE  # 0: LOT_SIZE's maximum
    market_step_size: Decimal = NONE  # 0: no step check, as Binance publishes it
    max_num_orders: int = 200
    max_notional: Decimal = NOTIONAL_MAX

    @property
    def accepts_orders(self) -> bool:
        """Tell whether new orders may be placed."""
        return self.status == "TRADING"

    @property
    def accepts_cancels(self) -> bool:
        """Tell whether open orders may be canceled (also during CANCEL_ONLY)."""
        return self.status in ("TRADING", "CANCEL_ONLY")


def filters_json(market: Market, state: SymbolState) -> list[dict[str, Any]]:
    """Return a symbol's `filters` array of exchangeInfo."""
    r = market.rules
    return [
        {"filterType": "PRICE_FILTER", "minPrice": fmt(r.min_price),
         "maxPrice": fmt(r.max_price), "tickSize": fmt(r.tick_size)},
        {"filterType": "LOT_SIZE", "minQty": fmt(r.min_qty), "maxQty": fmt(r.max_qty),
         "stepSize": fmt(r.step_size)},
        {"filterType": "NOTIONAL", "minNotional": fmt(r.min_notional),
         "applyMinToMarket": True, "maxNotional": fmt(state.max_notional),
         "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "PERCENT_PRICE_BY_SIDE",
         "bidMultiplierUp": str(state.bid_multiplier_up),
         "bidMultiplierDown": str(state.bid_multiplier_down),
         "askMultiplierUp": str(state.ask_multiplier_up),
         "askMultiplierDown": str(state.ask_multiplier_down),
         "avgPriceMins": state.avg_price_mins},
        {"filterType": "MARKET_LOT_SIZE", "minQty": fmt(state.market_min_qty),
         "maxQty": fmt(state.market_max_qty or r.max_qty),
         "stepSize": fmt(state.market_step_size)},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": state.max_num_orders},
    ]


def apply(market: Market, state: SymbolState, filters: object,
          status: object) -> tuple[Market, SymbolState]:
    """Return the market and state with `filters` (Binance's shape) and `status` applied.

    A filter given replaces the fields it names; filters not given stay as they are.
    """
    rules, new = market.rules, dataclasses.replace(state)
    if status is not None:
        if status not in STATUSES:
            raise e.illegal("status", ", ".join(STATUSES))
        new.status = str(status)
    if filters is None:
        filters = []
    if not isinstance(filters, list):
        raise e.illegal("filters", "a list of exchangeInfo filters")
    for f in filters:
        if not isinstance(f, dict) or f.get("filterType") not in FILTER_TYPES:
            raise e.illegal("filters", "filterType one of " + ", ".join(FILTER_TYPES))
        kind = f["filterType"]
        if kind == "PRICE_FILTER":
            rules = dataclasses.replace(
                rules, min_price=_dec(f, "minPrice", rules.min_price),
                max_price=_dec(f, "maxPrice", rules.max_price),
                tick_size=_dec(f, "tickSize", rules.tick_size, positive=True))
        elif kind == "LOT_SIZE":
            rules = dataclasses.replace(
                rules, min_qty=_dec(f, "minQty", rules.min_qty),
                max_qty=_dec(f, "maxQty", rules.max_qty),
                step_size=_dec(f, "stepSize", rules.step_size, positive=True))
        elif kind == "NOTIONAL":
            rules = dataclasses.replace(rules, min_notional=_dec(f, "minNotional",
                                                                 rules.min_notional))
            new.max_notional = _dec(f, "maxNotional", new.max_notional)
        elif kind == "PERCENT_PRICE_BY_SIDE":
            new.bid_multiplier_up = _dec(f, "bidMultiplierUp", new.bid_multiplier_up)
            new.bid_multiplier_down = _dec(f, "bidMultiplierDown", new.bid_multiplier_down)
            new.ask_multiplier_up = _dec(f, "askMultiplierUp", new.ask_multiplier_up)
            new.ask_multiplier_down = _dec(f, "askMultiplierDown", new.ask_multiplier_down)
            new.avg_price_mins = int(_dec(f, "avgPriceMins", D(new.avg_price_mins)))
        elif kind == "MARKET_LOT_SIZE":
            new.market_min_qty = _dec(f, "minQty", new.market_min_qty)
            new.market_max_qty = _dec(f, "maxQty", new.market_max_qty)
            new.market_step_size = _dec(f, "stepSize", new.market_step_size)
        else:
            new.max_num_orders = int(_dec(f, "maxNumOrders", D(new.max_num_orders),
                                          positive=True))
    return dataclasses.replace(market, rules=rules), new


def _dec(f: dict[str, Any], name: str, default: Decimal, positive: bool = False) -> Decimal:
    if name not in f:
        return default
    try:
        value = Decimal(str(f[name]))
    except InvalidOperation:
        raise e.illegal(name, "a decimal string") from None
    if not value.is_finite() or value < 0 or (positive and value == 0) or value > 10**12:
        raise e.illegal(name, "a non-negative decimal string" if not positive
                        else "a positive decimal string")
    return value
