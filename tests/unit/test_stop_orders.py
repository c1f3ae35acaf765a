"""Stop-limit and take-profit orders: the trigger in the transition table, Binance's trigger
rule, placement checks, and the execution manager recording a trigger once."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from commands.messages import PlaceOrder, RegisterAccount
from domain.errors import IllegalTransition, InvalidPrice, StopWouldTrigger, ValidationFailed
from domain.order import TRANSITIONS, Order, Trigger
from domain.values import OrderStatus, OrderType, Side, stop_triggers
from tests.unit.execution_world import World
from tests.unit.fakes import make_app
from tests.unit.test_order_lifecycle import drive_to

D = Decimal


def stop_order(order_type: str = "STOP_LOSS_LIMIT", side: str = "SELL") -> Order:
    return Order(
        account_id=uuid4(), client_order_id="s-1", symbol="BTCUSDT", side=side,
        order_type=order_type, quantity=D("1"), price=D("95"), time_in_force="GTC",
        actor="user:test", stop_price=D("96"),
    )


@pytest.mark.parametrize("status", list(OrderStatus), ids=str)
def test_a_stop_trigger_in_every_status_follows_the_transition_table(
        status: OrderStatus) -> None:
    order = stop_order()
    drive_to(order, status)
    order.collect_events()
    expected = TRANSITIONS.get((status, Trigger.STOP_TRIGGER))
    if status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
        # A fill proves the trigger: a later trigger report repeats a known fact.
        assert order.triggered
        order.trigger("w")
        assert order.collect_events() == []
        return
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            order.trigger("w")
        assert status.value in str(info.value)
        assert order.collect_events() == []
        assert not order.triggered
        return
    order.trigger("w")
    assert order.status is expected
    assert order.triggered
    assert [type(e).__name__ for e in order.collect_events()] == ["OrderStopTriggered"]


def test_only_new_and_cancel_requested_orders_trigger_in_the_table() -> None:
    assert {s for (s, t) in TRANSITIONS if t is Trigger.STOP_TRIGGER} == {
        OrderStatus.NEW, OrderStatus.CANCEL_REQUESTED}
    # A trigger never changes the status: Binance reports a triggered stop order NEW.
    assert all(TRANSITIONS[(s, Trigger.STOP_TRIGGER)] is s
               for s in (OrderStatus.NEW, OrderStatus.CANCEL_REQUESTED))


def test_a_repeated_trigger_report_is_a_no_op() -> None:
    order = stop_order()
    drive_to(order, OrderStatus.NEW)
    order.trigger("w")
    order.collect_events()
    order.trigger("w")
    assert order.collect_events() == []


def test_a_limit_order_cannot_trigger() -> None:
    order = Order(account_id=uuid4(), client_order_id="l", symbol="BTCUSDT", side="BUY",
                  order_type="LIMIT", quantity=D("1"), price=D("100"), time_in_force="GTC",
                  actor="u")
    drive_to(order, OrderStatus.NEW)
    with pytest.raises(IllegalTransition, match="only stop orders trigger"):
        order.trigger("w")
    assert order.working


def test_a_fill_of_an_untriggered_stop_order_marks_it_triggered_and_replays_so() -> None:
    order = stop_order()
    drive_to(order, OrderStatus.NEW)
    assert not order.working
    order.fill("t1", D("95"), D("1"), D("0"), "USDT", "w")
    assert order.triggered and order.working and order.status is OrderStatus.FILLED
    replayed = None
    for event in order.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.__dict__ == order.__dict__


@pytest.mark.parametrize("order_type,side,stop,last,fires", [
    # A stop-loss SELL fires as the price falls to the stop; a BUY as it rises to it.
    (OrderType.STOP_LOSS_LIMIT, Side.SELL, "100", "100", True),
    (OrderType.STOP_LOSS_LIMIT, Side.SELL, "100", "100.01", False),
    (OrderType.STOP_LOSS_LIMIT, Side.BUY, "100", "100", True),
    (OrderType.STOP_LOSS_LIMIT, Side.BUY, "100", "99.99", False),
    # A take-profit the other way round.
    (OrderType.TAKE_PROFIT_LIMIT, Side.SELL, "100", "100.01", True),
    (OrderType.TAKE_PROFIT_LIMIT, Side.SELL, "100", "99.99", False),
    (OrderType.TAKE_PROFIT_LIMIT, Side.BUY, "100", "99.99", True),
    (OrderType.TAKE_PROFIT_LIMIT, Side.BUY, "100", "100.01", False),
])
def test_stop_trigger_rule_follows_binance(order_type: OrderType, side: Side, stop: str,
                                           last: str, fires: bool) -> None:
    assert stop_triggers(order_type, side, D(stop), D(last)) is fires


# ---- placing ---------------------------------------------------------------------------

@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    return make_app(BTCUSDT="96500")


@pytest.fixture
def account(app):  # type: ignore[no-untyped-def]
    return app.handle(RegisterAccount(email="stop@example.com", password="correct horse"))


def stop(account_id: UUID, **kw: object) -> PlaceOrder:
    args: dict[str, object] = dict(
        account_id=account_id, client_order_id="s-1", symbol="BTCUSDT", side="SELL",
        order_type="STOP_LOSS_LIMIT", quantity="0.01", price="95000", stop_price="95500")
    args.update(kw)
    return PlaceOrder(**args)  # type: ignore[arg-type]


def test_a_stop_loss_below_the_market_is_placed_with_its_stop_and_gtc(app, account) -> None:
    order = app.get_order(app.handle(stop(account)))
    assert (order.order_type, order.stop_price, order.time_in_force) == (
        "STOP_LOSS_LIMIT", D("95500"), "GTC")
    assert order.status is OrderStatus.PENDING and not order.working


@pytest.mark.parametrize("kw,fires_at", [
    (dict(side="SELL", stop_price="97000"), "below"),
    (dict(side="BUY", stop_price="96000", price="96100"), "above"),
    (dict(order_type="TAKE_PROFIT_LIMIT", side="SELL", stop_price="96000"), "above"),
    (dict(order_type="TAKE_PROFIT_LIMIT", side="BUY", stop_price="97000",
          price="97000"), "below"),
])
def test_a_stop_already_reached_is_refused_naming_the_side(app, account, kw, fires_at) -> None:
    with pytest.raises(StopWouldTrigger) as info:
        app.handle(stop(account, **kw))
    assert info.value.details["field"] == "stopPrice"
    assert f"must be {fires_at} the current price 96500" in info.value.message
    assert "would trigger immediately" in info.value.message


@pytest.mark.parametrize("kw,field,text", [
    (dict(stop_price=None), "stopPrice", "stopPrice is required for STOP_LOSS_LIMIT"),
    (dict(order_type="LIMIT", side="BUY"), "stopPrice", "applies to STOP_LOSS_LIMIT"),
    (dict(stop_price="95500.001"), "stopPrice", "more decimals"),
    (dict(stop_price="0"), "stopPrice", "greater than zero"),
    (dict(price=None), "price", "price is required for STOP_LOSS_LIMIT"),
    (dict(stop_price="abc"), "stopPrice", "decimal number"),
])
def test_bad_stop_orders_are_refused_with_the_field(app, account, kw, field, text) -> None:
    with pytest.raises(ValidationFailed) as info:
        app.handle(stop(account, **kw))
    assert info.value.details["field"] == field
    assert text in info.value.message


def test_a_stop_order_may_carry_a_price_far_from_the_market(app, account) -> None:
    # PERCENT_PRICE_BY_SIDE applies when it triggers, not when it is placed.
    order_id = app.handle(stop(account, price="60000", stop_price="61000"))
    assert app.get_order(order_id).price == D("60000")
    with pytest.raises(InvalidPrice):
        app.handle(stop(account, client_order_id="s-2", price="95000.001"))


def test_same_client_order_id_with_another_stop_is_a_conflict(app, account) -> None:
    app.handle(stop(account))
    with pytest.raises(Exception, match="different order"):
        app.handle(stop(account, stop_price="95400"))


# ---- the execution manager -------------------------------------------------------------

def test_a_working_report_records_the_trigger_once(world: World) -> None:
    order_id = world.app.handle(PlaceOrder(
        account_id=world.account_id, client_order_id="s1", symbol="BTCUSDT", side="SELL",
        order_type="STOP_LOSS_LIMIT", quantity="0.01", price="49000", stop_price="49500"))
    world.manager.drive(order_id)
    sent = world.exchange.orders[next(iter(world.exchange.orders))]
    assert sent.request.stop_price == D("49500") and sent.request.order_type == "STOP_LOSS_LIMIT"
    assert world.status(order_id) is OrderStatus.NEW
    assert not world.app.get_order(order_id).triggered
    working = replace(sent.report, working=True)
    world.manager.apply_report(order_id, working)
    world.manager.apply_report(order_id, working)  # the stream repeats itself
    assert world.event_types(order_id).count("OrderStopTriggered") == 1
    order = world.app.get_order(order_id)
    assert order.triggered and order.status is OrderStatus.NEW


def test_an_execution_report_tells_whether_a_stop_order_works() -> None:
    from adapters.binance.user_stream import report_from_execution

    event = {"e": "executionReport", "s": "SOLUSDT", "c": "tlx", "C": "", "x": "NEW",
             "X": "NEW", "i": 7, "z": "0", "Z": "0", "o": "STOP_LOSS_LIMIT", "P": "140",
             "w": False}
    assert report_from_execution(event).working is False
    assert report_from_execution({**event, "w": True}).working is True
