"""Fold an order's public events into the row a trader's orders table shows, and its trades."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.envelope import EventEnvelope
from projections.positions import Fill

ZERO = Decimal(0)

# The status each event sets, when it sets one from the event type alone.
_STATUS_OF = {
    "OrderPlaced": "PENDING",
    "OrderRejected": "REJECTED",
    "OrderCancelRequested": "CANCEL_REQUESTED",
    "OrderCanceled": "CANCELED",
    "OrderExpired": "EXPIRED",
}


# What an open order is waiting for, beyond its status (None: nothing special).
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
THROTTLED = "THROTTLED"
STATUS_DETAILS = {
    OUTCOME_UNKNOWN: "outcome unknown, checking: the exchange did not answer the send; "
                     "the order is never sent twice",
    THROTTLED: "waiting to be sent: the exchange asked us to slow down",
}


def status_detail_after(kind: str, detail: str | None) -> str | None:
    """Return an order's status detail after one of its events."""
    if kind == "OrderOutcomeUnknown":
        return OUTCOME_UNKNOWN
    if kind == "OrderSendRefused":
        return THROTTLED
    if kind in ("OrderCancelRequested", "OrderCancelRejected"):
        return detail  # a cancel request does not settle what the exchange did
    return None


def detail_fields(detail: str | None) -> dict[str, Any]:
    """The public fields of a status detail: `outcome` and `statusDetail`."""
    return {"outcome": "UNKNOWN" if detail == OUTCOME_UNKNOWN else None,
            "statusDetail": STATUS_DETAILS.get(detail or "")}


def later_fields(quote_order_qty: Decimal | None, stop_price: Decimal | None = None,
                 triggered: bool = False, order_list_id: object | None = None
                 ) -> dict[str, Any]:
    """The fields issue 19 added: the spend amount of a quoteOrderQty order, a stop order's
    `stopPrice` and whether it has triggered (null for other orders), and the `orderListId`
    of an OCO leg (null for an order in no list)."""
    return {"quoteOrderQty": dec(quote_order_qty), "stopPrice": dec(stop_price),
            "stopTriggered": None if stop_price is None else triggered,
            "orderListId": None if order_list_id is None else str(order_list_id)}


def parse_time(value: str) -> datetime:
    """Parse an envelope timestamp (ISO 8601, timezone-aware)."""
    return datetime.fromisoformat(value)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dec(value: Decimal | None) -> str | None:
    """Render a Decimal as a plain string (no exponent), None stays None."""
    return None if value is None else format(value, "f")


