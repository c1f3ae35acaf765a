"""The outbox relay against real Postgres and a real Kafka-protocol broker."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from adapters.kafka.consumer import ConsumerRunner
from adapters.kafka.embedded import start_embedded_broker
from adapters.kafka.relay import Relay
from adapters.kafka.schema import partition_for
from adapters.platform.bootstrap import Runtime
from adapters.platform.crypto import ConfigurationError
from adapters.platform.settings import Settings, settings_env
from commands.messages import RegisterAccount
from domain.envelope import EventEnvelope
from tests.support.kafka import (
    EffectsHandler,
    append_events,
    create_effects_table,
    effects_summary,
    new_orders,
    store_summary,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def make_relay(runtime: Runtime, bootstrap: str, topic: str, **kwargs: Any) -> Relay:
    return Relay(app=runtime.app, database_url=runtime.database_url,
                 bootstrap_servers=bootstrap, topic=topic, partitions=6, **kwargs)


def make_runner(runtime: Runtime, bootstrap: str, topic: str, handler: Any,
                **kwargs: Any) -> ConsumerRunner:
    return ConsumerRunner(database_url=runtime.database_url,
                          schema=runtime.settings.database_schema,
                          bootstrap_servers=bootstrap, topic=topic, handler=handler, **kwargs)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[threading.Event], None]], None]]:
    """Run loops in threads; stop and join them at the end of the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(loop: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=loop, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)


def relay_position(url: str, schema: str) -> tuple[int, int]:
    """(notification id, epoch) the relay stored; (0, 0) before it started."""
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute(f'SELECT notification_id, epoch FROM "{schema}".relay_positions'
                               ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0, 0
    return (int(row[0]), int(row[1])) if row else (0, 0)


def test_published_messages_follow_the_public_schema_without_secrets(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str
) -> None:
    account_id = runtime.app.handle(RegisterAccount(email="schema@example.com",
                                                    password="correct horse battery"))
    orders = new_orders(1)
    runtime.app.save(*orders)
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic)
    relay.open()
    try:
        assert relay.publish_pending() == 2
    finally:
        relay.close()

    records = _read_all(kafka_bootstrap, kafka_topic, 2)
    by_type = {EventEnvelope.from_json(r.value).event_type: r for r in records}
    registered = by_type["AccountRegistered"]
    assert b"password_hash" not in registered.value and b"argon2" not in registered.value
    envelope = EventEnvelope.from_json(registered.value)
    assert envelope.aggregate_id == str(account_id) == registered.key.decode()
    assert envelope.payload == {"email": "schema@example.com"}
    headers = dict(registered.headers)
    assert headers["schema-version"] == b"1" and headers["event-type"] == b"AccountRegistered"
    placed = EventEnvelope.from_json(by_type["OrderPlaced"].value)
    assert placed.payload["quantity"] == "1" and placed.payload["symbol"] == "BTCUSDT"
    assert placed.aggregate_type == "Order" and placed.version == 1
    # Keyed by account, not by aggregate: an account's orders share its partition.
    assert by_type["OrderPlaced"].key.decode() == placed.account_id != placed.aggregate_id


def test_each_aggregate_is_applied_in_version_order(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    appended = append_events(runtime.app, orders=300, events_per_order=4, per_save=20)
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic, batch_size=500)
    relay.open()
    try:
        assert relay.publish_pending() == appended == 1200
    finally:
        relay.close()
    runner = make_runner(runtime, kafka_bootstrap, kafka_topic, EffectsHandler())
    try:
        assert runner.run_until_idle(30) == 1200
    finally:
        runner.close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f'SELECT aggregate_id, array_agg(version ORDER BY seq) '
                            f'FROM "{schema}".effects GROUP BY aggregate_id').fetchall()
    assert len(rows) == 300
    assert all(versions == [1, 2, 3, 4] for _, versions in rows)


def _read_all(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=10)
    tps = [TopicPartition(topic, p) for p in range(6)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    records: list[Any] = []
    deadline = time.monotonic() + 10
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(200).values():
            records.extend(batch)
    consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def test_each_record_names_the_previous_notification_of_its_partition_across_restarts(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str
) -> None:
    schema = runtime.settings.database_schema
    first = append_events(runtime.app, orders=40, events_per_order=2, per_save=10)
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic)
    relay.open()
    try:
        assert relay.publish_pending() == first
    finally:
        relay.close()
    # A relay from before the chain stored no heads: the next one rebuilds them.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".relay_positions SET partition_heads = \'[]\'')
    second = append_events(runtime.app, orders=20, events_per_order=2, per_save=10)
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic)
    relay.open()
    try:
        assert relay.publish_pending() == second
    finally:
        relay.close()
    third = append_events(runtime.app, orders=20, events_per_order=2, per_save=10)
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic)  # resumes from stored heads
    relay.open()
    try:
        assert relay.publish_pending() == third
    finally:
        relay.close()

    records = _read_all(kafka_bootstrap, kafka_topic, first + second + third)
    assert len(records) == first + second + third
    last: dict[int, int] = {}
    for record in records:
        headers = dict(record.headers)
        envelope = EventEnvelope.from_json(record.value)
        nid = envelope.notification_id
        assert record.key.decode() == envelope.account_id
        assert int(headers["notification-id"]) == nid
        assert int(headers["prev-notification-id"]) == last.get(record.partition, 0), record
        assert record.partition == _partition_of(record.key.decode())
        last[record.partition] = nid
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(f'SELECT partition_heads FROM "{schema}".relay_positions').fetchone()
    assert row is not None
    assert row[0] == [last.get(p, 0) for p in range(6)]


