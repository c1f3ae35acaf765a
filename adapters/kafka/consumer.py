"""The consumer framework every service builds on: exactly-once effects from an at-least-once log.

A runner owns a static share of the topic's partitions (instance i of n owns p % n == i),
reads them with manual assignment, and applies each batch in one Postgres transaction that
also stores, per partition, the next Kafka offset and the highest notification id applied
(every earlier event of the partition is applied too). An envelope at or below that
notification id was applied already (a relay retry or a republish after broker loss) and is
skipped; one whose chain header shows an unapplied event before it is passed over until the
relay republishes (adapters/kafka/chain.py). A handler that keeps failing sends its event to
the dead-letter table and the runner moves on. docs/event-bus.md has the details.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError
from psycopg import sql

from adapters.kafka.chain import Decision, decide
from adapters.kafka.migration import EarlierTopic, earlier_topic
from adapters.kafka.schema import (
    HEADER_EPOCH,
    HEADER_EVENT_TYPE,
    HEADER_EXPECTED_OFFSET,
    HEADER_NOTIFICATION_ID,
    HEADER_PREV_NOTIFICATION_ID,
    header_int,
    header_str,
    owns_partition,
)
from adapters.kafka.store import ensure_bus_tables, published_channel
from adapters.kafka.topics import ensure_topic, never_auto_create
from adapters.platform.metrics import CONSUMER_APPLIED, CONSUMER_LAG, DEAD_LETTERS
from adapters.postgres.store import check_schema_name
from domain.envelope import EventEnvelope

log = logging.getLogger(__name__)

RETRY_CHECK_INTERVAL = 1.0
PARTITION_FETCH_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 4000
# A batch with nothing to apply (only events the handler does not want, or duplicates) stores
# its positions at most this often: they only save rereading those events after a restart.
IDLE_POSITIONS_INTERVAL = 1.0
# An idle consumer sleeps until the relay announces a publish (NOTIFY on published_channel),
# or this long at most: the fallback if an announcement is missed (an older relay, a lost
# connection), and the pace of the retry and lost-log checks while nothing is published.
IDLE_WAKE_INTERVAL = 1.0
# The poll after an idle interval that no announcement ended: one short fetch (a full poll
# holds up to ten 10 ms fetches, which was most of an idle consumer's cost).
IDLE_POLL_MS = 10


class EventHandler(Protocol):
    """What a consumer implements. `handle` runs inside the transaction that stores the position.

    A handler may also define `after_commit(self, envelopes: list[EventEnvelope]) -> None`,
    called with the envelopes it applied once their transaction committed (for notifications),
    and `event_types: frozenset[str]`, the only event types it wants: the others are passed
    over by their header, never decoded (the chain is still followed, so gaps are seen).
    """

    name: str  # the consumer's name: key of its positions and dead letters

    def handle(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None: ...


class StagingHandler(EventHandler, Protocol):
    """A handler that can leave per-transaction work for the end of the batch.

    The consumer calls `stage` for each event instead of `handle`, then `flush` once, inside
    the same transaction, before it commits the batch and its positions. `handle` must stay
    `stage` followed by `flush`. A batch first runs whole in pipeline mode (statements are
    sent without waiting for answers, so errors may surface only at a later read or at
    `flush`), after `prepare(conn, envelopes)` if the handler has it (to read what the batch
    needs at once); if anything fails, `discard()` (if the handler has it) forgets what was
    staged, and the batch runs again carefully, without `prepare`, one savepoint per event.
    A `flush` that fails then rolls the whole batch back and is retried like a lost
    connection, never dead-lettered (it is about the batch, not one event).
    """

    def stage(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None: ...

    def flush(self, conn: psycopg.Connection[Any]) -> None: ...


class _BatchFailed(Exception):
    """A handler failed while a batch ran without savepoints."""


@dataclass
class Position:
    """Where a consumer is in one partition: next offset, highest notification id applied
    (with every earlier event of the partition applied), the relay epoch last seen."""

    kafka_offset: int = 0
    notification_id: int = 0
    epoch: int = 0


class ConsumerRunner:
    """Run one handler over its share of a topic's partitions, exactly once in effect."""

    def __init__(
        self,
        *,
        database_url: str,
        schema: str,
        bootstrap_servers: str,
        topic: str,
        handler: EventHandler,
        instance: int = 0,
        instances: int = 1,
        batch_size: int = 500,
        max_attempts: int = 3,
        poll_timeout_ms: int = 100,
        wake_on_publish: bool = True,
    ) -> None:
        if not 0 <= instance < instances:
            raise ValueError(f"instance must be in 0..{instances - 1}, not {instance}")
        if not getattr(handler, "name", ""):
            raise ValueError("the handler needs a non-empty `name`")
        self.database_url = database_url
        self.schema = check_schema_name(schema)
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.handler = handler
        # A StagingHandler's stage (flushed once per transaction), else None: handle per event.
        self._stage = (getattr(handler, "stage", None)
                       if callable(getattr(handler, "flush", None)) else None)
        self._wanted: frozenset[str] | None = getattr(handler, "event_types", None)
        self.name: str = handler.name
        self.instance = instance
        self.instances = instances
        self.batch_size = batch_size
        self.max_attempts = max(1, max_attempts)
        self.poll_timeout_ms = poll_timeout_ms
        self.wake_on_publish = wake_on_publish
        # LISTENs on the relay's publish announcements: an idle `run` waits on it instead of
        # fetching every few milliseconds (each empty fetch costs the broker and us CPU).
        self._wake: psycopg.Connection[Any] | None = None
        self.partitions: list[int] = []
        self._conn: psycopg.Connection[Any] | None = None
        self._consumer: KafkaConsumer | None = None
        self._positions: dict[int, Position] = {}
        # The topic this consumer applied events from before this one, if any (migration).
        self._earlier: EarlierTopic | None = None
        # Partitions read from offset 0 in this run: a suspicious record there is no reason
        # to rewind again. Only used for records without the chain header (older relays).
        self._from_start: set[int] = set()
        # Partitions waiting for the relay to republish events they miss (logged once each).
        self._waiting: set[int] = set()
        self._last_retry_check = 0.0
        # Positions advanced by batches that applied nothing, not stored yet (see
        # IDLE_POSITIONS_INTERVAL); any later store writes them too.
        self._unstored: dict[int, Position] = {}
        self._positions_stored_at = 0.0
        self._t_positions = sql.Identifier(self.schema, "consumer_positions")
        self._t_dead = sql.Identifier(self.schema, "dead_letters")

    # ---- set-up -----------------------------------------------------------------------
    def open(self) -> None:
        """Connect to Postgres and the broker, take the owned partitions, seek to positions."""
        conn = psycopg.connect(self.database_url, autocommit=True,
                               application_name=f"tradeledger-consumer-{self.name}"[:63])
        ensure_bus_tables(conn, self.schema)
        # Handlers may name their tables without the schema.
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        self._conn = conn
        if self.wake_on_publish:
            # LISTEN before the first fetch: an announcement made while a fetch comes back
            # empty then waits on this connection, so no wake-up is lost.
            wake = psycopg.connect(self.database_url, autocommit=True,
                                   application_name=f"tradeledger-wake-{self.name}"[:63])
            wake.execute(sql.SQL("LISTEN {}").format(
                sql.Identifier(published_channel(self.schema))))
            self._wake = wake
        # Creating the topic here keeps a client's metadata request from auto-creating it
        # with the broker's default partition count.
        ensure_topic(self.bootstrap_servers, self.topic,
                     int(os.environ.get("TRADELEDGER_KAFKA_PARTITIONS", "6")))
        consumer = never_auto_create(KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False,
            auto_offset_reset="none", max_poll_records=self.batch_size,
            # How long the broker may hold an empty fetch. The embedded broker holds it the
            # whole time even when records arrive meanwhile (Apache Kafka answers at once),
            # so this is latency there: 10 ms keeps the projector's lag p99 under 50 ms at
            # 500 events/s for about 3.5% of a core per idle consumer (5 ms: 6%, 20 ms: 2%).
            fetch_max_wait_ms=max(1, min(self.poll_timeout_ms, 10)),
            # Small per-partition fetches (about a hundred records each): a poll then mixes
            # the partitions instead of draining one far ahead of the others, so a handler
            # whose state spans aggregates (positions) rarely sees an older event late,
            # however long the backlog.
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            client_id=f"tradeledger-{self.name}-{self.instance}",
        ))
        partitions = None
        deadline = time.monotonic() + 10
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions is None:
                time.sleep(0.1)
        if partitions is None:
            consumer.close()
            raise KafkaError(f"topic {self.topic} has no partitions")
        self.partitions = sorted(p for p in partitions
                                 if owns_partition(p, self.instance, self.instances))
        self._consumer = consumer
        self._load_positions()
        tps = [TopicPartition(self.topic, p) for p in self.partitions]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self._positions[tp.partition].kafka_offset)
        log.info("consumer %s instance %d/%d owns partitions %s of %s", self.name,
                 self.instance, self.instances, self.partitions, self.topic)

    def _load_positions(self) -> None:
        assert self._conn is not None
        rows = self._conn.execute(
            sql.SQL("SELECT partition, kafka_offset, notification_id, epoch FROM {} "
                    "WHERE consumer = %s AND topic = %s").format(self._t_positions),
            (self.name, self.topic),
        ).fetchall()
        stored = {int(r[0]): Position(int(r[1]), int(r[2]), int(r[3])) for r in rows}
        # Moved over from an earlier topic: what was applied there is skipped here.
        self._earlier = earlier_topic(self._conn, self.schema, self.name, self.topic)
        floor = self._earlier.floor if self._earlier else 0
        fresh = [p for p in self.partitions if p not in stored]
        if self._earlier and fresh:
            log.info("consumer %s starts partitions %s of %s after notification %d, and up "
                     "to %d skips what it applied from %s", self.name, fresh, self.topic,
                     floor, self._earlier.ceiling, self._earlier.topic)
        self._positions = {p: stored.get(p, Position(notification_id=floor))
                           for p in self.partitions}
        self._from_start = {p for p, pos in self._positions.items() if pos.kafka_offset == 0}
        self._unstored.clear()

    def close(self) -> None:
        """Close the Kafka consumer and the database connection."""
        if self._unstored and self._conn is not None and not self._conn.broken:
            try:
                with self._conn.transaction():
                    self._store_positions({})
            except psycopg.Error:  # they only save rereading a few events we do not want
                log.debug("storing the last positions failed", exc_info=True)
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # closing a broken client must not mask the cause
                log.debug("closing the Kafka consumer failed", exc_info=True)
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        if self._wake is not None and not self._wake.closed:
            self._wake.close()
        self._consumer = None
        self._conn = None
        self._wake = None

    # ---- positions ----------------------------------------------------------------------
    def _store_position(self, partition: int, pos: Position) -> None:
        self._store_positions({partition: pos})

    def _store_positions(self, positions: dict[int, Position]) -> None:
        """Upsert the positions of several partitions in one statement, with any that idle
        batches left unstored."""
        assert self._conn is not None
        if self._unstored:
            positions = {**self._unstored, **positions}
            self._unstored.clear()
        self._positions_stored_at = time.monotonic()
        parts = sorted(positions)
        self._conn.execute(
            sql.SQL("INSERT INTO {} (consumer, topic, partition, kafka_offset, "
                    "notification_id, epoch) SELECT %s, %s, p, o, n, e FROM "
                    "unnest(%s::int[], %s::bigint[], %s::bigint[], %s::int[]) AS u(p, o, n, e) "
                    "ON CONFLICT (consumer, topic, partition) DO UPDATE SET "
                    "kafka_offset = EXCLUDED.kafka_offset, "
                    "notification_id = EXCLUDED.notification_id, epoch = EXCLUDED.epoch, "
                    "updated_at = now()").format(self._t_positions),
            (self.name, self.topic, parts, [positions[p].kafka_offset for p in parts],
             [positions[p].notification_id for p in parts], [positions[p].epoch for p in parts]),
        )

    def _rewind(self, tp: TopicPartition, reason: str, epoch: int | None = None,
                pos: Position | None = None) -> Position:
        """Read a partition again from offset 0; applied events are skipped by notification id."""
        assert self._consumer is not None
        log.warning("consumer %s rereads partition %d from offset 0: %s",
                    self.name, tp.partition, reason)
        self._consumer.seek(tp, 0)
        self._from_start.add(tp.partition)
        pos = pos or self._positions[tp.partition]
        return replace(pos, kafka_offset=0, epoch=max(pos.epoch, epoch or 0))

    def _check_high_waters(self) -> None:
        """Rewind partitions whose log is shorter than our position (the broker lost it)."""
        assert self._consumer is not None and self._conn is not None
        for partition in self.partitions:
            tp = TopicPartition(self.topic, partition)
            high_water = self._consumer.highwater(tp)
            if high_water is None:
                continue
            position = self._consumer.position(tp)
            if position is not None and high_water < position:
                pos = self._rewind(tp, f"the log ends at {high_water}, before our {position}")
                with self._conn.transaction():
                    self._store_position(partition, pos)
                self._positions[partition] = pos

    # ---- applying -------------------------------------------------------------------------
    def _apply(self, envelope: EventEnvelope, careful: bool = True) -> Exception | None:
        """Run the handler in a savepoint up to max_attempts times; return the last error.

        Not careful: run it without a savepoint and raise _BatchFailed on any error, so the
        batch is redone carefully (saves two round trips per event in the common case).
        """
        assert self._conn is not None
        handle = self._stage or self.handler.handle
        if not careful:
            try:
                handle(self._conn, envelope)
                return None
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                raise _BatchFailed from exc
        error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self._conn.transaction():
                    handle(self._conn, envelope)
                return None
            except psycopg.OperationalError:
                raise  # the connection is gone: not the event's fault
            except Exception as exc:  # a handler may fail in any way; it must not stop us
                if self._conn.broken:
                    raise
                error = exc
                log.warning("consumer %s failed on %s %s (attempt %d/%d): %s", self.name,
                            envelope.event_type, envelope.event_id, attempt, self.max_attempts,
                            exc)
        return error

    def _dead_letter(self, record: Any, envelope_json: str, notification_id: int | None,
                     error: BaseException, attempts: int) -> None:
        assert self._conn is not None
        log.error("consumer %s dead-letters partition %d offset %d (notification %s): %s",
                  self.name, record.partition, record.offset, notification_id, error)
        DEAD_LETTERS.labels(consumer=self.name).inc()
        self._conn.execute(
            sql.SQL("INSERT INTO {} (consumer, topic, partition, kafka_offset, notification_id, "
                    "envelope, error, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    ).format(self._t_dead),
            (self.name, self.topic, record.partition, record.offset, notification_id,
             envelope_json, f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH], attempts),
        )

    def _note_gap(self, partition: int, record: Any, notification_id: int, prev: int,
                  stored: int) -> None:
        if partition in self._waiting:
            return
        self._waiting.add(partition)
        log.warning("consumer %s: partition %d offset %d holds notification %d after %d, but "
                    "it applied only up to %d: the broker lost events; waiting for the relay "
                    "to republish", self.name, partition, record.offset, notification_id, prev,
                    stored)

    def _follows(self, tp: TopicPartition, record: Any, pos: Position, notification_id: int,
                 prev: int | None) -> bool:
        """Tell whether the record is next in the partition's chain; if so, advance `pos`."""
        decision = decide(notification_id, prev, pos.notification_id)
        if decision is Decision.SKIP:
            return False  # applied already: a relay retry or a republish
        if decision is Decision.GAP:
            # Neither applied nor remembered: the republished chain brings it back in order.
            assert prev is not None
            self._note_gap(tp.partition, record, notification_id, prev, pos.notification_id)
            return False
        if tp.partition in self._waiting:
            self._waiting.discard(tp.partition)
            log.info("consumer %s: partition %d continues after notification %d",
                     self.name, tp.partition, pos.notification_id)
        pos.notification_id = notification_id
        return True

    def _apply_partition(self, tp: TopicPartition, records: list[Any],
                         due: list[tuple[EventEnvelope, Any]],
                         unreadable: list[tuple[Any, str, int | None, Exception]]) -> Position:
        """Decide which of one partition's records to apply (adding them to `due`) and which
        to dead-letter (`unreadable`); return the partition's new position."""
        pos = replace(self._positions[tp.partition])
        for record in records:
            epoch = header_int(record.headers, HEADER_EPOCH)
            prev = header_int(record.headers, HEADER_PREV_NOTIFICATION_ID)
            if epoch is not None and pos.epoch and epoch > pos.epoch:
                # The relay rebuilt the log: offsets from before mean nothing now, and our
                # offset may lie past the start of the republished chain.
                return self._rewind(tp, f"the relay republished (epoch {epoch})", epoch, pos)
            if prev is None:
                # An older relay's record: no chain, so guess from the offsets.
                expected = header_int(record.headers, HEADER_EXPECTED_OFFSET)
                if (expected is not None and record.offset < expected
                        and tp.partition not in self._from_start):
                    # Published by a relay that believed the log was longer: the broker lost
                    # records, and our stored offset may point past events we never saw.
                    return self._rewind(tp, f"offset {record.offset} was published as "
                                            f"{expected}", pos=pos)
            # With the chain, a record published into a log the relay believed longer needs no
            # rewind: if it follows events we miss it is a gap, and the epoch that republishes
            # them makes us reread from offset 0 anyway.
            pos.epoch = max(pos.epoch, epoch or 0)
            pos.kafka_offset = record.offset + 1
            if self._wanted is not None and prev is not None:
                event_type = header_str(record.headers, HEADER_EVENT_TYPE)
                notification_id = header_int(record.headers, HEADER_NOTIFICATION_ID)
                if (event_type is not None and notification_id is not None
                        and event_type not in self._wanted):
                    self._follows(tp, record, pos, notification_id, prev)
                    continue
            try:
                envelope = EventEnvelope.from_json(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                raw = record.value.decode("utf-8", "replace") if record.value else ""
                notification_id = header_int(record.headers, HEADER_NOTIFICATION_ID)
                if notification_id is not None and prev is not None:
                    # Keep the chain going over a record we cannot read: dead-letter it once,
                    # like an event whose handler keeps failing.
                    if not self._follows(tp, record, pos, notification_id, prev):
                        continue
                unreadable.append((record, raw, notification_id, exc))
                continue
            if self._follows(tp, record, pos, envelope.notification_id, prev) and not (
                    self._earlier is not None and self._earlier.applied(envelope)):
                due.append((envelope, record))
        return pos

    def poll_once(self, timeout_ms: int | None = None) -> tuple[int, int]:
        """Fetch and apply one batch (waiting up to `timeout_ms`, by default poll_timeout_ms);
        return (records received, envelopes applied)."""
        if self._consumer is None:
            self.open()
        assert self._consumer is not None and self._conn is not None
        try:
            batch = self._consumer.poll(
                timeout_ms=self.poll_timeout_ms if timeout_ms is None else timeout_ms,
                max_records=self.batch_size)
        except OffsetOutOfRangeError as exc:
            # Apache Kafka's answer to a position past the log end (Tansu returns nothing).
            ranges = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            for tp in ranges:
                pos = self._rewind(tp, "offset out of range")
                with self._conn.transaction():
                    self._store_position(tp.partition, pos)
                self._positions[tp.partition] = pos
            return 0, 0
        self._check_high_waters()
        if not batch:
            return 0, 0
        received = sum(len(records) for records in batch.values())
        from_start = set(self._from_start)
        try:
            try:
                applied, new_positions = self._apply_batch(batch, careful=False)
            except _BatchFailed:
                # A handler failed: redo the batch with a savepoint per event, so only the
                # failing event is retried and, at worst, dead-lettered.
                self._discard_staged()
                self._from_start = set(from_start)
                applied, new_positions = self._apply_batch(batch, careful=True)
        except BaseException:
            # Nothing of the batch was stored: go back to the stored positions.
            self._discard_staged()
            self._reseek()
            raise
        self._positions.update(new_positions)
        self._after_commit(applied)
        self._report_metrics(len(applied))
        return received, len(applied)

    def _report_metrics(self, applied: int) -> None:
        """Export how much this consumer applied and how far each partition is behind."""
        assert self._consumer is not None
        CONSUMER_APPLIED.labels(consumer=self.name).inc(applied)
        for partition in self.partitions:
            tp = TopicPartition(self.topic, partition)
            high_water = self._consumer.highwater(tp)
            if high_water is not None:
                lag = max(0, high_water - self._consumer.position(tp))
                CONSUMER_LAG.labels(consumer=self.name, partition=str(partition)).set(lag)

    def _apply_batch(self, batch: dict[TopicPartition, list[Any]], careful: bool
                     ) -> tuple[list[EventEnvelope], dict[int, Position]]:
        """Apply a fetched batch and store the positions in one transaction."""
        assert self._conn is not None
        applied: list[EventEnvelope] = []
        due: list[tuple[EventEnvelope, Any]] = []
        unreadable: list[tuple[Any, str, int | None, Exception]] = []
        new_positions = {tp.partition: self._apply_partition(tp, records, due, unreadable)
                         for tp, records in batch.items()}
        if not due and not unreadable:
            # Nothing to apply: no transaction, and the positions wait (IDLE_POSITIONS_INTERVAL).
            self._unstored.update(new_positions)
            if time.monotonic() - self._positions_stored_at >= IDLE_POSITIONS_INTERVAL:
                with self._conn.transaction():
                    self._store_positions({})
            return applied, new_positions
        with self._conn.transaction():
            for record, raw, notification_id, exc in unreadable:
                self._dead_letter(record, raw, notification_id, exc, 1)
            self._store_positions(new_positions)
            # Apply in event-store order across partitions (each partition's own order is
            # kept: its notification ids rise): a handler whose state spans aggregates, like
            # an account's position over many orders, then rarely sees a late older event.
            due.sort(key=lambda item: item[0].notification_id)
            if self._stage is not None and not careful:
                self._apply_staged([envelope for envelope, _ in due])
                applied.extend(envelope for envelope, _ in due)
                return applied, new_positions
            for envelope, record in due:
                error = self._apply(envelope, careful)
                if error is None:
                    applied.append(envelope)
                else:
                    self._dead_letter(record, envelope.to_json().decode(),
                                      envelope.notification_id, error, self.max_attempts)
            self._flush()
        return applied, new_positions

    def _discard_staged(self) -> None:
        discard = getattr(self.handler, "discard", None)
        if self._stage is not None and discard is not None:
            discard()

    def _apply_staged(self, envelopes: list[EventEnvelope]) -> None:
        """Stage a whole batch and flush it in one pipeline: statements go out without
        waiting for each answer. Any failure redoes the batch carefully (_BatchFailed), where
        each event runs in its own savepoint, so only a failing event is dead-lettered."""
        assert self._conn is not None and self._stage is not None
        prepare = getattr(self.handler, "prepare", None)
        try:
            with self._conn.pipeline():
                if prepare is not None:
                    prepare(self._conn, envelopes)
                for envelope in envelopes:
                    self._stage(self._conn, envelope)
                self._flush()
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            raise _BatchFailed from exc

    def _flush(self) -> None:
        """End a transaction's staged work (StagingHandler.flush), if the handler stages."""
        flush = getattr(self.handler, "flush", None)
        if self._stage is not None and flush is not None:
            assert self._conn is not None
            flush(self._conn)

    def _after_commit(self, applied: list[EventEnvelope]) -> None:
        after_commit = getattr(self.handler, "after_commit", None)
        if applied and after_commit is not None:
            try:
                after_commit(applied)
            except Exception:  # effects are committed; a failed notification must not undo
                log.exception("consumer %s: after_commit failed", self.name)

    def _reseek(self) -> None:
        if self._consumer is None or self._conn is None or self._conn.broken:
            self.close()
            return
        try:
            self._load_positions()
            for partition, pos in self._positions.items():
                self._consumer.seek(TopicPartition(self.topic, partition), pos.kafka_offset)
        except Exception:
            log.debug("re-seeking after a failed batch failed; reconnecting", exc_info=True)
            self.close()

    # ---- dead-letter retries -----------------------------------------------------------------
    def process_retries(self) -> int:
        """Apply the dead letters marked for retry; return how many succeeded."""
        assert self._conn is not None
        self._last_retry_check = time.monotonic()
        rows = self._conn.execute(
            sql.SQL("SELECT id, envelope, attempts FROM {} WHERE consumer = %s AND topic = %s "
                    "AND retry_requested AND resolved_at IS NULL AND partition = ANY(%s) "
                    "ORDER BY id").format(self._t_dead),
            (self.name, self.topic, self.partitions),
        ).fetchall()
        applied: list[EventEnvelope] = []
        for dead_id, raw, attempts in rows:
            with self._conn.transaction():
                try:
                    envelope = EventEnvelope.from_json(raw)
                    error = self._apply(envelope)
                except (ValueError, KeyError, TypeError) as exc:
                    envelope, error = None, exc
                if error is None and envelope is not None:
                    self._flush()
                    self._conn.execute(
                        sql.SQL("UPDATE {} SET resolved_at = now(), retry_requested = false, "
                                "attempts = attempts + 1 WHERE id = %s").format(self._t_dead),
                        (dead_id,))
                    applied.append(envelope)
                    log.info("consumer %s: dead letter %d applied on retry", self.name, dead_id)
                else:
                    self._conn.execute(
                        sql.SQL("UPDATE {} SET retry_requested = false, attempts = %s, "
                                "error = %s WHERE id = %s").format(self._t_dead),
                        (attempts + (self.max_attempts if envelope else 1),
                         f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH], dead_id))
        self._after_commit(applied)
        return len(applied)

    # ---- loops ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; a batch in progress finishes (or rolls back) first."""
        try:
            woken = True
            while not stop.is_set():
                try:
                    received, _ = self.poll_once(None if woken else IDLE_POLL_MS)
                    if time.monotonic() - self._last_retry_check > RETRY_CHECK_INTERVAL:
                        self.process_retries()
                    woken = bool(received) or self._wake is None or self.wait_for_publish(stop)
                except (psycopg.OperationalError, KafkaError) as exc:
                    log.warning("consumer %s: %s; reconnecting", self.name, exc)
                    self.close()
                    stop.wait(1.0)
        finally:
            self.close()

    def wait_for_publish(self, stop: threading.Event,
                         timeout: float = IDLE_WAKE_INTERVAL) -> bool:
        """After an empty poll: sleep until the relay announces a publish of our topic, stop
        is set, or `timeout` passes; True if woken by an announcement.

        Any announcements already queued are taken at once, so one wake-up serves them all.
        Without a LISTEN connection (wake_on_publish off) it returns at once: plain polling.
        """
        wake = self._wake
        if wake is None:
            return False
        deadline = time.monotonic() + timeout
        woken = False
        while not stop.is_set() and not woken:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Short slices, so that stop is honoured quickly.
            for note in wake.notifies(timeout=min(remaining, 0.25)):
                woken = woken or note.payload in ("", self.topic)
                if woken:
                    break
        if woken:
            for _ in wake.notifies(timeout=0):  # drain: this wake-up covers those too
                pass
        return woken

    def caught_up(self) -> bool:
        """Tell whether every owned partition was read up to its last known high-water."""
        if self._consumer is None:
            return False
        for partition in self.partitions:
            tp = TopicPartition(self.topic, partition)
            high_water = self._consumer.highwater(tp)
            if high_water is None or self._consumer.position(tp) < high_water:
                return False
        return True

    def run_until_idle(self, timeout: float = 10.0) -> int:
        """Consume until caught up with the log (for tests); return how many were applied."""
        deadline = time.monotonic() + timeout
        applied = 0
        if self._consumer is None:
            self.open()
        applied += self.process_retries()
        while time.monotonic() < deadline:
            received, count = self.poll_once()
            applied += count
            if received == 0 and self.caught_up():
                return applied
        log.warning("consumer %s not idle after %.1fs", self.name, timeout)
        return applied
