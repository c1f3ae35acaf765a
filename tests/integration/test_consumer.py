"""The consumer framework against real Postgres and a real Kafka-protocol broker."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer

from adapters.kafka.consumer import ConsumerRunner
from adapters.kafka.dead_letters import list_dead_letters, request_retry
from adapters.kafka.relay import Relay
from adapters.platform.bootstrap import Runtime
from domain.envelope import EventEnvelope
from tests.support.kafka import (
    EffectsHandler,
    append_events,
    create_effects_table,
    effects_summary,
    store_summary,
)

pytestmark = pytest.mark.integration


def publish_all(runtime: Runtime, bootstrap: str, topic: str) -> int:
    relay = Relay(app=runtime.app, database_url=runtime.database_url,
                  bootstrap_servers=bootstrap, topic=topic, partitions=6)
    relay.open()
    try:
        return relay.publish_pending()
    finally:
        relay.close()


def runner_for(runtime: Runtime, bootstrap: str, topic: str, handler: Any,
               **kwargs: Any) -> ConsumerRunner:
    return ConsumerRunner(database_url=runtime.database_url,
                          schema=runtime.settings.database_schema,
                          bootstrap_servers=bootstrap, topic=topic, handler=handler, **kwargs)


def test_two_instances_split_the_partitions_without_overlap(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    appended = append_events(runtime.app, orders=200, events_per_order=2, per_save=50)
    assert publish_all(runtime, kafka_bootstrap, kafka_topic) == appended
    runners = [runner_for(runtime, kafka_bootstrap, kafka_topic,
                          EffectsHandler(instance=i), instance=i, instances=2)
               for i in range(2)]
    try:
        counts = [runner.run_until_idle(20) for runner in runners]
        assert [r.partitions for r in runners] == [[0, 2, 4], [1, 3, 5]]
    finally:
        for runner in runners:
            runner.close()
    assert sum(counts) == appended and all(counts)
    assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)
    with psycopg.connect(pg_url) as conn:
        shared = conn.execute(
            f'SELECT aggregate_id FROM "{schema}".effects GROUP BY aggregate_id '
            f'HAVING count(DISTINCT instance) > 1').fetchall()
        positions = conn.execute(
            f'SELECT partition FROM "{schema}".consumer_positions ORDER BY partition'
        ).fetchall()
    assert shared == []  # an aggregate lives in one partition, so with one instance
    assert [p for (p,) in positions] == [0, 1, 2, 3, 4, 5]


def test_restarted_consumer_resumes_and_skips_what_it_applied(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    first = append_events(runtime.app, orders=50, events_per_order=2)
    publish_all(runtime, kafka_bootstrap, kafka_topic)
    runner = runner_for(runtime, kafka_bootstrap, kafka_topic, EffectsHandler())
    assert runner.run_until_idle(20) == first
    runner.close()

    second = append_events(runtime.app, orders=30, events_per_order=2)
    # A relay that lost its position republishes everything: harmless.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".relay_positions SET notification_id = 0')
    assert publish_all(runtime, kafka_bootstrap, kafka_topic) == first + second
    runner = runner_for(runtime, kafka_bootstrap, kafka_topic, EffectsHandler())
    try:
        assert runner.run_until_idle(20) == second
    finally:
        runner.close()
    assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)


def test_poison_event_goes_to_dead_letters_and_the_rest_flows_on(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    appended = append_events(runtime.app, orders=40, events_per_order=2, per_save=10)
    publish_all(runtime, kafka_bootstrap, kafka_topic)
    poison_id = runtime.app.recorder.select_notifications(start=7, limit=1)[0]
    poison = f"{poison_id.originator_id}:{poison_id.originator_version}"
    handler = EffectsHandler(poison={poison})
    runner = runner_for(runtime, kafka_bootstrap, kafka_topic, handler, max_attempts=3)
    from prometheus_client import REGISTRY

    def metric(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    applied_before = metric("tradeledger_consumer_applied_total", consumer="effects")
    dead_before = metric("tradeledger_dead_letters_total", consumer="effects")
    try:
        assert runner.run_until_idle(20) == appended - 1
        assert metric("tradeledger_consumer_applied_total",
                      consumer="effects") - applied_before == appended - 1
        assert metric("tradeledger_dead_letters_total", consumer="effects") - dead_before == 1
        assert metric("tradeledger_consumer_lag_events", consumer="effects", partition="0") == 0
        with psycopg.connect(pg_url, autocommit=True) as conn:
            letters = list_dead_letters(conn, schema)
            assert len(letters) == 1
            letter = letters[0]
            assert (letter.consumer, letter.attempts, letter.notification_id) == (
                "effects", 3, poison_id.id)
            assert "poison event" in letter.error and poison in letter.envelope

            # The bug is fixed; the operator retries (tradeledger dead-letters retry).
            handler.poison.clear()
            assert request_retry(conn, schema, consumer="effects") == 1
            assert runner.process_retries() == 1
            assert list_dead_letters(conn, schema) == []
            assert len(list_dead_letters(conn, schema, include_resolved=True)) == 1
    finally:
        runner.close()
    assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)


def test_instance_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError):
        ConsumerRunner(database_url="postgresql://unused", schema="x", bootstrap_servers="x",
                       topic="t", handler=EffectsHandler(), instance=2, instances=2)


def _envelope(nid: int, event_type: str = "OrderSubmitted") -> bytes:
    aggregate = str(uuid.uuid4())
    return EventEnvelope(notification_id=nid, event_id=f"{aggregate}:1", aggregate_type="Order",
                         aggregate_id=aggregate, version=1, event_type=event_type,
                         timestamp="2026-11-24T07:31:23+00:00", account_id=aggregate).to_json()


def _send_chain(bootstrap: str, topic: str,
                records: list[tuple[bytes, int, int | None, str | None]]) -> None:
    """Publish hand-made records to partition 0: (value, notification id, prev, event type)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value, nid, prev, event_type in records:
        headers = [("relay-epoch", b"1"), ("notification-id", str(nid).encode())]
        if prev is not None:
            headers.append(("prev-notification-id", str(prev).encode()))
        if event_type is not None:
            headers.append(("event-type", event_type.encode()))
        producer.send(topic, value=value, partition=0, headers=headers)
    producer.flush()
    producer.close()


