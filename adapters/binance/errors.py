"""Binance error codes and their explicit map onto our exchange errors (Nautilus style).

Which errors mean "nothing happened" and which mean "we do not know" decides whether an order
may be sent again, so the sets below are written out rather than inferred. Anything not
listed as a definite refusal is treated as an unknown outcome when the HTTP status is 5xx.
"""

from __future__ import annotations

from enum import IntEnum

from domain.errors import (
    ExchangeDuplicateOrder,
    ExchangeError,
    ExchangeOrderUnknown,
    ExchangeRejected,
    ExchangeUnavailable,
)


class BinanceErrorCode(IntEnum):
    """The spot error codes we meet (Binance 'Error codes' page)."""

    UNKNOWN = -1000
    DISCONNECTED = -1001
    UNAUTHORIZED = -1002
    TOO_MANY_REQUESTS = -1003
    UNEXPECTED_RESP = -1006
    TIMEOUT = -1007
    SERVER_BUSY = -1008
    INVALID_MESSAGE = -1013
    TOO_MANY_ORDERS = -1015
    SERVICE_SHUTTING_DOWN = -1016
    INVALID_TIMESTAMP = -1021
    INVALID_SIGNATURE = -1022
    ILLEGAL_CHARS = -1100
    MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
    PARAM_NOT_REQUIRED = -1106
    BAD_PRECISION = -1111
    INVALID_TIF = -1115
    INVALID_ORDER_TYPE = -1116
    INVALID_SIDE = -1117
    INVALID_INTERVAL = -1120
    BAD_SYMBOL = -1121
    INVALID_PARAMETER_COMBINATION = -1128
    NEW_ORDER_REJECTED = -2010
    CANCEL_REJECTED = -2011
    NO_SUCH_ORDER = -2013
    BAD_API_KEY_FMT = -2014
    REJECTED_MBX_KEY = -2015


# "Execution status unknown": the request may have been carried out.
UNKNOWN_OUTCOME_CODES = frozenset({
    BinanceErrorCode.UNKNOWN,
    BinanceErrorCode.DISCONNECTED,
    BinanceErrorCode.UNEXPECTED_RESP,
    BinanceErrorCode.TIMEOUT,
    BinanceErrorCode.SERVER_BUSY,
    BinanceErrorCode.SERVICE_SHUTTING_DOWN,
})

# Refused before execution, and may pass if sent again later.
TRANSIENT_CODES = frozenset({
    BinanceErrorCode.TOO_MANY_REQUESTS,
    BinanceErrorCode.TOO_MANY_ORDERS,
    BinanceErrorCode.INVALID_TIMESTAMP,  # our clock drifted: resync and send again
})

# -2011 covers every refused cancel; only this message means "no such open order".
UNKNOWN_ORDER_MESSAGE = "Unknown order sent."
DUPLICATE_ORDER_MESSAGE = "Duplicate order sent."

# HTTP statuses that mean "not now" (rate limits, IP ban), never executed.
RATE_LIMIT_STATUSES = frozenset({418, 429})


def map_api_error(http_status: int, code: int, message: str) -> ExchangeError:
    """Map a Binance error answer to the exception the execution manager understands."""
    if code in UNKNOWN_OUTCOME_CODES or http_status >= 500 or http_status == 408:
        return ExchangeUnavailable(f"Binance {http_status} {code}: {message}",
                                   exchangeCode=code)
    if http_status in RATE_LIMIT_STATUSES or code in TRANSIENT_CODES:
        return ExchangeRejected(code, message, transient=True)
    if code == BinanceErrorCode.NO_SUCH_ORDER or (
            code == BinanceErrorCode.CANCEL_REJECTED and message == UNKNOWN_ORDER_MESSAGE):
        return ExchangeOrderUnknown(code, message)
    if code == BinanceErrorCode.NEW_ORDER_REJECTED and message == DUPLICATE_ORDER_MESSAGE:
        return ExchangeDuplicateOrder(code, message)
    return ExchangeRejected(code, message)
