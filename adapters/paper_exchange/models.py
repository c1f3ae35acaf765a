"""The paper exchange's records: accounts, orders and trades, with their JSON round trip."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVar

ZERO = Decimal(0)
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
_Record = TypeVar("_Record", "Order", "Trade")


@dataclass
class Balance:
    """One asset's free and locked amounts."""

    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Account:
    """An API key pair with its balances."""

    api_key: str
    secret: str
    created: int
    balances: dict[str, Balance] = field(default_factory=dict)

    def balance(self, asset: str) -> Balance:
        """Return the asset's balance, created empty on first use."""
        return self.balances.setdefault(asset, Balance())


@dataclass
class Order:
    """A spot order as the exchange tracks it."""

    order_id: int
    api_key: str
    symbol: str
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_order_qty: Decimal
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    # What is still locked for this order (quote for BUY, base for SELL).
    locked: Decimal = ZERO
    # STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT: the trigger price; such an order rests off the
    # book (not working, workingTime -1) until the last price reaches it.
    stop_price: Decimal = ZERO
    working: bool = True
    working_time: int = -1
    # A leg of an OCO order list: the list's id and client id (-1 and "" otherwise).
    order_list_id: int = -1
    list_client_order_id: str = ""

    @property
    def remaining(self) -> Decimal:
        """Return the quantity still to fill."""
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        """Tell whether the order still rests on the book."""
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (Decimals as strings), keys in field order.

        Spelled out rather than `dataclasses.asdict`: asdict deep-copies every value and was
        a tenth of the exchange's CPU per order (tests check the keys match the fields).
        """
        return {
            "order_id": self.order_id, "api_key": self.api_key, "symbol": self.symbol,
            "client_order_id": self.client_order_id, "side": self.side, "type": self.type,
            "time_in_force": self.time_in_force, "price": str(self.price),
            "orig_qty": str(self.orig_qty),
            "orig_quote_order_qty": str(self.orig_quote_order_qty), "time": self.time,
            "update_time": self.update_time, "status": self.status,
            "executed_qty": str(self.executed_qty), "cum_quote": str(self.cum_quote),
            "locked": str(self.locked), "stop_price": str(self.stop_price),
            "working": self.working, "working_time": self.working_time,
            "order_list_id": self.order_list_id,
            "list_client_order_id": self.list_client_order_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Order:
        """Rebuild an order from `to_json` output."""
        return _load(cls, data)


@dataclass
class Trade:
    """One fill of one order."""

    trade_id: int
    order_id: int
    api_key: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (Decimals as strings), keys in field order (see Order)."""
        return {
            "trade_id": self.trade_id, "order_id": self.order_id, "api_key": self.api_key,
            "symbol": self.symbol, "side": self.side, "price": str(self.price),
            "qty": str(self.qty), "quote_qty": str(self.quote_qty),
            "commission": str(self.commission), "commission_asset": self.commission_asset,
            "time": self.time, "is_maker": self.is_maker,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trade:
        """Rebuild a trade from `to_json` output."""
        return _load(cls, data)


def _load(cls: type[_Record], data: dict[str, Any]) -> _Record:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data and f.default is not MISSING:
            continue  # stored before the field existed: its default
        value = data[f.name]
        kwargs[f.name] = Decimal(value) if f.type in ("Decimal", Decimal) else value
    return cls(**kwargs)


def fmt(value: Decimal) -> str:
    """Format an amount the way Binance does: a string with 8 decimals."""
    return f"{value:.8f}"