def _outcome(pg_url: str, schema: str) -> tuple[list[tuple[int, str]], Any, list[Any]]:
    """What the effects handler applied (notification id, type), partition 0's stored
    (kafka_offset, notification_id), and the dead letters."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        applied = [(n, t) for n, t in conn.execute(
            f'SELECT notification_id, event_type FROM "{schema}".effects ORDER BY seq')]
        position = conn.execute(
            f'SELECT kafka_offset, notification_id FROM "{schema}".consumer_positions '
            "WHERE partition = 0").fetchone()
        letters = list_dead_letters(conn, schema)
    return applied, position, letters


def test_the_chain_waits_over_a_gap_and_keeps_going_over_an_unreadable_record(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    _send_chain(kafka_bootstrap, kafka_topic, [
        (_envelope(5), 5, 0, None),  # first of the partition: applied
        (_envelope(9), 9, 7, None),  # follows 7, which we have not seen: a gap, not applied
        (b"{not json", 7, 5, None),  # follows 5, unreadable: dead-lettered, the chain moves to 7
        (_envelope(9), 9, 7, None),  # republished: now it follows 7
        (_envelope(9), 9, 7, None),  # a duplicate
        (_envelope(12), 12, None, None),  # an older relay's record without the chain: old rule
    ])

    caplog.set_level(logging.WARNING, logger="adapters.kafka.consumer")
    runner = runner_for(runtime, kafka_bootstrap, kafka_topic, EffectsHandler())
    try:
        assert runner.run_until_idle(20) == 3
    finally:
        runner.close()
    applied, position, letters = _outcome(pg_url, schema)
    assert [nid for nid, _ in applied] == [5, 9, 12]
    assert position == (6, 12)
    assert [(d.notification_id, d.kafka_offset) for d in letters] == [(7, 2)]
    assert caplog.text.count("waiting for the relay to republish") == 1


def test_a_handler_gets_only_the_event_types_it_wants_and_the_chain_still_holds(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    _send_chain(kafka_bootstrap, kafka_topic, [
        (_envelope(5, "OrderPlaced"), 5, 0, "OrderPlaced"),  # wanted: applied
        (_envelope(6), 6, 5, "OrderSubmitted"),  # not wanted: passed over, the chain is at 6
        (_envelope(9), 9, 8, "OrderSubmitted"),  # not wanted, but after a gap: not passed
        (_envelope(10, "OrderPlaced"), 10, 9, "OrderPlaced"),  # so this one waits too
        (b"{not json", 8, 6, "OrderSubmitted"),  # not wanted: never decoded, so no dead letter
        (_envelope(9), 9, 8, "OrderSubmitted"),  # republished: the chain goes on
        (_envelope(10, "OrderPlaced"), 10, 9, "OrderPlaced"),  # applied now
    ])
    handler = EffectsHandler()
    handler.event_types = frozenset({"OrderPlaced"})  # type: ignore[attr-defined]
    caplog.set_level(logging.WARNING, logger="adapters.kafka.consumer")
    runner = runner_for(runtime, kafka_bootstrap, kafka_topic, handler)
    try:
        assert runner.run_until_idle(20) == 2
    finally:
        runner.close()  # also stores the positions that batches applying nothing left
    applied, position, letters = _outcome(pg_url, schema)
    assert applied == [(5, "OrderPlaced"), (10, "OrderPlaced")]
    assert position == (7, 10)
    assert letters == []
    assert caplog.text.count("waiting for the relay to republish") == 1


def test_an_idle_consumer_sleeps_until_the_relay_announces_a_publish(
    runtime: Runtime, kafka_bootstrap: str, kafka_topic: str, pg_url: str
) -> None:
    import threading
    import time

    schema = runtime.settings.database_schema
    create_effects_table(pg_url, schema)
    runner = runner_for(runtime, kafka_bootstrap, kafka_topic, EffectsHandler())
    stop = threading.Event()
    try:
        runner.open()
        # Nothing published: it sleeps the whole interval and says it was not woken.
        started = time.monotonic()
        assert runner.wait_for_publish(stop, timeout=0.5) is False
        assert time.monotonic() - started >= 0.45
        # Another topic's announcement does not wake it.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, 'some-other-topic')", (f"{schema}_published",))
        assert runner.wait_for_publish(stop, timeout=0.3) is False
        # A publish made while it was busy (before it waits) wakes it at once, and the
        # records are there to fetch.
        appended = append_events(runtime.app, orders=5, events_per_order=2)
        assert publish_all(runtime, kafka_bootstrap, kafka_topic) == appended
        started = time.monotonic()
        assert runner.wait_for_publish(stop, timeout=5.0) is True
        assert time.monotonic() - started < 1.0
        assert runner.run_until_idle(20) == appended
    finally:
        runner.close()
    assert effects_summary(pg_url, schema) == store_summary(pg_url, schema)