def test_a_burned_notification_id_does_not_stop_the_relay(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str
) -> None:
    from decimal import Decimal

    from eventsourcing.persistence import IntegrityError

    from domain.order import Order

    first = new_orders(1, prefix="a")
    runtime.app.save(*first)
    # The same account and clientOrderId make the same id: the insert fails, burning an id.
    duplicate = Order(account_id=first[0].account_id, client_order_id="a0", symbol="BTCUSDT",
                      side="BUY", order_type="LIMIT", quantity=Decimal("1"),
                      price=Decimal("100"), time_in_force="GTC", actor="test")
    with pytest.raises(IntegrityError):
        runtime.app.save(duplicate)
    runtime.app.save(*new_orders(2, prefix="c"))
    ids = [n.id for n in runtime.app.recorder.select_notifications(start=1, limit=10)]
    assert len(ids) == 3 and ids != list(range(ids[0], ids[0] + 3)), ids  # there is a gap
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic)
    relay.open()
    try:
        assert relay.publish_pending() == 3
        assert relay.state.notification_id == ids[-1]
    finally:
        relay.close()


def test_relay_wakes_on_append_without_waiting_for_its_poll(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str,
    background: Callable[[Callable[[threading.Event], None]], None],
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic, poll_interval=30.0)
    handler = EffectsHandler()
    runner = make_runner(runtime, kafka_bootstrap, kafka_topic, handler)
    background(relay.run)
    background(runner.run)
    wait_for(lambda: relay_position(pg_url, schema)[1] > 0, 15, "the relay to start")
    time.sleep(0.3)
    started = time.monotonic()
    runtime.app.save(*new_orders(1))
    wait_for(lambda: len(handler.committed) == 1, 20, "the event to be applied")
    # NOTIFY, not the 30 s poll; the margin is for a loaded CI machine, not a latency goal.
    assert time.monotonic() - started < 10.0


def test_second_relay_waits_as_hot_standby_until_the_first_stops(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str
) -> None:
    active = make_relay(runtime, kafka_bootstrap, kafka_topic)
    standby = make_relay(runtime, kafka_bootstrap, kafka_topic)
    try:
        assert active.acquire_leadership(threading.Event())
        gave_up = threading.Event()
        threading.Timer(0.5, gave_up.set).start()
        assert not standby.acquire_leadership(gave_up, retry_every=0.1)
        active.close()  # releases the advisory lock
        assert standby.acquire_leadership(threading.Event(), retry_every=0.1)
    finally:
        active.close()
        standby.close()


def _relay_env(settings: Settings, bootstrap: str, topic: str) -> dict[str, str]:
    env = {**os.environ, **settings_env(settings)}
    env.update({
        "PYTHONPATH": str(REPO),
        "TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TRADELEDGER_KAFKA_TOPIC": topic,
        "TRADELEDGER_KAFKA_PARTITIONS": "6",
        "TRADELEDGER_DATABASE_POOL_SIZE": "2",
    })
    return env


