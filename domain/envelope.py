"""The public event schema: what every consumer (Kafka, projections, replay, audit) reads.

Stored events are the library's JSON with `_type_` wrappers; consumers outside the write
side get this stable, documented shape instead (docs/event-schema.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

SCHEMA_VERSION = 1
_BASE_FIELDS = ("originator_id", "originator_version", "timestamp")


def _public(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Fixed-point, never exponent form: "0.0000004", not "4E-7".
        return format(value, "f")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_public(v) for v in value]
    return value


@dataclass(frozen=True)
class EventEnvelope:
    """One stored event in its public form."""

    notification_id: int
    event_id: str
    aggregate_type: str
    aggregate_id: str
    version: int
    event_type: str
    timestamp: str
    account_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_domain_event(cls, event: Any, notification_id: int) -> EventEnvelope:
        """Build the envelope of a domain event recorded at `notification_id`."""
        aggregate_type = type(event).__qualname__.split(".")[0]
        payload = {k: _public(v) for k, v in event.__dict__.items() if k not in _BASE_FIELDS}
        payload.pop("originator_topic", None)
        account_id = payload.get("account_id") or str(event.originator_id)
        return cls(
            notification_id=notification_id,
            event_id=f"{event.originator_id}:{event.originator_version}",
            aggregate_type=aggregate_type,
            aggregate_id=str(event.originator_id),
            version=int(event.originator_version),
            event_type=type(event).__name__,
            timestamp=event.timestamp.isoformat(),
            account_id=str(account_id),
            payload=payload,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": self.schema_version,
            "notificationId": self.notification_id,
            "eventId": self.event_id,
            "aggregateType": self.aggregate_type,
            "aggregateId": self.aggregate_id,
            "version": self.version,
            "eventType": self.event_type,
            "timestamp": self.timestamp,
            "accountId": self.account_id,
            "payload": self.payload,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventEnvelope:
        return cls(
            notification_id=int(data["notificationId"]),
            event_id=str(data["eventId"]),
            aggregate_type=str(data["aggregateType"]),
            aggregate_id=str(data["aggregateId"]),
            version=int(data["version"]),
            event_type=str(data["eventType"]),
            timestamp=str(data["timestamp"]),
            account_id=str(data["accountId"]),
            payload=dict(data.get("payload") or {}),
            schema_version=int(data.get("schemaVersion", SCHEMA_VERSION)),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        return cls.from_dict(json.loads(raw))
