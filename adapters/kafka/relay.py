"""The outbox relay: the event store's notification log, in order, to the Kafka topic.

Delivery is at least once: the relay stores its position only after the broker acknowledged
a whole batch, so a crash republishes at most that batch and consumers skip it by
notification id. Each record also names the previous notification id published to its
partition (the chain of adapters/kafka/chain.py), so a consumer can tell a record that
directly follows what it applied from one that follows events the broker lost. Only one relay
runs at a time (a Postgres advisory lock); others wait as hot standbys. docs/event-bus.md
explains the ordering, gap and broker-loss rules.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError
from psycopg import sql

from adapters.kafka.schema import (
    KEY_SCHEME,
    message_headers,
    message_key,
    partition_for,
    without_secrets,
)
from adapters.kafka.store import (
    ensure_bus_tables,
    install_wake_trigger,
    published_channel,
    wake_channel,
)
from adapters.kafka.topics import admin_client, ensure_topic, never_auto_create, topic_partitions
from adapters.platform.bootstrap import Runtime
from adapters.platform.crypto import ConfigurationError
from adapters.platform.metrics import RELAY_LAG, RELAY_PUBLISHED
from adapters.postgres.envelopes import to_envelope
from adapters.postgres.store import postgres_recorder
from commands.application import TradingApplication

log = logging.getLogger(__name__)

PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "retries": 10,
    # One request in flight: a retried request can never overtake a later one, so
    # per-partition order survives retries (kafka-python-ng has no idempotent producer).
    "max_in_flight_requests_per_connection": 1,
    # The relay flushes after every batch, so lingering never delays an event; it only lets
    # the producer fill bigger requests while a batch is being converted.
    "linger_ms": 100,
    "batch_size": 512 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    "buffer_memory": 64 * 1024 * 1024,
    "request_timeout_ms": 10_000,
    "max_block_ms": 5_000,
    "retry_backoff_ms": 100,
}


class BrokerLostData(Exception):
    """The broker no longer holds what the relay published (restarted empty, topic gone)."""


@dataclass
class RelayState:
    """The relay's stored position: last published notification id, epoch, next offsets, and
    per partition the last notification id published to it in this epoch (the chain heads)."""

    notification_id: int = 0
    epoch: int = 1
    offsets: list[int] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)


class Relay:
    """Publish the notification log of an eventsourcing application to one Kafka topic."""

    def __init__(
        self,
        *,
        app: TradingApplication,
        database_url: str,
        bootstrap_servers: str,
        topic: str,
        partitions: int = 6,
        name: str | None = None,
        batch_size: int = 5000,
        # The fallback when no append's NOTIFY comes: each wake-up costs two queries, which
        # was a third of an idle `tradeledger up` (0.25 s: ~1% of a core).
        poll_interval: float = 1.0,
        check_interval: float = 10.0,
        linger: float = 0.0,
        producer_config: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.recorder = postgres_recorder(app)
        self.mapper = app.mapper
        self.schema: str = self.recorder.datastore.schema
        self.events_table: str = self.recorder.events_table_name
        self.database_url = database_url
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.name = name or topic
        self.batch_size = batch_size
        self._caught_up = False  # the last batch read was all the log had
        self.poll_interval = poll_interval
        self.check_interval = check_interval
        # The shortest time between the starts of two publishing rounds (see _linger).
        self.linger = linger
        self._round_started = 0.0
        self.producer_config = {**PRODUCER_CONFIG, **(producer_config or {})}
        self.state = RelayState(offsets=[0] * partitions, heads=[0] * partitions)
        self.published = 0  # events published by this instance (republishes included)
        self._lag_measured_at = 0.0
        self._conn: psycopg.Connection[Any] | None = None
        self._producer: KafkaProducer | None = None
        self._probe: KafkaConsumer | None = None
        self._admin: Any = None
        self._last_check = 0.0

    # ---- leadership -----------------------------------------------------------------
    @property
    def lock_key(self) -> str:
        return f"tradeledger-relay:{self.schema}:{self.name}"

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True,
                                         application_name="tradeledger-relay")
        return self._conn

    def acquire_leadership(self, stop: threading.Event, retry_every: float = 0.5) -> bool:
        """Wait (as a hot standby) until this relay holds the advisory lock; False if stopped."""
        conn = self._connect()
        waiting_logged = False
        while not stop.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                               (self.lock_key,)).fetchone()
            if row and row[0]:
                log.info("relay %s is the active relay", self.name)
                return True
            if not waiting_logged:
                log.info("another relay is active; waiting as hot standby")
                waiting_logged = True
            stop.wait(retry_every)
        return False

    # ---- set-up -----------------------------------------------------------------------
    def open(self) -> None:
        """Create tables and trigger, load the position, LISTEN, connect to the broker."""
        conn = self._connect()
        ensure_bus_tables(conn, self.schema)
        install_wake_trigger(conn, self.schema, self.events_table)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(wake_channel(self.schema))))
        self.state = self._load_state(conn)
        self._ensure_producer()
        if topic_partitions(self.bootstrap_servers, self.topic) is None and (
            self.state.notification_id == 0
        ):
            ensure_topic(self.bootstrap_servers, self.topic, self.partitions)
        self.check_broker()

    def _load_state(self, conn: psycopg.Connection[Any]) -> RelayState:
        table = sql.Identifier(self.schema, "relay_positions")
        conn.execute(sql.SQL("INSERT INTO {} (name, partition_offsets, key_scheme) "
                             "VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING").format(table),
                     (self.name, json.dumps([0] * self.partitions), KEY_SCHEME))
        row = conn.execute(sql.SQL("SELECT notification_id, epoch, partition_offsets, "
                                   "partition_heads, key_scheme FROM {} WHERE name = %s"
                                   ).format(table), (self.name,)).fetchone()
        assert row is not None
        if row[4] != KEY_SCHEME:
            if int(row[0]):
                # Continuing would mix two keyings in one topic: an account's events would
                # no longer be in one partition, which the worker's ownership relies on.
                raise ConfigurationError(
                    f"topic {self.topic} was published keyed by {row[4]} id; this relay keys "
                    f"events by {KEY_SCHEME} id: set TRADELEDGER_KAFKA_TOPIC to a new topic "
                    "(the default is tradeledger.events.v2), which the relay fills from the "
                    "event store and consumers move to without applying anything twice "
                    "(docs/event-bus.md, 'Migrating to a new topic')")
            conn.execute(sql.SQL("UPDATE {} SET key_scheme = %s WHERE name = %s").format(table),
                         (KEY_SCHEME, self.name))
        offsets = list(row[2]) + [0] * max(0, self.partitions - len(row[2]))
        state = RelayState(int(row[0]), int(row[1]), [int(o) for o in offsets[:self.partitions]])
        heads = [int(h) for h in row[3]]
        if state.notification_id == 0:
            heads = [0] * self.partitions
        elif len(heads) != self.partitions or any(h > state.notification_id for h in heads):
            # Stored by a relay from before the chain, or the position was moved back by
            # hand: the heads must be those at our position, or consumers would see gaps.
            heads = self._rebuild_heads(state.notification_id)
        state.heads = heads
        log.info("relay %s resumes after notification %d (epoch %d)",
                 self.name, state.notification_id, state.epoch)
        return state

    def _rebuild_heads(self, up_to: int) -> list[int]:
        """Compute each partition's last notification id at or below `up_to` from the store.

        The key is the account id, which only the event's state names: the log is read
        once up to `up_to` (a rare path: a table from before the chain, or a position moved
        back by hand), converting only each aggregate's first event, since an aggregate
        never changes account.
        """
        log.warning("relay %s rebuilds its partition heads from the event store (up to %d)",
                    self.name, up_to)
        heads = [0] * self.partitions
        partition_of: dict[Any, int] = {}
        start = 1
        while start <= up_to:
            rows = self.recorder.select_notifications(start=start, limit=self.batch_size,
                                                      stop=up_to)
            if not rows:
                break
            for row in rows:
                partition = partition_of.get(row.originator_id)
                if partition is None:
                    key = message_key(to_envelope(self.app, row))
                    partition = partition_of[row.originator_id] = partition_for(
                        key, self.partitions)
                heads[partition] = row.id  # ascending: the last one seen is the head
            start = rows[-1].id + 1
        return heads

    def _store_state(self) -> None:
        # The same statement announces the publish (delivered at its commit, after the
        # broker's acks): idle consumers sleep on it instead of fetching all the time.
        self._connect().execute(
            sql.SQL("WITH stored AS (UPDATE {} SET notification_id = %s, epoch = %s, "
                    "partition_offsets = %s, partition_heads = %s, updated_at = now() "
                    "WHERE name = %s RETURNING 1) SELECT pg_notify(%s, %s)").format(
                sql.Identifier(self.schema, "relay_positions")),
            (self.state.notification_id, self.state.epoch, json.dumps(self.state.offsets),
             json.dumps(self.state.heads), self.name, published_channel(self.schema),
             self.topic),
        )

    def _ensure_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = never_auto_create(KafkaProducer(
                bootstrap_servers=self.bootstrap_servers, client_id="tradeledger-relay",
                **self.producer_config))
        return self._producer

    def _reset_kafka_clients(self) -> None:
        for client in (self._producer, self._probe, self._admin):
            if client is not None:
                try:
                    client.close(timeout=1) if isinstance(client, KafkaProducer) else client.close()
                except Exception:  # closing a broken client must not mask the cause
                    log.debug("closing a Kafka client failed", exc_info=True)
        self._producer = None
        self._probe = None
        self._admin = None

    # ---- broker loss ------------------------------------------------------------------
    def high_waters(self, timeout: float = 5.0) -> list[int | None]:
        """Ask the broker for each partition's high-water mark (None where it is unknown)."""
        if self._probe is None:
            self._probe = never_auto_create(KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers, group_id=None,
                enable_auto_commit=False, auto_offset_reset="none", fetch_max_wait_ms=10,
                max_partition_fetch_bytes=1024, client_id="tradeledger-relay-probe"))
        probe = self._probe
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        probe.assign([])  # forget the previous answers: high-waters are cached per assignment
        probe.assign(tps)
        for tp in tps:
            # Fetching at the end we expect returns no records but the current high-water.
            probe.seek(tp, self.state.offsets[tp.partition])
        waters: list[int | None] = [None] * self.partitions
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                probe.poll(timeout_ms=50, max_records=1)
            except OffsetOutOfRangeError as exc:
                # Apache Kafka answers out-of-range (Tansu answers with the high-water).
                for tp in exc.args[0] if exc.args and isinstance(exc.args[0], dict) else ():
                    waters[tp.partition] = -1
            for tp in tps:
                hw = probe.highwater(tp)
                if hw is not None and waters[tp.partition] is None:
                    waters[tp.partition] = hw
            if all(w is not None for w in waters):
                break
        return waters

    def check_broker(self) -> None:
        """Republish from the start when the broker lost (part of) what was published."""
        self._last_check = time.monotonic()
        try:
            if self._admin is None:
                self._admin = admin_client(self.bootstrap_servers)
            existing = topic_partitions(self.bootstrap_servers, self.topic, self._admin)
            if existing is None:
                raise BrokerLostData(f"topic {self.topic} is missing")
            if existing != self.partitions:
                raise BrokerLostData(f"topic {self.topic} has {existing} partitions, "
                                     f"expected {self.partitions}")
            waters = self.high_waters()
            for partition, (hw, published) in enumerate(zip(waters, self.state.offsets,
                                                            strict=True)):
                if hw is not None and hw < published:
                    raise BrokerLostData(f"partition {partition} ends at {hw}, but {published} "
                                         "records were published to it")
        except BrokerLostData as exc:
            self.restart_log(str(exc))

    def restart_log(self, reason: str) -> None:
        """Start a new epoch: (re)create the topic and publish everything again from the start."""
        log.warning("broker lost published events (%s): republishing from the start", reason)
        self._reset_kafka_clients()  # their metadata describes the old topic
        ensure_topic(self.bootstrap_servers, self.topic, self.partitions,
                     recreate_if_different=True)
        waters = self.high_waters()
        self.state = RelayState(
            notification_id=0,
            epoch=self.state.epoch + 1,
            offsets=[max(w or 0, 0) for w in waters],
            heads=[0] * self.partitions,  # the chain starts again with notification 1
        )
        self._store_state()

    # ---- publishing -------------------------------------------------------------------
    def _settled_horizon(self) -> int:
        """Wait for in-flight appends to finish; return the highest id that is now final."""
        conn = self._connect()
        with conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '5s'")
            # SHARE conflicts with the ROW EXCLUSIVE lock every INSERT holds, so this waits
            # until no append is in progress: every id issued so far is committed or burned.
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                sql.Identifier(self.schema, self.events_table)))
            row = conn.execute(sql.SQL("SELECT max(notification_id) FROM {}").format(
                sql.Identifier(self.schema, self.events_table))).fetchone()
        return int(row[0] or 0) if row else 0

    def _next_batch(self) -> tuple[Sequence[Any], bool]:
        """Return the next notifications that are safe to publish, in order (maybe none), and
        whether they are all there is for now (so that no further read is needed)."""
        start = self.state.notification_id + 1
        rows = self.recorder.select_notifications(start=start, limit=self.batch_size)
        expected = start
        for index, row in enumerate(rows):
            if row.id != expected:
                if index:
                    return rows[:index], False
                break
            expected += 1
        else:
            return rows, len(rows) < self.batch_size
        # A gap right after our position: a burned id (failed insert) or an append still in
        # flight that would commit a lower id after higher ones became visible.
        horizon = self._settled_horizon()
        rows = self.recorder.select_notifications(start=start, limit=self.batch_size,
                                                  stop=horizon)
        return rows, False

    def publish_batch(self) -> int:
        """Publish the next batch, wait for the broker's acks, store the position; return count."""
        rows, self._caught_up = self._next_batch()
        if not rows:
            self._caught_up = True
            return 0
        producer = self._ensure_producer()
        available = producer.partitions_for(self.topic)
        if len(available or ()) != self.partitions:
            # Typically a client's metadata request auto-created the topic on a restarted
            # broker with the broker's default partition count.
            self.restart_log(f"topic {self.topic} has {len(available or ())} partitions, "
                             f"expected {self.partitions}")
            self._caught_up = False
            return 0
        expected = list(self.state.offsets)
        heads = list(self.state.heads)
        sent: list[tuple[int, int, Any]] = []
        for row in rows:
            envelope = without_secrets(to_envelope(self.app, row))
            key = message_key(envelope)  # the account: its events stay in order together
            partition = partition_for(key, self.partitions)
            offset = expected[partition]
            expected[partition] += 1
            # The explicit partition is what makes `prev` exact: it is the partition the
            # record lands in, whatever partitioner the client would have used.
            future = producer.send(
                self.topic, value=envelope.to_json(), key=key, partition=partition,
                headers=message_headers(envelope, self.state.epoch, offset, heads[partition]))
            heads[partition] = row.id
            sent.append((partition, offset, future))
        producer.flush()
        offsets = list(self.state.offsets)
        lost: str | None = None
        for partition, offset, future in sent:
            metadata = future.get(timeout=0)
            if metadata.offset < offset and lost is None:
                lost = (f"partition {partition} acknowledged offset {metadata.offset} where "
                        f"{offset} was expected")
            offsets[partition] = metadata.offset + 1
        if lost:
            self.restart_log(lost)
            self._caught_up = False
            return 0
        self.state.notification_id = rows[-1].id
        self.state.offsets = offsets
        self.state.heads = heads
        self._store_state()
        self.published += len(rows)
        RELAY_PUBLISHED.inc(len(rows))
        # The lag costs a query; at most once a second, not once per (often tiny) batch.
        if time.monotonic() - self._lag_measured_at >= 1.0:
            self._lag_measured_at = time.monotonic()
            newest = self.app.recorder.max_notification_id() or 0
            RELAY_LAG.set(max(0, newest - rows[-1].id))
        return len(rows)

    def publish_pending(self) -> int:
        """Publish until the relay has caught up with the log; return how many were published.

        A batch shorter than batch_size was everything there was: no read to confirm it (two
        fewer queries per round). An append that commits meanwhile leaves its NOTIFY waiting,
        so the next _wait_for_append returns at once.
        """
        total = 0
        while True:
            count = self.publish_batch()
            total += count
            if count == 0 or self._caught_up:
                return total

    def _wait_for_append(self, stop: threading.Event) -> None:
        """Return on an append's NOTIFY, after poll_interval (the fallback), or on stop."""
        conn = self._connect()
        deadline = time.monotonic() + self.poll_interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short slices so that stop is honoured quickly even with a long poll interval.
            for _ in conn.notifies(timeout=min(remaining, 0.2), stop_after=1):
                return

    def run(self, stop: threading.Event) -> None:
        """Wait for leadership, then relay until `stop` is set; survive broker outages."""
        try:
            while not stop.is_set():
                try:
                    if not self.acquire_leadership(stop):
                        return
                    self.open()
                    self._relay_until_stopped(stop)
                except psycopg.OperationalError as exc:
                    # The lock went with the connection: compete for leadership again.
                    log.warning("database connection lost (%s); reconnecting", exc)
                    self.close()
                    stop.wait(1.0)
        finally:
            self.close()

    def _linger(self, stop: threading.Event) -> None:
        """Let a round start no sooner than `linger` after the previous one.

        A round costs the same few round trips (read, produce and wait for the acks, store
        the position) for one event or a thousand; under steady appends each commit would
        otherwise wake its own round. After a quiet spell nothing waits: the previous round
        started long ago.
        """
        pause = self._round_started + self.linger - time.monotonic()
        if pause > 0:
            stop.wait(pause)
        self._round_started = time.monotonic()

    def _relay_until_stopped(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self._producer is None:
                    self._ensure_producer()
                    self.check_broker()
                self._linger(stop)
                published = self.publish_pending()
                if published and not self._caught_up:
                    continue  # stopped short of the log's end (the topic was restarted)
                # Idle: the acks catch a lost log while publishing; this catches it when
                # nothing is being appended (a new consumer would find an empty topic).
                if not published and time.monotonic() - self._last_check > self.check_interval:
                    self.check_broker()
                self._wait_for_append(stop)
            except (KafkaError, AssertionError) as exc:
                # kafka-python-ng also reports some metadata problems with assert.
                log.warning("Kafka error (%r); reconnecting and checking the broker", exc)
                self._reset_kafka_clients()
                stop.wait(0.5)

    def close(self) -> None:
        """Close the Kafka clients and the database connection (releasing the lock)."""
        self._reset_kafka_clients()
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


def relay_from_runtime(runtime: Runtime, bootstrap_servers: str, **kwargs: Any) -> Relay:
    """Build the relay of a bootstrapped runtime (adapters.platform.bootstrap.Runtime)."""
    settings = runtime.settings
    kwargs.setdefault("linger", settings.relay_linger_ms / 1000)
    return Relay(app=runtime.app, database_url=runtime.database_url,
                 bootstrap_servers=bootstrap_servers, topic=settings.kafka_topic,
                 partitions=settings.kafka_partitions, **kwargs)
