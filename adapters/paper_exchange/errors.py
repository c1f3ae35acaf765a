"""Binance error codes and messages, as the paper exchange returns them."""

from __future__ import annotations


class BinanceError(Exception):
    """An error answered as Binance does: `{"code": .., "msg": ..}` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        # For 429/418: the seconds to wait (sent as Retry-After); the weight used so far.
        self.retry_after: int | None = None
        self.used_weight: int | None = None

    def body(self) -> dict[str, object]:
        """Return the JSON body Binance sends for this error."""
        return {"code": self.code, "msg": self.msg}


def mandatory(param: str) -> BinanceError:
    """Return -1102 for a missing or empty parameter."""
    return BinanceError(
        -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
    )


def illegal(param: str, legal: str) -> BinanceError:
    """Return -1100 for a parameter that does not parse."""
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{param}'; legal range is '{legal}'."
    )


def not_required(param: str) -> BinanceError:
    """Return -1106 for a parameter sent with an order type that does not take it."""
    return BinanceError(-1106, f"Parameter '{param}' sent when not required.")


def too_precise(param: str) -> BinanceError:
    """Return -1111 for a number with more decimals than the asset's precision."""
    return BinanceError(-1111, f"Parameter '{param}' has too much precision.")


def filter_failure(name: str) -> BinanceError:
    """Return -1013 for an order that breaks a symbol filter."""
    return BinanceError(-1013, f"Filter failure: {name}")


INVALID_SYMBOL = (-1121, "Invalid symbol.")
INVALID_ORDER_TYPE = (-1116, "Invalid orderType.")
INVALID_SIDE = (-1117, "Invalid side.")
INVALID_TIF = (-1115, "Invalid timeInForce.")
INVALID_INTERVAL = (-1120, "Invalid interval.")
BAD_SIGNATURE = (-1022, "Signature for this request is not valid.")
OUTSIDE_RECV_WINDOW = (-1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD_OF_SERVER = (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
RECV_WINDOW_TOO_LARGE = (-1131, "recvWindow must be less than 60000")
INSUFFICIENT_BALANCE = (-2010, "Account has insufficient balance for requested action.")
DUPLICATE_ORDER = (-2010, "Duplicate order sent.")
WOULD_TAKE = (-2010, "Order would immediately match and take.")
WOULD_TRIGGER = (-2010, "Order would trigger immediately.")
UNKNOWN_ORDER = (-2011, "Unknown order sent.")
UNKNOWN_ORDER_LIST = (-2011, "Unknown order list sent.")
NO_SUCH_ORDER_LIST = (-2013, "Order list does not exist.")
OCO_PRICES = (-2010, "The relationship of the prices for the orders is not correct.")
NO_SUCH_ORDER = (-2013, "Order does not exist.")
BAD_KEY_FORMAT = (-2014, "API-key format invalid.")
BAD_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")
BACKEND_TIMEOUT = (
    -1007,
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown.",
)
MARKET_CLOSED = (-1013, "Market is closed.")
SERVICE_UNAVAILABLE = (-1001, "Internal error; unable to process your request. Please try again.")


def error(spec: tuple[int, str], status: int = 400) -> BinanceError:
    """Build a BinanceError from one of the (code, msg) pairs above."""
    return BinanceError(spec[0], spec[1], status)
