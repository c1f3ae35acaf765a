"""JSON shapes built from the write side: an order from its aggregate, its audit trail.

The order shape is the read model's (projections/orders.py `OrderRow.to_dict`) key for key,
so a client cannot tell whether an order came from the aggregate or from the read side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.envelope import EventEnvelope
from domain.errors import OrderNotFound, ValidationFailed
from domain.order import Order
from projections.orders import detail_fields, later_fields, status_detail_after

_SECRET_SUFFIXES = ("_ciphertext", "password_hash")


def dec(value: Decimal | None) -> str | None:
    """Render a Decimal without an exponent; None stays None."""
    return None if value is None else format(value, "f")


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop every field that holds a secret (password hashes, ciphertexts)."""
    return {k: v for k, v in payload.items() if not k.endswith(_SECRET_SUFFIXES)}


def order_view(events: list[Any]) -> tuple[Order, dict[str, Any]]:
    """Rebuild an order from its events (oldest first) and serialize it at the last one."""
    if not events:
        raise OrderNotFound("order not found")
    status_times: dict[str, str] = {}
    fill_latency_ms: int | None = None
    order: Any = None
    detail: str | None = None
    for event in events:
        order = event.mutate(order)
        detail = status_detail_after(type(event).__name__, detail)
        if not isinstance(order, Order):
            raise OrderNotFound(f"order {event.originator_id} not found")
        status = order.status.value
        if status not in status_times:  # the first time a status was reached is what counts
            status_times[status] = event.timestamp.isoformat()
            if status == "FILLED":
                delta = event.timestamp - events[0].timestamp
                fill_latency_ms = int(delta.total_seconds() * 1000)
    return order, {
        "orderId": str(order.id),
        "clientOrderId": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.order_type,
        "timeInForce": order.time_in_force,
        "quantity": dec(order.quantity),
        "price": dec(order.price),
        "status": order.status.value,
        "exchangeOrderId": order.exchange_order_id,
        "filledQuantity": dec(order.filled_quantity),
        "averagePrice": dec(order.average_price),
        "commission": {asset: str(amount) for asset, amount in order.commissions.items()},
        "rejectCode": order.reject_code,
        "rejectReason": order.reject_reason,
        "createdAt": events[0].timestamp.isoformat(),
        "updatedAt": events[-1].timestamp.isoformat(),
        "statusTimes": status_times,
        "fillLatencyMs": fill_latency_ms,
        "version": int(order.version),
        **detail_fields(detail),
        **later_fields(order.quote_order_qty, order.stop_price, order.triggered,
                       order.order_list_id),
    }


def audit_entry(event: Any) -> dict[str, Any]:
    """One line of an order's audit trail."""
    envelope = EventEnvelope.from_domain_event(event, notification_id=0)
    payload = public_payload(envelope.payload)
    return {
        "version": envelope.version,
        "type": envelope.event_type,
        "time": envelope.timestamp,
        "actor": payload.get("actor"),
        "payload": payload,
    }


def parse_as_of(value: str) -> int | datetime:
    """Read `asOf`: a positive version number or an ISO 8601 time (UTC when no zone given)."""
    text = value.strip()
    if text.isascii() and text.isdigit():  # int("²") raises: ASCII digits only
        version = int(text)
        if version < 1 or version > 2**31:
            raise ValidationFailed("asOf version must be at least 1", field="asOf")
        return version
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValidationFailed(
            "asOf must be a version number or an ISO 8601 time", field="asOf") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def events_as_of(events: list[Any], as_of: int | datetime, order_id: UUID) -> list[Any]:
    """Cut an order's events at a version or at a moment; 404 if it did not exist yet."""
    if isinstance(as_of, int):
        cut = [e for e in events if e.originator_version <= as_of]
    else:
        cut = [e for e in events if e.timestamp <= as_of]
    if not cut:
        raise OrderNotFound(f"order {order_id} did not exist at {as_of}", orderId=str(order_id))
    return cut
