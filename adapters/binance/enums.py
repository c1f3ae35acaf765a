"""Binance's spot vocabulary and its explicit map onto ours (NautilusTrader style).

Every Binance status is listed; one we do not know fails loudly instead of being guessed.
"""

from __future__ import annotations

from enum import StrEnum

from commands.ports import ExchangeOrderStatus


class BinanceOrderStatus(StrEnum):
    """`status` of an order (REST) and `X` of an executionReport."""

    NEW = "NEW"
    PENDING_NEW = "PENDING_NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PENDING_CANCEL = "PENDING_CANCEL"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


class BinanceExecutionType(StrEnum):
    """`x` of an executionReport: what just happened to the order."""

    NEW = "NEW"
    CANCELED = "CANCELED"
    REPLACED = "REPLACED"
    REJECTED = "REJECTED"
    TRADE = "TRADE"
    EXPIRED = "EXPIRED"
    TRADE_PREVENTION = "TRADE_PREVENTION"


# Binance status -> ours. The manager turns ours into commands (docs/execution.md):
# NEW -> RecordAcceptance; PARTIALLY_FILLED / FILLED -> RecordAcceptance + RecordFill per new
# trade (the last fill completes the order); CANCELED -> fills, then RecordCancellation;
# EXPIRED -> fills, then RecordExpiry; REJECTED -> RecordRejection.
STATUS_MAP: dict[BinanceOrderStatus, ExchangeOrderStatus] = {
    BinanceOrderStatus.NEW: ExchangeOrderStatus.NEW,
    # Accepted by the engine but not yet working (e.g. pending an OTO trigger): open.
    BinanceOrderStatus.PENDING_NEW: ExchangeOrderStatus.NEW,
    BinanceOrderStatus.PARTIALLY_FILLED: ExchangeOrderStatus.PARTIALLY_FILLED,
    BinanceOrderStatus.FILLED: ExchangeOrderStatus.FILLED,
    BinanceOrderStatus.CANCELED: ExchangeOrderStatus.CANCELED,
    # "Currently unused" per Binance's docs; the order is still open until CANCELED arrives.
    BinanceOrderStatus.PENDING_CANCEL: ExchangeOrderStatus.NEW,
    BinanceOrderStatus.REJECTED: ExchangeOrderStatus.REJECTED,
    BinanceOrderStatus.EXPIRED: ExchangeOrderStatus.EXPIRED,
    # Expired by self-trade prevention: for us an expiry like any other.
    BinanceOrderStatus.EXPIRED_IN_MATCH: ExchangeOrderStatus.EXPIRED,
}


def parse_status(value: str) -> ExchangeOrderStatus:
    """Map a Binance order status string to ours; an unknown one raises ValueError."""
    return STATUS_MAP[BinanceOrderStatus(value)]
