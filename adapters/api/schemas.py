"""Request and response bodies. Unknown fields are refused, so a typo never passes silently."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from domain.errors import ValidationFailed
from domain.values import to_decimal


def _decimal(value: Any) -> Decimal:
    try:
        return to_decimal(value, "value")
    except ValidationFailed:
        raise ValueError("must be a decimal number (a JSON number or a string)") from None


# A JSON number or string in, a string out; never through a binary float's rounding error.
DecimalInput = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    Field(json_schema_extra={"anyOf": [{"type": "number"}, {"type": "string"}]}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Postgres text cannot hold NUL; refuse it here rather than fail in a query.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class RegisterRequest(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    binanceApiKey: str | None = Field(default=None, max_length=512)
    binanceSecretKey: str | None = Field(default=None, max_length=512)
    environment: str | None = Field(default=None, max_length=16)


class LoginRequest(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshRequest(Strict):
    refreshToken: str = Field(min_length=1, max_length=512)


class LogoutRequest(Strict):
    refreshToken: str | None = Field(default=None, max_length=512)


class UserOut(BaseModel):
    id: UUID
    email: str


class ChangePasswordRequest(Strict):
    currentPassword: str = Field(max_length=1024)
    newPassword: str = Field(max_length=1024)


class AuthResponse(BaseModel):
    token: str
    refreshToken: str | None = Field(
        default=None, description="absent when the request sent X-Refresh-Cookie: 1 (or "
        "came with the refresh cookie): then it is only in the HttpOnly tl_refresh cookie")
    tokenType: str = "Bearer"
    expiresIn: int
    user: UserOut


class ExchangeKeysRequest(Strict):
    apiKey: str = Field(min_length=1, max_length=512)
    secretKey: str = Field(min_length=1, max_length=512)
    environment: str | None = Field(default=None, max_length=16)


class ExchangeKeysOut(BaseModel):
    connected: bool
    apiKeyHint: str | None = None
    environment: str | None = None
    # none | active | rejected (the exchange refused them for good) | wrong_environment
    status: str = "none"
    reason: str | None = None


class MeOut(BaseModel):
    id: UUID
    email: str
    exchangeKeys: ExchangeKeysOut


class PlaceOrderRequest(Strict):
    symbol: str = Field(min_length=1, max_length=32)
    side: str = Field(min_length=1, max_length=8)
    type: str = Field(min_length=1, max_length=24)
    # Exactly one of them (checked by the PlaceOrder handler, 422 otherwise).
    quantity: DecimalInput | None = None
    quoteOrderQty: DecimalInput | None = None
    price: DecimalInput | None = None
    # STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT: the price that makes the order work.
    stopPrice: DecimalInput | None = None
    timeInForce: str | None = Field(default=None, max_length=8)
    clientOrderId: str | None = Field(default=None, min_length=1, max_length=36)


class PlaceOrderListRequest(Strict):
    """An OCO order list: a LIMIT_MAKER take-profit at `price`, a STOP_LOSS_LIMIT leg at
    `stopLimitPrice` triggered at `stopPrice` (Binance's classic OCO parameters)."""

    type: str = Field(min_length=1, max_length=8)
    symbol: str = Field(min_length=1, max_length=32)
    side: str = Field(min_length=1, max_length=8)
    quantity: DecimalInput
    price: DecimalInput
    stopPrice: DecimalInput
    stopLimitPrice: DecimalInput
    stopLimitTimeInForce: str | None = Field(default=None, max_length=8)
    clientOrderId: str | None = Field(default=None, min_length=1, max_length=33)


class OrderAccepted(BaseModel):
    orderId: UUID
    status: str
    clientOrderId: str


class StreamToken(BaseModel):
    token: str
    expiresIn: int
