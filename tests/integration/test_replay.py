"""Replay rebuilds the read models from the event store: equal to live, twice the same."""

from __future__ import annotations

import dataclasses
import io
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from adapters.platform.bootstrap import Runtime
from adapters.postgres.replay import replay, resolve_projections
from commands.messages import (
    PlaceOrder,
    PlaceOrderList,
    RecordAcceptance,
    RecordExecutedQuantity,
    RecordExpiry,
    RecordFill,
    RecordStopTrigger,
    RegisterAccount,
)
from domain.envelope import EventEnvelope
from tests.integration.test_projections import dump, envelopes, make_activity, project

pytestmark = pytest.mark.integration


def spend_amount_order(app: Any, email: str = "spender@example.com") -> None:
    """A filled quoteOrderQty order: OrderPlaced with a quote, then OrderQuantityFixed."""
    account = app.handle(RegisterAccount(email=email, password="spend-password-1"))
    order_id = app.handle(PlaceOrder(
        account_id=account, client_order_id="spend-1", symbol="BTCUSDT", side="BUY",
        order_type="MARKET", quantity=None, quote_order_qty="100.5"))
    app.handle(RecordFill(order_id=order_id, trade_id="sp-1", price=Decimal("90000"),
                          quantity=Decimal("0.0005"), commission=Decimal("0.0000005"),
                          commission_asset="BTC"))
    app.handle(RecordExecutedQuantity(order_id=order_id, quantity=Decimal("0.0011")))
    app.handle(RecordFill(order_id=order_id, trade_id="sp-2", price=Decimal("90010"),
                          quantity=Decimal("0.0006"), commission=Decimal("0.0000006"),
                          commission_asset="BTC"))


def stop_and_oco_orders(app: Any, email: str = "stopper@example.com") -> None:
    """A stop-loss that triggered and filled, and an OCO whose take profit filled and whose
    stop leg expired: OrderPlaced with stop_price / order_list_id, OrderStopTriggered."""
    account = app.handle(RegisterAccount(email=email, password="stop-password-1"))
    stop = app.handle(PlaceOrder(
        account_id=account, client_order_id="stop-1", symbol="BTCUSDT", side="SELL",
        order_type="STOP_LOSS_LIMIT", quantity="0.001", price="80000", stop_price="80100"))
    app.handle(RecordAcceptance(order_id=stop, exchange_order_id="S-1"))
    app.handle(RecordStopTrigger(order_id=stop))
    app.handle(RecordFill(order_id=stop, trade_id="st-1", price=Decimal("80050"),
                          quantity=Decimal("0.001"), commission=Decimal("0.08"),
                          commission_asset="USDT"))
    _, (stop_leg, take_profit) = app.handle(PlaceOrderList(
        account_id=account, client_order_id="exit-1", symbol="BTCUSDT", side="SELL",
        quantity="0.001", price="99000", stop_price="80100", stop_limit_price="80000"))
    for leg, exchange_id in ((stop_leg, "S-2"), (take_profit, "S-3")):
        app.handle(RecordAcceptance(order_id=leg, exchange_order_id=exchange_id))
    app.handle(RecordFill(order_id=take_profit, trade_id="tp-1", price=Decimal("99000"),
                          quantity=Decimal("0.001"), commission=Decimal("0.099"),
                          commission_asset="USDT"))
    app.handle(RecordExpiry(order_id=stop_leg, reason="its OCO's other leg executed"))


