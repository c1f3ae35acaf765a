"""Value objects: enums of the order vocabulary and Decimal helpers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from domain.errors import ValidationFailed


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    # Binance's stop orders: resting (NEW, not working) until the last price reaches
    # stopPrice, then a LIMIT order at `price`.
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    # A LIMIT order that must rest (refused if it would take): an OCO's take-profit leg.
    LIMIT_MAKER = "LIMIT_MAKER"

    @property
    def has_price(self) -> bool:
        """Tell whether the type takes a limit price (and a timeInForce)."""
        return self is not OrderType.MARKET

    @property
    def has_time_in_force(self) -> bool:
        """Tell whether the type takes a timeInForce (a LIMIT_MAKER only rests)."""
        return self.has_price and self is not OrderType.LIMIT_MAKER

    @property
    def has_stop(self) -> bool:
        """Tell whether the type waits for a stopPrice before it works."""
        return self in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


def stop_triggers(order_type: OrderType, side: Side, stop_price: Decimal,
                  last_price: Decimal) -> bool:
    """Tell whether a stop order's stopPrice is reached at `last_price` (Binance's rule).

    A stop-loss triggers when the price moves against the order's side (a SELL when the
    price falls to the stop, a BUY when it rises to it); a take-profit the other way.
    """
    falling = (order_type is OrderType.STOP_LOSS_LIMIT) == (side is Side.SELL)
    return last_price <= stop_price if falling else last_price >= stop_price


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


# Bounds on numbers a user may send, checked on the text before any Decimal arithmetic:
# a quantity like "1e999999999" is cheap to parse but costs seconds of CPU once compared,
# divided or written out. No symbol uses more than 8 decimals or values past 10^12, so
# these bounds refuse nothing a real order can hold.
MAX_NUMBER_CHARS = 64
MAX_SIGNIFICANT_DIGITS = 28  # Decimal's default context precision: more would be rounded
MAX_ADJUSTED_EXPONENT = 20
MIN_ADJUSTED_EXPONENT = -20
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


def to_decimal(value: object, field: str) -> Decimal:
    """Parse a JSON number or string into a bounded, finite Decimal without going through float.

    The message never repeats the input: it may be megabytes long or crafted for a log.
    """
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field} must be a decimal number", field=field)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationFailed(f"{field} must be a finite number", field=field)
        # JSON numbers arrive as float; repr() gives the shortest round-tripping text
        # ("0.1", not 0.1000000000000000055...), which is what the user typed.
        value = repr(value)
    if isinstance(value, int):
        if value.bit_length() > 80:  # str() of a huge int is itself quadratic
            raise ValidationFailed(f"{field} is too large", field=field)
        value = str(value)
    if not isinstance(value, (str, Decimal)):
        raise ValidationFailed(f"{field} must be a decimal number", field=field)
    text = str(value).strip() if isinstance(value, str) else None
    if text is not None:
        if text.lower() in ("nan", "snan", "inf", "-inf", "+inf", "infinity", "-infinity",
                            "+infinity"):
            raise ValidationFailed(f"{field} must be a finite number", field=field)
        # ASCII digits only (str.isdigit and Decimal accept "²" and Arabic-Indic digits).
        if len(text) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(text):
            raise ValidationFailed(
                f"{field} must be a plain decimal number of at most {MAX_NUMBER_CHARS} "
                "characters", field=field)
        try:
            result = Decimal(text)
        except (InvalidOperation, ValueError):
            raise ValidationFailed(f"{field} must be a decimal number", field=field) from None
    else:
        result = value  # type: ignore[assignment]
    if not result.is_finite():
        raise ValidationFailed(f"{field} must be a finite number", field=field)
    check_bounds(result, field)
    return result


def check_bounds(value: Decimal, field: str) -> None:
    """Refuse a Decimal whose size or precision no order can use (inspects, never computes)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    significant = list(digits)
    while len(significant) > 1 and significant[-1] == 0:  # trailing zeros add no precision
        significant.pop()
    while len(significant) > 1 and significant[0] == 0:
        significant.pop(0)
    if any(digits) and not (
            MIN_ADJUSTED_EXPONENT <= len(digits) + exponent - 1 <= MAX_ADJUSTED_EXPONENT):
        raise ValidationFailed(
            f"{field} is out of range (between 1e{MIN_ADJUSTED_EXPONENT} and "
            f"1e{MAX_ADJUSTED_EXPONENT})", field=field)
    if len(significant) > MAX_SIGNIFICANT_DIGITS or exponent < -40:
        raise ValidationFailed(
            f"{field} has more than {MAX_SIGNIFICANT_DIGITS} significant digits", field=field)


E = TypeVar("E", bound=StrEnum)


def parse_enum(enum_type: type[E], value: object, field: str) -> E:
    """Parse a case-insensitive enum name, failing with the allowed values listed."""
    try:
        return enum_type(str(value).upper())
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise ValidationFailed(
            f"{field} must be one of {allowed}, got {value!r}", field=field
        ) from None
