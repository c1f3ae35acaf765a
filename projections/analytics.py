"""Dashboard analytics as additive counters, and the event browser's public event rows.

Every counter is a sum, so the live projector (which may see events of different orders in
a different order than the event store) and replay reach the same totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.envelope import EventEnvelope
from projections.orders import OrderRow, parse_time

LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)
INF_BUCKET = "+Inf"
SECRET_FIELDS = frozenset({"password_hash", "password"})


def latency_bucket(ms: int) -> str:
    """The histogram bucket (upper bound in ms, as text) a latency falls in."""
    for bound in LATENCY_BUCKETS_MS:
        if ms <= bound:
            return str(bound)
    return INF_BUCKET


def bucket_order(label: str) -> float:
    return float("inf") if label == INF_BUCKET else float(label)


def minute_of(time: datetime) -> datetime:
    return time.replace(second=0, microsecond=0)


def _secret(key: str) -> bool:
    return key in SECRET_FIELDS or key.endswith("_ciphertext")


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop what must never leave the write side: password hashes and ciphertexts."""
    if not any(_secret(k) for k in payload):
        return payload  # the common case (every order event): nothing to drop, no copy
    return {k: v for k, v in payload.items() if not _secret(k)}


@dataclass
class Increments:
    """Counter deltas, keyed like the analytics tables' primary keys."""

    # (account_id, symbol, minute) -> [orders, fills, volume]
    symbol_minute: dict[tuple[str, str, datetime], list[Any]] = field(default_factory=dict)
    # (account_id, minute) -> events
    events_minute: dict[tuple[str, datetime], int] = field(default_factory=dict)
    # (account_id, bucket) -> count
    latency: dict[tuple[str, str], int] = field(default_factory=dict)
    # (account_id, code, reason) -> count
    rejections: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def add(self, other: Increments) -> None:
        for k, (o, f, v) in other.symbol_minute.items():
            cur = self.symbol_minute.setdefault(k, [0, 0, Decimal(0)])
            cur[0] += o
            cur[1] += f
            cur[2] += v
        for k1, n in other.events_minute.items():
            self.events_minute[k1] = self.events_minute.get(k1, 0) + n
        for k2, n in other.latency.items():
            self.latency[k2] = self.latency.get(k2, 0) + n
        for k3, n in other.rejections.items():
            self.rejections[k3] = self.rejections.get(k3, 0) + n


def add_analytics(inc: Increments, envelope: EventEnvelope, order: OrderRow | None) -> None:
    """Add what one event counts to `inc`; `order` supplies the static fields only."""
    time = parse_time(envelope.timestamp)
    minute = time.replace(second=0, microsecond=0)
    account = envelope.account_id
    key = (account, minute)
    inc.events_minute[key] = inc.events_minute.get(key, 0) + 1
    kind, p = envelope.event_type, envelope.payload
    if kind == "OrderPlaced":
        cur = inc.symbol_minute.setdefault((account, str(p["symbol"]), minute),
                                           [0, 0, Decimal(0)])
        cur[0] += 1
    elif kind == "OrderFilled" and order is not None:
        cur = inc.symbol_minute.setdefault((account, order.symbol, minute), [0, 0, Decimal(0)])
        cur[1] += 1
        cur[2] += Decimal(p["price"]) * Decimal(p["quantity"])
        # The histogram is the desk's fill latency: a MARKET order's placed -> filled. A
        # limit order's time to its fill is mostly the time it rested on the book, the
        # market's doing, not ours (the Orders grid shows its time to the book instead).
        if p.get("status") == "FILLED" and order.type == "MARKET":
            ms = (time - order.created_at) // timedelta(milliseconds=1)
            lkey = (account, latency_bucket(ms))
            inc.latency[lkey] = inc.latency.get(lkey, 0) + 1
    elif kind == "OrderRejected":
        rkey = (account, str(p.get("code") or ""), str(p.get("message") or ""))
        inc.rejections[rkey] = inc.rejections.get(rkey, 0) + 1


def analytics_increments(envelope: EventEnvelope, order: OrderRow | None) -> Increments:
    """What one event adds to the counters, as a fresh set of deltas."""
    inc = Increments()
    add_analytics(inc, envelope, order)
    return inc


@dataclass(frozen=True)
class EventLogRow:
    """One event as the event browser lists it (no secrets)."""

    notification_id: int
    account_id: str
    aggregate_type: str
    aggregate_id: str
    version: int
    event_type: str
    symbol: str | None
    time: datetime
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "notificationId": self.notification_id,
            "accountId": self.account_id,
            "aggregateType": self.aggregate_type,
            "aggregateId": self.aggregate_id,
            "version": self.version,
            "eventType": self.event_type,
            "symbol": self.symbol,
            "time": self.time.isoformat(),
            "payload": self.payload,
        }


def event_log_row(envelope: EventEnvelope, symbol: str | None) -> EventLogRow:
    """The event browser's row for one envelope."""
    return EventLogRow(
        notification_id=envelope.notification_id,
        account_id=envelope.account_id,
        aggregate_type=envelope.aggregate_type,
        aggregate_id=envelope.aggregate_id,
        version=envelope.version,
        event_type=envelope.event_type,
        symbol=symbol,
        time=parse_time(envelope.timestamp),
        payload=public_payload(envelope.payload),
    )
