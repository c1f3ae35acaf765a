"""Tamper evidence and time travel over the event store.

The hash chain: entry n = sha256(previous entry's hash + canonical bytes of stored event n),
where the canonical bytes are the stored row itself (notification id, originator id,
version, topic, raw state), so an UPDATE made directly on a stored row changes its entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.order import Order

GENESIS = "0" * 64


@dataclass(frozen=True)
class StoredRow:
    """One row of the event store as written (what the chain hashes)."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class ChainEntry:
    """One link of the chain, as the audit projection stores it."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    event_hash: str
    chain_hash: str


def canonical_bytes(row: StoredRow) -> bytes:
    """Serialize a stored row unambiguously: fixed fields on one line each, then the state."""
    return _canonical(row.notification_id, str(row.originator_id), row.originator_version,
                      row.topic, row.state)


def _canonical(notification_id: int, originator_id: str, originator_version: int, topic: str,
               state: bytes) -> bytes:
    head = f"{notification_id}\n{originator_id}\n{originator_version}\n{topic}\n"
    return head.encode() + bytes(state)


def event_hash(row: StoredRow) -> str:
    return hashlib.sha256(canonical_bytes(row)).hexdigest()


def link_hashes(prev_hash: str, notification_id: int, originator_id: str,
                originator_version: int, topic: str, state: bytes) -> tuple[str, str]:
    """The (event hash, chain hash) of one stored row chained after `prev_hash`.

    The same as `link`, from the row's parts (`originator_id` as text): replay chains
    every event with it and skips building a StoredRow and a ChainEntry for each.
    """
    data = _canonical(notification_id, originator_id, originator_version, topic, state)
    return (hashlib.sha256(data).hexdigest(),
            hashlib.sha256(prev_hash.encode() + data).hexdigest())


def link(prev_hash: str, row: StoredRow) -> ChainEntry:
    """Chain one stored row after `prev_hash`."""
    ev, chained = link_hashes(prev_hash, row.notification_id, str(row.originator_id),
                              row.originator_version, row.topic, row.state)
    return ChainEntry(row.notification_id, row.originator_id, row.originator_version, ev, chained)


def build_chain(rows: Iterable[StoredRow], prev_hash: str = GENESIS) -> Iterator[ChainEntry]:
    """Chain rows in notification order, continuing after `prev_hash`."""
    for row in rows:
        entry = link(prev_hash, row)
        prev_hash = entry.chain_hash
        yield entry


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking the event store against the recorded chain."""

    ok: bool
    checked: int
    unchained: int = 0
    notification_id: int | None = None
    originator_id: UUID | None = None
    originator_version: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            extra = f" ({self.unchained} newer events not chained yet)" if self.unchained else ""
            return f"OK: {self.checked} events match the audit chain{extra}"
        return (
            f"TAMPERED: event {self.notification_id} (aggregate {self.originator_id} "
            f"version {self.originator_version}) {self.problem}"
        )


def verify_chain(rows: Iterable[StoredRow], chain: Iterable[ChainEntry]) -> VerifyResult:
    """Recompute the chain from the stored rows and name the first event that differs.

    Both inputs must be in notification-id order. A stored row that is missing from the
    chain before its end was inserted afterwards; a chain entry with no stored row was
    deleted; a differing hash was altered in place.
    """
    rows_it, chain_it = iter(rows), iter(chain)
    prev = GENESIS
    checked = 0
    row = next(rows_it, None)
    for entry in chain_it:
        if row is None or row.notification_id > entry.notification_id:
            return VerifyResult(False, checked, notification_id=entry.notification_id,
                                originator_id=entry.originator_id,
                                originator_version=entry.originator_version,
                                problem="was deleted from the event store")
        if row.notification_id < entry.notification_id:
            return VerifyResult(False, checked, notification_id=row.notification_id,
                                originator_id=row.originator_id,
                                originator_version=row.originator_version,
                                problem="was inserted into the event store after the fact")
        recomputed = link(prev, row)
        if recomputed.event_hash != entry.event_hash or recomputed.chain_hash != entry.chain_hash:
            problem = ("was altered in place" if recomputed.event_hash != entry.event_hash
                       else "does not follow the recorded chain")
            return VerifyResult(False, checked, notification_id=row.notification_id,
                                originator_id=row.originator_id,
                                originator_version=row.originator_version, problem=problem)
        prev = entry.chain_hash
        checked += 1
        row = next(rows_it, None)
    unchained = 0 if row is None else 1 + sum(1 for _ in rows_it)
    return VerifyResult(True, checked, unchained=unchained)


def order_state_at(
    events: Iterable[Any], version: int | None = None, at: datetime | None = None
) -> Order | None:
    """Rebuild the Order aggregate as of a version or a time by replaying its domain events.

    `events` are the order's domain events in version order (e.g. `app.events.get(id)`).
    Returns None when the order did not exist yet at that point.
    """
    order: Order | None = None
    for event in events:
        if version is not None and event.originator_version > version:
            break
        if at is not None and event.timestamp > at:
            break
        order = event.mutate(order)
    return order
