"""The public Kafka message: one EventEnvelope as JSON keyed by account id.

Every event of one account (the Account's own and all its orders') is keyed by that account,
so they travel in order in one partition, and the consumer instance that owns the partition
owns the account (docs/scaling.md, "Partition by account").

See docs/event-schema.md.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from uuid import UUID

from kafka.partitioner.default import murmur2

from domain.envelope import SCHEMA_VERSION, EventEnvelope

HEADER_SCHEMA_VERSION = "schema-version"
HEADER_EVENT_TYPE = "event-type"
# Relay bookkeeping that lets consumers notice a rebuilt log (docs/event-bus.md).
HEADER_EPOCH = "relay-epoch"
HEADER_EXPECTED_OFFSET = "relay-offset"
# The per-partition chain that makes the consumers' skip rule exact (adapters/kafka/chain.py):
# this record's notification id, and that of the previous record the relay published to the
# same partition (0 for the first of a partition in an epoch).
HEADER_NOTIFICATION_ID = "notification-id"
HEADER_PREV_NOTIFICATION_ID = "prev-notification-id"
_SCHEMA_VERSION_BYTES = str(SCHEMA_VERSION).encode()


def is_secret_field(name: str) -> bool:
    """Tell whether a payload field must never leave the write side."""
    return name == "password_hash" or name.endswith("_ciphertext")


@lru_cache(maxsize=1024)
def _has_secret_field(names: tuple[str, ...]) -> bool:
    # Cached per field-name tuple: a handful of event shapes, checked once each.
    return any(is_secret_field(name) for name in names)


def without_secrets(envelope: EventEnvelope) -> EventEnvelope:
    """Drop the payload fields that must never leave the event store (hashes, ciphertext)."""
    if _has_secret_field(tuple(envelope.payload)):
        payload = {k: v for k, v in envelope.payload.items() if not is_secret_field(k)}
        envelope = replace(envelope, payload=payload)
    return envelope


@lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """Pick the partition of a key exactly as Kafka's default (murmur2) partitioner does."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


# How records are keyed (stored with the relay's position; adapters/kafka/migration.py).
KEY_SCHEME = "account"


def message_key(envelope: EventEnvelope) -> bytes:
    """The record key of an envelope: its account id (an Account event's own id)."""
    return envelope.account_id.encode()


def account_partition(account_id: UUID | str, partitions: int) -> int:
    """The partition that carries every event of an account (str(UUID) is the key's text)."""
    return partition_for(str(account_id).encode(), partitions)


def owns_partition(partition: int, instance: int, instances: int) -> bool:
    """Static scale-out: instance i of n consumes the partitions p % n == i (and so owns the
    accounts whose events travel in them)."""
    return partition % instances == instance


def message_headers(envelope: EventEnvelope, epoch: int, expected_offset: int,
                    prev_notification_id: int) -> list[tuple[str, bytes]]:
    """Return the Kafka headers of one published envelope."""
    return [
        (HEADER_SCHEMA_VERSION, _SCHEMA_VERSION_BYTES),
        (HEADER_EVENT_TYPE, envelope.event_type.encode()),
        (HEADER_EPOCH, str(epoch).encode()),
        (HEADER_EXPECTED_OFFSET, str(expected_offset).encode()),
        (HEADER_NOTIFICATION_ID, str(envelope.notification_id).encode()),
        (HEADER_PREV_NOTIFICATION_ID, str(prev_notification_id).encode()),
    ]


def _header(headers: list[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """The first header of that name, None when there is none."""
    for key, value in headers or ():
        if key == name:
            return value
    return None


def header_str(headers: list[tuple[str, bytes]] | None, name: str) -> str | None:
    """Read a text header, None when it is absent or not UTF-8."""
    value = _header(headers, name)
    try:
        return None if value is None else value.decode()
    except (AttributeError, UnicodeDecodeError):
        return None


def header_int(headers: list[tuple[str, bytes]] | None, name: str) -> int | None:
    """Read an integer header, None when it is absent or malformed."""
    value = _header(headers, name)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
