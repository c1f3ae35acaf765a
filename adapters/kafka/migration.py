"""Moving consumers to a new topic without applying an event twice (docs/event-bus.md,
"Migrating to a new topic").

A new topic gets the whole event store from its relay, from notification 1 (Kafka is
derived; Postgres is the truth). A consumer that ran on an earlier topic already applied
part of that log, and its positions there say exactly which part: on a topic, a partition's
stored notification id means every event of that partition up to it was applied. Knowing how
the earlier topic was keyed (its relay's `key_scheme`), the consumer can tell for any
event whether it was applied there: the event's partition on the earlier topic is computed
from its envelope, and the event was applied when its id is at or below that partition's
stored id.

On the new topic, a partition without a position starts at the lowest of those ids (the
floor: everything at or below it was applied, so those records are skipped as the chain
rule skips any applied record, and the first record above it directly follows them). Records
between the floor and the highest id (the ceiling) are checked one by one with `applied`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from adapters.kafka.schema import KEY_SCHEME, partition_for
from domain.envelope import EventEnvelope

AGGREGATE_SCHEME = "aggregate"  # the first topic, tradeledger.events: keyed by aggregate id


@dataclass(frozen=True)
class EarlierTopic:
    """A topic this consumer applied events from before, with its stored position per
    partition."""

    topic: str
    key_scheme: str
    applied_up_to: tuple[int, ...]  # per partition: every event of it up to this id

    @property
    def floor(self) -> int:
        return min(self.applied_up_to)

    @property
    def ceiling(self) -> int:
        return max(self.applied_up_to)

    def applied(self, envelope: EventEnvelope) -> bool:
        """Whether the consumer applied this event from the earlier topic."""
        nid = envelope.notification_id
        if nid > self.ceiling:
            return False
        key = envelope.aggregate_id if self.key_scheme == AGGREGATE_SCHEME \
            else envelope.account_id
        partition = partition_for(key.encode(), len(self.applied_up_to))
        return nid <= self.applied_up_to[partition]


def earlier_topic(conn: psycopg.Connection[Any], schema: str, consumer: str,
                  topic: str) -> EarlierTopic | None:
    """The earlier topic that proves the most applied for `consumer` (the highest floor).

    A topic counts only when the consumer stored a position for every one of its partitions
    (the count is the length of its relay's offsets; the relay is named after its topic) and
    its relay's key scheme is known: otherwise what was applied cannot be told, and the
    consumer starts the new topic from the beginning (every handler here tolerates that, but
    it costs a full pass).
    """
    rows = conn.execute(
        sql.SQL("SELECT c.topic, c.partition, c.notification_id, r.key_scheme, "
                "jsonb_array_length(r.partition_offsets) FROM {positions} c "
                "JOIN {relays} r ON r.name = c.topic "
                "WHERE c.consumer = %s AND c.topic <> %s").format(
            positions=sql.Identifier(schema, "consumer_positions"),
            relays=sql.Identifier(schema, "relay_positions")),
        (consumer, topic)).fetchall()
    found: dict[str, tuple[str, int, dict[int, int]]] = {}
    for name, partition, notification_id, scheme, count in rows:
        found.setdefault(name, (scheme, int(count), {}))[2][int(partition)] = int(notification_id)
    best: EarlierTopic | None = None
    for name, (scheme, count, stored) in found.items():
        if scheme not in (AGGREGATE_SCHEME, KEY_SCHEME) or set(stored) != set(range(count)):
            continue
        candidate = EarlierTopic(name, scheme, tuple(stored[p] for p in range(count)))
        if best is None or candidate.floor > best.floor:
            best = candidate
    return best
