"""OCO order lists: placed as two orders saved together, sent once as one request by the
stop-loss leg, and the no-order-twice rules holding for the list as for an order."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from commands.messages import PlaceOrderList, RegisterAccount, RequestCancel
from domain.errors import (
    ClientOrderIdReused,
    ExchangeRejected,
    InvalidPrice,
    StopWouldTrigger,
    ValidationFailed,
)
from domain.order import LIST_LEG_SUFFIXES, order_id_for
from domain.values import OrderStatus
from tests.unit.execution_world import World
from tests.unit.fakes import make_app

D = Decimal


def oco(account_id: UUID, **kw: object) -> PlaceOrderList:
    """At 50000: take profit at 52000, stop out at 48000 for 47900."""
    args: dict[str, object] = dict(
        account_id=account_id, client_order_id="exit-1", symbol="BTCUSDT", side="SELL",
        quantity="0.01", price="52000", stop_price="48000", stop_limit_price="47900")
    args.update(kw)
    return PlaceOrderList(**args)  # type: ignore[arg-type]


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    return make_app(BTCUSDT="50000")


@pytest.fixture
def account(app):  # type: ignore[no-untyped-def]
    return app.handle(RegisterAccount(email="oco@example.com", password="correct horse"))


def test_a_list_is_two_orders_named_by_its_stop_loss_leg(app, account) -> None:
    list_id, (stop_id, tp_id) = app.handle(oco(account))
    assert list_id == stop_id == order_id_for(account, "exit-1" + LIST_LEG_SUFFIXES[0])
    stop, take_profit = app.get_order(stop_id), app.get_order(tp_id)
    assert (stop.order_type, stop.price, stop.stop_price, stop.time_in_force) == (
        "STOP_LOSS_LIMIT", D("47900"), D("48000"), "GTC")
    assert (take_profit.order_type, take_profit.price, take_profit.stop_price,
            take_profit.time_in_force) == ("LIMIT_MAKER", D("52000"), None, None)
    for leg in (stop, take_profit):
        assert (leg.order_list_id, leg.list_client_order_id) == (list_id, "exit-1")
        assert leg.list_leg_ids == (stop_id, tp_id)
        assert leg.status is OrderStatus.PENDING
    assert stop.sends_its_list and not stop.sent_with_its_list
    assert take_profit.sent_with_its_list and not take_profit.sends_its_list


def test_the_same_client_order_id_is_the_same_list_and_another_list_is_a_conflict(
        app, account) -> None:
    first = app.handle(oco(account))
    assert app.handle(oco(account)) == first
    with pytest.raises(ClientOrderIdReused):
        app.handle(oco(account, price="53000"))


@pytest.mark.parametrize("kw,error,words", [
    (dict(price="49000"), InvalidPrice, "must be above the current price 50000"),
    (dict(side="BUY"), StopWouldTrigger, "must be above the current price 50000"),
    (dict(stop_price="50500", stop_limit_price="50400"), StopWouldTrigger, "below"),
    (dict(list_type="OTO"), ValidationFailed, "must be OCO"),
    (dict(client_order_id="x" * 34), ValidationFailed, "1 to 33 characters"),
    (dict(stop_limit_price="47900.001"), InvalidPrice, "decimals"),
    (dict(stop_limit_time_in_force="DAY"), ValidationFailed, "GTC, IOC, FOK"),
])
def test_bad_lists_are_refused_before_any_event(app, account, kw, error, words) -> None:
    with pytest.raises(error) as info:
        app.handle(oco(account, **kw))
    assert words in info.value.message
    assert list(app.events.get(order_id_for(account, "exit-1-sl"))) == []


def test_without_a_live_price_the_take_profit_must_still_be_beyond_the_stop() -> None:
    app = make_app()  # no price seen yet
    account = app.handle(RegisterAccount(email="o@example.com", password="correct horse"))
    with pytest.raises(InvalidPrice, match="above the stopPrice 48000"):
        app.handle(oco(account, price="47000"))


# ---- the execution manager -------------------------------------------------------------

def place(world: World, **kw: object) -> tuple[UUID, UUID]:
    _, (stop_id, tp_id) = world.app.handle(oco(world.account_id, **kw))
    return stop_id, tp_id


def test_the_list_is_sent_once_by_its_stop_loss_leg_with_both_legs(world: World) -> None:
    stop_id, tp_id = place(world)
    assert world.manager.drive(tp_id).note == "waits: sent with its order list"
    assert world.exchange.calls == []  # the take-profit leg never sends
    world.manager.drive(stop_id)
    assert world.exchange.list_submits == 1 and world.exchange.executed_submits == 2
    [stop_sent, tp_sent] = [o.request for o in world.exchange.orders.values()]
    assert (stop_sent.order_type, stop_sent.stop_price, tp_sent.order_type) == (
        "STOP_LOSS_LIMIT", D("48000"), "LIMIT_MAKER")
    for leg in (stop_id, tp_id):
        assert world.status(leg) is OrderStatus.NEW
        assert world.event_types(leg)[:3] == ["OrderPlaced", "OrderSubmitted", "OrderAccepted"]
    world.manager.drive(tp_id)
    world.manager.reconcile(stop_id)
    assert world.exchange.list_submits == 1


def test_a_refused_list_rejects_both_legs(world: World) -> None:
    stop_id, tp_id = place(world)
    world.exchange.reject_next = ExchangeRejected(
        -2010, "The relationship of the prices for the orders is not correct.")
    world.manager.drive(stop_id)
    for leg in (stop_id, tp_id):
        order = world.app.get_order(leg)
        assert (order.status, order.reject_code) == (OrderStatus.REJECTED, "-2010")


def test_a_list_send_whose_answer_is_lost_is_proven_per_leg_and_never_resent(
        world: World) -> None:
    stop_id, tp_id = place(world)
    world.exchange.lose_next_reply = True
    world.settle(world.manager.drive(stop_id))
    assert world.status(stop_id) is OrderStatus.NEW
    assert world.app.get_order(tp_id).outcome_unknown  # shown as "checking" until proven
    world.settle(world.manager.drive(tp_id))  # the sweeper drives the other leg
    assert world.status(tp_id) is OrderStatus.NEW
    assert world.exchange.list_submits == 1 and world.exchange.executed_submits == 2


def test_a_list_executed_late_after_a_1007_is_found_never_resent(world: World) -> None:
    stop_id, tp_id = place(world)
    world.exchange.late_by = 8.0
    result = world.manager.drive(stop_id)
    world.exchange.late_by = None
    world.settle(result)
    world.settle(world.manager.drive(tp_id))
    assert world.status(stop_id) is world.status(tp_id) is OrderStatus.NEW
    assert world.exchange.list_submits == 0  # only the late execution: never a second send
    assert world.exchange.executed_submits == 2


@pytest.mark.parametrize("canceled", ["stop-loss leg", "take-profit leg"])
def test_a_leg_canceled_before_the_list_was_sent_cancels_the_other_unsent(
        world: World, canceled: str) -> None:
    stop_id, tp_id = place(world)
    first = stop_id if canceled == "stop-loss leg" else tp_id
    world.app.handle(RequestCancel(world.account_id, first))
    world.manager.drive(first)
    assert world.status(first) is OrderStatus.CANCELED
    for leg in (tp_id, stop_id):
        world.manager.drive(leg)
        assert world.status(leg) is OrderStatus.CANCELED
    assert world.exchange.calls == []  # nothing of the list ever went out