@dataclass(slots=True)
class OrderRow:
    """One order as the read side keeps it (functions here never mutate a row they are
    given: they change a copy)."""

    order_id: str
    account_id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    quantity: Decimal
    price: Decimal | None
    status: str
    created_at: datetime
    updated_at: datetime
    version: int
    exchange_order_id: str | None = None
    filled_quantity: Decimal = ZERO
    filled_quote: Decimal = ZERO
    commission: dict[str, str] = field(default_factory=dict)
    reject_code: str | None = None
    reject_reason: str | None = None
    status_times: dict[str, str] = field(default_factory=dict)
    fill_latency_ms: int | None = None
    last_notification_id: int = 0
    status_detail: str | None = None
    quote_order_qty: Decimal | None = None
    stop_price: Decimal | None = None
    triggered: bool = False
    order_list_id: str | None = None

    @property
    def average_price(self) -> Decimal | None:
        if self.filled_quantity == 0:
            return None
        return self.filled_quote / self.filled_quantity

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (camelCase, decimals as strings, ISO times)."""
        return {
            "orderId": self.order_id,
            "clientOrderId": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "timeInForce": self.time_in_force,
            "quantity": dec(self.quantity),
            "price": dec(self.price),
            "status": self.status,
            "exchangeOrderId": self.exchange_order_id,
            "filledQuantity": dec(self.filled_quantity),
            "averagePrice": dec(self.average_price),
            "commission": dict(self.commission),
            "rejectCode": self.reject_code,
            "rejectReason": self.reject_reason,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "statusTimes": dict(self.status_times),
            "fillLatencyMs": self.fill_latency_ms,
            "version": self.version,
            **detail_fields(self.status_detail),
            **later_fields(self.quote_order_qty, self.stop_price, self.triggered,
                           self.order_list_id),
        }


def _set_status(row: OrderRow, status: str, time: datetime) -> None:
    row.status = status
    if status not in row.status_times:  # the first time a status was reached is what counts
        row.status_times = {**row.status_times, status: time.isoformat()}
    if status == "FILLED" and row.fill_latency_ms is None:
        row.fill_latency_ms = (time - row.created_at) // timedelta(milliseconds=1)


def start_order(envelope: EventEnvelope) -> OrderRow:
    """Build the row from an OrderPlaced envelope."""
    p = envelope.payload
    time = parse_time(envelope.timestamp)
    row = OrderRow(
        order_id=envelope.aggregate_id,
        account_id=envelope.account_id,
        client_order_id=str(p["client_order_id"]),
        symbol=str(p["symbol"]),
        side=str(p["side"]),
        type=str(p["order_type"]),
        time_in_force=p.get("time_in_force"),
        quantity=Decimal(p["quantity"]),
        price=None if p.get("price") is None else Decimal(p["price"]),
        status="PENDING",
        created_at=time,
        updated_at=time,
        version=envelope.version,
        last_notification_id=envelope.notification_id,
        quote_order_qty=(None if p.get("quote_order_qty") is None
                         else Decimal(p["quote_order_qty"])),
        stop_price=None if p.get("stop_price") is None else Decimal(p["stop_price"]),
        order_list_id=None if p.get("order_list_id") is None else str(p["order_list_id"]),
    )
    _set_status(row, "PENDING", time)
    return row


def apply_order_event(
    row: OrderRow | None, envelope: EventEnvelope, in_place: bool = False
) -> OrderRow | None:
    """Return the row after one of its events; None when the event cannot apply.

    A repeated (or older) version returns the row unchanged, so re-delivery is harmless.
    The row given is left alone unless `in_place` (replay's fold, which keeps no history).
    """
    kind = envelope.event_type
    if row is None:
        return start_order(envelope) if kind == "OrderPlaced" else None
    if envelope.version <= row.version:
        return row
    p = envelope.payload
    time = parse_time(envelope.timestamp)
    if not in_place:
        row = copy.copy(row)
    row.version, row.updated_at = envelope.version, time
    row.last_notification_id = envelope.notification_id
    status: str | None = _STATUS_OF.get(kind)
    row.status_detail = status_detail_after(kind, row.status_detail)
    if kind == "OrderSubmitted":
        status = "SUBMITTED" if row.status == "PENDING" else None
    elif kind == "OrderAccepted":
        row.exchange_order_id = p.get("exchange_order_id")
        status = "NEW" if row.status in ("PENDING", "SUBMITTED") else None
    elif kind == "OrderExchangeIdLearned":
        row.exchange_order_id = p.get("exchange_order_id")
    elif kind == "OrderStopTriggered":
        row.triggered = True
    elif kind == "OrderFilled":
        row.triggered = row.stop_price is not None  # a stop order trades once triggered
        qty, price = Decimal(p["quantity"]), Decimal(p["price"])
        asset = str(p.get("commission_asset") or "")
        commission = dict(row.commission)
        commission[asset] = str(Decimal(commission.get(asset, "0")) + Decimal(p["commission"]))
        row.filled_quantity += qty
        row.filled_quote += qty * price
        row.commission = commission
        status = str(p["status"])
    elif kind == "OrderQuantityFixed":
        row.quantity = Decimal(p["quantity"])
        status = str(p["status"])
    elif kind == "OrderRejected":
        row.reject_code, row.reject_reason = p.get("code"), p.get("message")
    elif kind == "OrderCancelRejected":
        status = str(p["status"])
    elif kind == "OrderSendRefused":
        status = "PENDING" if row.status == "SUBMITTED" else None
    if status is not None:
        _set_status(row, status, time)
    return row


def fold_order(envelopes: list[EventEnvelope]) -> OrderRow | None:
    """Fold one order's envelopes, in version order, into its row."""
    row: OrderRow | None = None
    for envelope in sorted(envelopes, key=lambda e: e.version):
        row = apply_order_event(row, envelope)
    return row


@dataclass(frozen=True)
class TradeRow:
    """One fill of an order."""

    trade_id: str
    order_id: str
    account_id: str
    symbol: str
    side: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time: datetime
    notification_id: int

    @property
    def quote_quantity(self) -> Decimal:
        return self.price * self.quantity

    def to_fill(self) -> Fill:
        return Fill(side=self.side, price=self.price, quantity=self.quantity,
                    commission=self.commission, commission_asset=self.commission_asset,
                    time=self.time, notification_id=self.notification_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tradeId": self.trade_id,
            "orderId": self.order_id,
            "symbol": self.symbol,
            "side": self.side,
            "price": dec(self.price),
            "quantity": dec(self.quantity),
            "quoteQuantity": dec(self.quote_quantity),
            "commission": dec(self.commission),
            "commissionAsset": self.commission_asset,
            "isMaker": self.is_maker,
            "time": iso(self.time),
        }


def trade_from_fill(order: OrderRow, envelope: EventEnvelope) -> TradeRow:
    """Build the trade row of an OrderFilled envelope of `order`."""
    p = envelope.payload
    return TradeRow(
        trade_id=str(p["trade_id"]),
        order_id=order.order_id,
        account_id=order.account_id,
        symbol=order.symbol,
        side=order.side,
        price=Decimal(p["price"]),
        quantity=Decimal(p["quantity"]),
        commission=Decimal(p["commission"]),
        commission_asset=str(p.get("commission_asset") or ""),
        is_maker=bool(p.get("is_maker", False)),
        time=parse_time(envelope.timestamp),
        notification_id=envelope.notification_id,
    )