def test_relay_killed_three_times_still_applies_every_event_exactly_once(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str, tmp_path: Path,
    background: Callable[[Callable[[threading.Event], None]], None],
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    env = _relay_env(runtime.settings, kafka_bootstrap, kafka_topic)
    handler = EffectsHandler()
    background(make_runner(runtime, kafka_bootstrap, kafka_topic, handler).run)

    def start_relay(index: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "adapters.processes.relay"], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"relay-{index}.log", "wb"))

    appended: list[int] = []
    progress = [0]
    killed_at: list[int] = []

    def append(stop: threading.Event) -> None:
        def pace(count: int) -> None:
            progress[0] = count
            time.sleep(0.05)  # ~10 s of appends: every kill lands mid-stream

        appended.append(append_events(runtime.app, orders=2500, events_per_order=4,
                                      per_save=25, between_saves=pace))

    relay = start_relay(0)
    background(append)
    rng = random.Random()
    try:
        for kill in range(3):
            before = relay_position(pg_url, schema)[0]
            wait_for(lambda b=before: relay_position(pg_url, schema)[0] > b, 30,
                     "the relay to publish")
            time.sleep(rng.uniform(0.0, 0.3))
            relay.send_signal(signal.SIGKILL)
            killed_at.append(progress[0])
            relay.wait(10)
            relay = start_relay(kill + 1)
        wait_for(lambda: bool(appended), 60, "the appends to finish")
        assert appended == [10_000]
        last = runtime.app.recorder.max_notification_id()
        wait_for(lambda: relay_position(pg_url, schema)[0] == last, 60, "the relay to catch up")
        wait_for(lambda: effects_summary(pg_url, schema)["count"] >= 10_000, 60,
                 "the consumer to apply everything")
        time.sleep(0.5)  # a duplicate would land now
    finally:
        relay.terminate()
        relay.wait(10)
    assert all(at < 10_000 for at in killed_at), killed_at  # killed while appending
    assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)


def test_broker_restarted_empty_gets_everything_republished_without_duplicate_effects(
    runtime: Runtime, pg_url: str, tmp_path: Path,
    background: Callable[[Callable[[threading.Event], None]], None],
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    topic = "restart.events"
    broker = start_embedded_broker(tmp_path / "broker-1")
    port = broker.port
    bootstrap = broker.bootstrap_servers
    try:
        relay = make_relay(runtime, bootstrap, topic, check_interval=0.5)
        handler = EffectsHandler()
        background(relay.run)
        background(make_runner(runtime, bootstrap, topic, handler).run)
        first = append_events(runtime.app, orders=500, events_per_order=2, per_save=50)
        wait_for(lambda: effects_summary(pg_url, schema)["count"] >= first, 30,
                 "the first events to be applied")

        broker.stop()
        broker = start_embedded_broker(tmp_path / "broker-2", port=port)
        wait_for(lambda: relay_position(pg_url, schema)[1] >= 2, 30,
                 "the relay to notice the empty broker")
        second = append_events(runtime.app, orders=250, events_per_order=2, per_save=50)
        wait_for(lambda: effects_summary(pg_url, schema)["count"] >= first + second, 30,
                 "the later events to be applied")
        last = runtime.app.recorder.max_notification_id()
        wait_for(lambda: relay_position(pg_url, schema)[0] == last, 30,
                 "the republish to finish")
        time.sleep(0.5)  # duplicates from the republish would land now
        assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)
        assert relay.published >= 2 * first + second  # the first events went out twice
    finally:
        broker.stop()


def _partition_of(key: str) -> int:
    return partition_for(key.encode(), 6)


def _applied_is_a_prefix_of_each_partition(pg_url: str, schema: str) -> list[str]:
    """Problems where a consumer applied an event but not an earlier one of its partition."""
    with psycopg.connect(pg_url) as conn:
        # The key is the account id: an Order event's state names it (uuid_hex), an
        # Account event is its own account.
        stored = conn.execute(
            f"SELECT notification_id, coalesce(convert_from(state, 'UTF8')::jsonb "
            f"#>> '{{account_id,_data_}}', replace(originator_id::text, '-', '')) "
            f'FROM "{schema}".tradeledger_events').fetchall()
        applied = {int(n) for (n,) in conn.execute(
            f'SELECT notification_id FROM "{schema}".effects')}
    problems = []
    by_partition: dict[int, list[int]] = {}
    for nid, account_hex in stored:
        by_partition.setdefault(_partition_of(str(uuid.UUID(account_hex))), []).append(int(nid))
    for partition, nids in sorted(by_partition.items()):
        nids.sort()
        highest = max((n for n in nids if n in applied), default=0)
        missing = [n for n in nids if n <= highest and n not in applied]
        if missing:
            problems.append(f"partition {partition}: applied {highest} but not {missing[:10]}")
    return problems


