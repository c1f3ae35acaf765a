"""Value objects: enums of the order vocabulary and Decimal helpers."""

from __future__ import annotations

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


def to_decimal(value: object, field: str) -> Decimal:
    """Parse a JSON number or string into a finite Decimal without going through float."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field} must be a decimal number", field=field)
    if isinstance(value, float):
        # JSON numbers arrive as float; repr() gives the shortest round-tripping text
        # ("0.1", not 0.1000000000000000055...), which is what the user typed.
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(
            f"{field} must be a decimal number, got {value!r}", field=field
        ) from None
    if not result.is_finite():
        raise ValidationFailed(f"{field} must be a finite number", field=field)
    return result


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