def test_replay_equals_live_and_replaying_twice_gives_identical_tables(
        runtime: Runtime) -> None:
    make_activity(runtime.app)
    spend_amount_order(runtime.app)
    stop_and_oco_orders(runtime.app)
    make_activity(runtime.app, email="other@example.com", orders=1)
    schema, url = runtime.settings.database_schema, runtime.database_url
    project(runtime, envelopes(runtime.app))
    live = dump(url, schema)
    assert "100.5" in str(live) and "FILLED" in str(live)
    assert "80100" in str(live) and "LIMIT_MAKER" in str(live)  # stop and OCO rows

    check = replay(runtime.app, url, schema, resolve_projections("all"), verify=True)
    assert check.differences == []
    assert check.events == len(envelopes(runtime.app))

    bar = io.StringIO()
    first = replay(runtime.app, url, schema, resolve_projections("all"), progress=bar,
                   page_size=7)
    assert first.refused == "" and first.events == check.events
    assert "\r" in bar.getvalue() and "ev/s" in bar.getvalue()
    assert dump(url, schema) == live
    replay(runtime.app, url, schema, resolve_projections("all"))
    assert dump(url, schema) == live
    with psycopg.connect(url) as conn:  # the swap left no spare tables behind
        names = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))}
    assert not any("__" in n for n in names | indexes)
    assert "orders_view_pkey" in indexes and "orders_view_acct_created" in indexes


def test_the_projector_carries_on_after_a_replay(runtime: Runtime) -> None:
    make_activity(runtime.app, orders=1)
    schema, url = runtime.settings.database_schema, runtime.database_url
    items = envelopes(runtime.app)
    project(runtime, items[:5])  # the projector is behind when the replay runs
    replay(runtime.app, url, schema, resolve_projections("all"))
    make_activity(runtime.app, email="late@example.com", orders=1)
    project(runtime, envelopes(runtime.app))  # redelivers what replay already applied
    assert replay(runtime.app, url, schema, resolve_projections("all"),
                  verify=True).differences == []


def test_verify_reports_every_row_that_differs(runtime: Runtime) -> None:
    make_activity(runtime.app, orders=1)
    schema, url = runtime.settings.database_schema, runtime.database_url
    project(runtime, envelopes(runtime.app))
    with psycopg.connect(url) as conn:
        conn.execute(f'UPDATE "{schema}".positions_view SET quantity = quantity + 1')
        conn.execute(f'DELETE FROM "{schema}".trades_view WHERE trade_id = %s', ("ts0",))
    result = replay(runtime.app, url, schema, resolve_projections("all"), verify=True)
    tables = sorted(d["table"] for d in result.differences)
    assert tables == ["positions_view", "trades_view"]
    missing = next(d for d in result.differences if d["table"] == "trades_view")
    assert missing["live"] is None and missing["rebuilt"]["trade_id"] == "ts0"
    # Verify changed nothing; a replay of one projection repairs just that one.
    replay(runtime.app, url, schema, resolve_projections("trades"))
    left = replay(runtime.app, url, schema, resolve_projections("all"), verify=True)
    assert [d["table"] for d in left.differences] == ["positions_view"]


def test_the_fast_decoder_gives_the_same_envelopes_as_the_mapper(runtime: Runtime) -> None:
    from adapters.postgres.envelopes import fast_envelope

    make_activity(runtime.app)
    spend_amount_order(runtime.app)
    stop_and_oco_orders(runtime.app)
    # A commission small enough that str(Decimal) would use an exponent ("2.0E-7").
    account = runtime.app.handle(
        RegisterAccount(email="tiny@example.com", password="tiny-password-1"))
    order_id = runtime.app.handle(PlaceOrder(
        account_id=account, client_order_id="tiny", symbol="BTCUSDT", side="BUY",
        order_type="LIMIT", quantity="0.0002", price="90000"))
    runtime.app.handle(RecordFill(order_id=order_id, trade_id="tiny-1", price=Decimal("90000"),
                                  quantity=Decimal("0.0002"), commission=Decimal("2.0E-7"),
                                  commission_asset="BTC"))
    notifications = runtime.app.recorder.select_notifications(1, 10**6)
    for n in notifications:
        slow = EventEnvelope.from_domain_event(runtime.app.mapper.to_domain_event(n), n.id)
        assert fast_envelope(n) == slow