def test_stale_epoch_events_after_an_empty_broker_restart_do_not_hide_lost_ones(
    runtime: Runtime, pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The chaos suite's loss (seed 782228), step by step: a consumer is behind when the broker
    restarts empty; the relay publishes new events into the fresh log under the old epoch
    before it notices, the consumer reads them, then the relay republishes everything."""
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    topic = "stale.events"
    broker = start_embedded_broker(tmp_path / "broker-1")
    port = broker.port
    relay = make_relay(runtime, broker.bootstrap_servers, topic)
    runner: ConsumerRunner | None = None
    try:
        relay.open()
        applied = append_events(runtime.app, orders=100, events_per_order=2, per_save=25)
        assert relay.publish_pending() == applied
        runner = make_runner(runtime, broker.bootstrap_servers, topic, EffectsHandler())
        assert runner.run_until_idle(20) == applied
        runner.close()  # the projector is killed ...
        behind = append_events(runtime.app, orders=50, events_per_order=2, per_save=25)
        assert relay.publish_pending() == behind  # ... and misses these

        broker.stop()
        broker = start_embedded_broker(tmp_path / "broker-2", port=port)
        # The restarted projector creates the topic again (ConsumerRunner.open does).
        runner = make_runner(runtime, broker.bootstrap_servers, topic, EffectsHandler())
        runner.open()
        # New events, fewer than the consumer's offsets, so its log looks short.
        new = append_events(runtime.app, orders=6, events_per_order=2, per_save=6)
        for _ in range(20):  # what the relay's loop does on a Kafka error: reconnect, retry
            try:
                assert relay.publish_batch() == 0  # published, but the acks show the loss
                break
            except KafkaError:
                relay._reset_kafka_clients()
                time.sleep(0.2)
        assert relay.state.epoch == 2 and relay.state.notification_id == 0

        caplog.set_level(logging.WARNING, logger="adapters.kafka.consumer")
        runner.run_until_idle(20)  # rewinds to 0 and meets the stale epoch-1 events
        assert _applied_is_a_prefix_of_each_partition(pg_url, schema) == []
        assert "waiting for the relay to republish" in caplog.text

        assert relay.publish_pending() == applied + behind + new  # epoch 2, from the start
        runner.run_until_idle(30)
        assert _applied_is_a_prefix_of_each_partition(pg_url, schema) == []
        assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)
    finally:
        if runner is not None:
            runner.close()
        relay.close()
        broker.stop()


def _publish_keyed_by_aggregate(runtime: Runtime, bootstrap: str, topic: str,
                                monkeypatch: pytest.MonkeyPatch) -> Relay:
    """A relay of the code before partitioning by account: records keyed by aggregate id,
    its row marked as the table migration marks rows from before (key_scheme 'aggregate')."""
    monkeypatch.setattr("adapters.kafka.relay.message_key",
                        lambda envelope: envelope.aggregate_id.encode())
    relay = make_relay(runtime, bootstrap, topic)
    relay.open()
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{runtime.settings.database_schema}".relay_positions '
                     "SET key_scheme = 'aggregate' WHERE name = %s", (topic,))
    return relay


def test_consumers_move_to_the_account_keyed_topic_without_applying_anything_twice(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store already went out on the old topic (keyed by aggregate id) and a consumer
    applied an uneven part of it; the new topic gets everything from notification 1; the
    consumer applies exactly what it had not applied (docs/event-bus.md)."""
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    old = _publish_keyed_by_aggregate(runtime, kafka_bootstrap, kafka_topic, monkeypatch)
    try:
        first = append_events(runtime.app, orders=60, events_per_order=2, per_save=20)
        assert old.publish_pending() == first
        runner = make_runner(runtime, kafka_bootstrap, kafka_topic, EffectsHandler())
        try:
            assert runner.run_until_idle(20) == first
        finally:
            runner.close()
        second = append_events(runtime.app, orders=60, events_per_order=2, per_save=20)
        assert old.publish_pending() == second
        # One small fetch: some partitions get a little further, none to the end.
        runner = make_runner(runtime, kafka_bootstrap, kafka_topic, EffectsHandler(),
                             batch_size=25)
        try:
            applied_old = first + runner.poll_once(2000)[1]
            assert first < applied_old < first + second
        finally:
            runner.close()
    finally:
        old.close()
        monkeypatch.undo()
    third = append_events(runtime.app, orders=30, events_per_order=2, per_save=10)

    new_topic = f"{kafka_topic}.v2"
    relay = make_relay(runtime, kafka_bootstrap, new_topic)
    relay.open()
    try:
        assert relay.publish_pending() == first + second + third  # the whole store
    finally:
        relay.close()
    runner = make_runner(runtime, kafka_bootstrap, new_topic, EffectsHandler())
    try:
        runner.open()
        earlier = runner._earlier
        assert earlier is not None and earlier.topic == kafka_topic
        # Between the floor and the ceiling some events were applied and some not: only
        # the per-event check tells them apart.
        assert earlier.floor < earlier.ceiling
        assert runner.run_until_idle(30) == first + second + third - applied_old
    finally:
        runner.close()
    assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)


def test_the_relay_does_not_continue_a_topic_keyed_by_aggregate_id(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = _publish_keyed_by_aggregate(runtime, kafka_bootstrap, kafka_topic, monkeypatch)
    try:
        append_events(runtime.app, orders=3, events_per_order=1)
        assert old.publish_pending() == 3
    finally:
        old.close()
        monkeypatch.undo()
    relay = make_relay(runtime, kafka_bootstrap, kafka_topic)
    try:
        with pytest.raises(ConfigurationError, match=r"tradeledger\.events\.v2"):
            relay.open()
    finally:
        relay.close()
