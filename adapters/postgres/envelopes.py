"""Stored notifications to public envelopes, fast: decode the stored JSON straight to the
envelope's strings instead of building the domain event first (the relay and replay both
read the whole log this way)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from domain.envelope import EventEnvelope


class _Unknown(Exception):
    """A stored value whose transcoding the fast decoder does not know."""


def _uuid_str(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# eventsourcing's JSON transcodings, decoded straight to their public (envelope) strings.
_PUBLIC: dict[str, Callable[[str], str]] = {
    # Fixed-point, as EventEnvelope renders Decimals ("0.00000020", never "2.0E-7").
    "decimal_str": lambda s: format(Decimal(s), "f"),
    "datetime_iso": str,
    "uuid_hex": _uuid_str,
}


def _public_hook(d: dict[str, Any]) -> Any:
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        decode = _PUBLIC.get(d["_type_"])
        if decode is None:
            raise _Unknown(d["_type_"])
        return decode(d["_data_"])
    return d


# One decoder for every call: json.loads(..., object_hook=...) builds a new one each time,
# which cost about 3% of a replay.
_decode_state = json.JSONDecoder(object_hook=_public_hook).decode


def fast_envelope(n: Any) -> EventEnvelope | None:
    """Build the public envelope of a stored notification without making the domain event.

    Gives exactly what EventEnvelope.from_domain_event(mapper.to_domain_event(n)) gives
    (tests/integration/test_replay.py checks it); None when the state holds a value
    this decoder does not know, and the caller takes the slow path.
    """
    try:
        state = _decode_state(bytes(n.state).decode())
    except _Unknown:
        return None
    timestamp = state.pop("timestamp")
    state.pop("originator_topic", None)
    qualname = n.topic.partition(":")[2]
    aggregate_id = str(n.originator_id)
    return EventEnvelope(
        notification_id=n.id, event_id=f"{aggregate_id}:{n.originator_version}",
        aggregate_type=qualname.split(".")[0], aggregate_id=aggregate_id,
        version=int(n.originator_version), event_type=qualname.rpartition(".")[2],
        timestamp=timestamp, account_id=str(state.get("account_id") or aggregate_id),
        payload=state)


def to_envelope(app: Application[UUID], n: Notification) -> EventEnvelope:
    """The public envelope of a notification (fast path when the state is plain JSON)."""
    mapper = app.mapper
    if mapper.cipher is None and mapper.compressor is None:
        envelope = fast_envelope(n)
        if envelope is not None:
            return envelope
    return EventEnvelope.from_domain_event(mapper.to_domain_event(n), n.id)
