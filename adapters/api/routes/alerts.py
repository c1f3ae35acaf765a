"""Price alerts, stored per account (adapters/postgres/alerts.py): list, add, remove.

A background loop of the API (`run_alert_checks`) fires the alerts that the market price
has reached; each fire reaches the account's open streams as an ALERT event.
"""

from __future__ import annotations

import asyncio
import logging
import re
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field

from adapters.api.deps import ApiContext, Ctx, CurrentUser
from adapters.api.errors import ApiError
from adapters.postgres.alerts import MAX_ALERTS_PER_ACCOUNT, AlertLimitReached, AlertStore
from domain.errors import UnknownSymbol, ValidationFailed

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/alerts", tags=["alerts"])

CHECK_SECONDS = 1.0
# A price is plain digits: no exponent, at most 20 integer and 18 decimal digits.
_PRICE = re.compile(r"^\d{1,20}(\.\d{1,18})?$")


class AlertRequest(BaseModel):
    """A new alert: fire when `symbol` reaches `price` (a decimal string or number)."""

    symbol: str = Field(min_length=1, max_length=32)
    price: str | float | int
    direction: str | None = Field(default=None, max_length=8,
                                  description="above or below; default: the side of the "
                                  "current price the alert level is on")


def parse_price(value: str | float | int) -> Decimal:
    """A positive price in plain notation; refused before any arithmetic when absurd."""
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if isinstance(value, bool) or not _PRICE.match(text):
        raise ValidationFailed("price must be a positive number like 65000.5", field="price")
    price = Decimal(text)
    if price <= 0:
        raise ValidationFailed("price must be greater than zero", field="price")
    return price


def require_alerts(ctx: ApiContext) -> AlertStore:
    store: AlertStore | None = ctx.alerts
    if store is None:
        raise ApiError(503, "unavailable", "alerts are not available yet")
    return store


@router.get("")
def list_alerts(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    """The account's alerts, newest first (pending and fired)."""
    return require_alerts(ctx).list_alerts(user.account_id)


@router.post("", status_code=status.HTTP_201_CREATED)
def add_alert(body: AlertRequest, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Store an alert; it fires once, when the market price reaches `price`."""
    symbol = body.symbol.strip().upper()
    if ctx.runtime.symbols.rules(symbol) is None:
        raise UnknownSymbol(f"{symbol[:32]} is not a traded symbol", field="symbol")
    price = parse_price(body.price)
    direction = (body.direction or "").strip().lower() or None
    if direction is None:
        current = ctx.runtime.symbols.reference_price(symbol)
        if current is None:
            raise ValidationFailed("no price is known for this symbol yet: give a direction "
                                   "(above or below)", field="direction")
        direction = "above" if price >= current else "below"
    if direction not in ("above", "below"):
        raise ValidationFailed("direction must be above or below", field="direction")
    try:
        return require_alerts(ctx).create(user.account_id, symbol, price, direction)
    except AlertLimitReached:
        raise ApiError(409, "too_many_alerts",
                       f"at most {MAX_ALERTS_PER_ACCOUNT} alerts per account: remove some first"
                       ) from None


@router.delete("/{alertId}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alert(alertId: Annotated[UUID, Path()], user: CurrentUser, ctx: Ctx) -> Response:
    """Remove one of the account's alerts."""
    if not require_alerts(ctx).delete(user.account_id, alertId):
        raise ApiError(404, "alert_not_found", "no such alert")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def check_once(ctx: ApiContext) -> int:
    """Fire the pending alerts the latest prices have reached; return how many fired."""
    store: AlertStore | None = ctx.alerts
    if store is None:
        return 0
    prices = {}
    for symbol in store.pending_symbols():
        price = ctx.runtime.symbols.reference_price(symbol)
        if price is not None:
            prices[symbol] = price
    return len(store.fire_crossed(prices)) if prices else 0


async def run_alert_checks(ctx: ApiContext, every: float = CHECK_SECONDS) -> None:
    """Check alerts against the market price until cancelled."""
    while True:
        try:
            await anyio.to_thread.run_sync(check_once, ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("price alert check failed; will retry", exc_info=True)
        await asyncio.sleep(every)