def project_through_kafka(runtime: Runtime, bootstrap: str, topic: str, handler: Any,
                          batch_size: int) -> tuple[int, int]:
    """Relay the whole store to `topic`, run `handler` over it; return (published, applied)."""
    from adapters.kafka.consumer import ConsumerRunner
    from adapters.kafka.relay import Relay

    relay = Relay(app=runtime.app, database_url=runtime.database_url,
                  bootstrap_servers=bootstrap, topic=topic, partitions=6)
    relay.open()
    try:
        published = relay.publish_pending()
    finally:
        relay.close()
    runner = ConsumerRunner(database_url=runtime.database_url,
                            schema=runtime.settings.database_schema, bootstrap_servers=bootstrap,
                            topic=topic, handler=handler, batch_size=batch_size)
    try:
        return published, runner.run_until_idle(20)
    finally:
        runner.close()


def test_projector_through_kafka_matches_a_replay_of_the_store(
        runtime: Runtime, kafka_bootstrap: str, kafka_topic: str) -> None:
    from adapters.postgres.projector import Projector

    make_activity(runtime.app, orders=2)
    make_activity(runtime.app, email="second@example.com", orders=1)
    schema = runtime.settings.database_schema
    published, applied = project_through_kafka(runtime, kafka_bootstrap, kafka_topic,
                                               Projector(schema), batch_size=7)
    assert applied == published
    # Kafka interleaves the partitions; the views still equal a fold in store order.
    check = replay(runtime.app, runtime.database_url, schema, resolve_projections("all"),
                   verify=True)
    assert check.differences == []


def test_projector_batch_failing_in_the_database_dead_letters_only_the_bad_event(
        runtime: Runtime, kafka_bootstrap: str, kafka_topic: str) -> None:
    """A whole batch runs in one pipeline, so a SQL error surfaces only at a later sync; the
    careful redo must still isolate the one event and let every other one through."""
    from adapters.postgres.projector import Projector

    class Poisoned(Projector):
        def stage(self, conn: Any, envelope: EventEnvelope) -> None:
            if envelope.notification_id == 7:  # account_id columns are uuid: inserts fail
                envelope = dataclasses.replace(envelope, account_id="not-a-uuid")
            super().stage(conn, envelope)

    make_activity(runtime.app, orders=2)
    schema = runtime.settings.database_schema
    published, applied = project_through_kafka(runtime, kafka_bootstrap, kafka_topic,
                                               Poisoned(schema), batch_size=50)
    assert applied == published - 1
    with psycopg.connect(runtime.database_url) as conn:
        letters = conn.execute(f'SELECT notification_id FROM "{schema}".dead_letters '
                               "WHERE consumer = 'projector'").fetchall()
        logged = conn.execute(f'SELECT count(*) FROM "{schema}".event_log_view').fetchone()
    assert letters == [(7,)]
    assert logged == (published - 1,)


def test_replay_takes_the_slow_decoder_for_state_it_cannot_read_fast(runtime: Runtime) -> None:
    """Replay reads originator ids as text; the domain-event path gives the same envelope."""
    from adapters.postgres.envelopes import to_envelope
    from adapters.postgres.replay import StoredNotification

    make_activity(runtime.app, orders=1)
    n = runtime.app.recorder.select_notifications(1, 1)[0]
    as_replay_reads_it = StoredNotification(n.id, str(n.originator_id), n.originator_version,
                                            n.topic, bytes(n.state))
    slow = EventEnvelope.from_domain_event(runtime.app.mapper.to_domain_event(n), n.id)

    class SlowMapper:  # with a compressor, to_envelope never takes the fast decoder
        cipher = None
        compressor = "configured"
        to_domain_event = staticmethod(runtime.app.mapper.to_domain_event)

    class App:
        mapper = SlowMapper()

    assert to_envelope(App(), as_replay_reads_it) == slow
