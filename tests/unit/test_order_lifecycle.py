"""The Order aggregate: given events, when a command, then events (or a named error)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import IllegalTransition, Overfill
from domain.order import TRANSITIONS, Order, Trigger, order_id_for
from domain.values import TERMINAL_STATUSES, OrderStatus

D = Decimal


def new_order(quantity: str = "1") -> Order:
    return Order(
        account_id=uuid4(), client_order_id="c-1", symbol="BTCUSDT", side="BUY",
        order_type="LIMIT", quantity=D(quantity), price=D("100"), time_in_force="GTC",
        actor="user:test",
    )


def drive_to(order: Order, status: OrderStatus) -> None:
    """Bring a fresh order into `status` through legal commands."""
    steps = {
        OrderStatus.PENDING: [],
        OrderStatus.SUBMITTED: ["submit"],
        OrderStatus.NEW: ["submit", "accept"],
        OrderStatus.PARTIALLY_FILLED: ["submit", "accept", "half"],
        OrderStatus.FILLED: ["submit", "accept", "all"],
        OrderStatus.CANCEL_REQUESTED: ["submit", "accept", "cancel_req"],
        OrderStatus.CANCELED: ["submit", "accept", "cancel"],
        OrderStatus.REJECTED: ["submit", "reject"],
        OrderStatus.EXPIRED: ["submit", "accept", "expire"],
    }[status]
    for step in steps:
        apply(order, step)
    assert order.status is status


def apply(order: Order, step: str) -> None:
    if step == "submit":
        order.submit("w")
    elif step == "accept":
        order.accept("ex-1", "w")
    elif step == "half":
        order.fill(f"t{len(order.trade_ids)}", D("100"), order.quantity / 2, D("0"), "USDT", "w")
    elif step == "all":
        order.fill(f"t{len(order.trade_ids)}", D("100"), order.remaining_quantity, D("0"),
                   "USDT", "w")
    elif step == "cancel_req":
        order.request_cancel("u")
    elif step == "cancel":
        order.cancel("w")
    elif step == "reject":
        order.reject("-2010", "insufficient balance", "w")
    elif step == "expire":
        order.expire("w")


TRIGGER_STEP = {
    Trigger.SUBMIT: "submit", Trigger.REJECT: "reject", Trigger.REQUEST_CANCEL: "cancel_req",
    Trigger.CANCEL: "cancel", Trigger.EXPIRE: "expire", Trigger.FILL_PARTIAL: "half",
    Trigger.FILL_COMPLETE: "all",
}


@pytest.mark.parametrize("status,trigger", sorted(
    itertools.product(OrderStatus, TRIGGER_STEP), key=str))
def test_every_status_and_trigger_follows_the_transition_table(
    status: OrderStatus, trigger: Trigger
) -> None:
    order = new_order("1")
    drive_to(order, status)
    before = len(order.collect_events())
    expected = TRANSITIONS.get((status, trigger))
    if status is OrderStatus.PENDING and trigger in (Trigger.FILL_PARTIAL, Trigger.FILL_COMPLETE):
        # A fill proves the order reached the exchange: the submission is recorded first.
        expected = TRANSITIONS[(OrderStatus.SUBMITTED, trigger)]
    # Reports repeat (at-least-once delivery): a repeated report is a no-op, not an error.
    idempotent_repeat = (trigger is Trigger.SUBMIT and order.submitted) or (status, trigger) in {
        (OrderStatus.CANCEL_REQUESTED, Trigger.REQUEST_CANCEL),
        (OrderStatus.CANCELED, Trigger.CANCEL),
        (OrderStatus.REJECTED, Trigger.REJECT),
        (OrderStatus.EXPIRED, Trigger.EXPIRE),
    }
    fill_needs_remaining = trigger in (Trigger.FILL_PARTIAL, Trigger.FILL_COMPLETE)
    if status is OrderStatus.FILLED and fill_needs_remaining:
        with pytest.raises((IllegalTransition, Overfill)):
            apply(order, TRIGGER_STEP[trigger])
        return
    if expected is None and not idempotent_repeat:
        with pytest.raises(IllegalTransition) as info:
            apply(order, TRIGGER_STEP[trigger])
        assert status.value in str(info.value)
        assert order.collect_events() == []
        return
    apply(order, TRIGGER_STEP[trigger])
    if idempotent_repeat:
        assert order.status is status
    elif trigger is Trigger.FILL_PARTIAL and status is OrderStatus.PARTIALLY_FILLED:
        # The second half fills the order completely.
        assert order.status is OrderStatus.FILLED
    else:
        assert order.status is expected
    assert before >= 0


def test_terminal_statuses_allow_no_transition() -> None:
    for (status, _), _next in TRANSITIONS.items():
        assert status not in TERMINAL_STATUSES


def test_second_fill_with_same_trade_id_is_ignored() -> None:
    order = new_order("1")
    drive_to(order, OrderStatus.NEW)
    order.collect_events()
    assert order.fill("t-9", D("100"), D("0.4"), D("0.01"), "USDT", "w") is True
    assert order.fill("t-9", D("100"), D("0.4"), D("0.01"), "USDT", "w") is False
    events = order.collect_events()
    assert [type(e).__name__ for e in events] == ["OrderFilled"]
    assert order.filled_quantity == D("0.4")


def test_overfill_is_refused_with_a_named_error() -> None:
    order = new_order("1")
    drive_to(order, OrderStatus.NEW)
    order.fill("t-1", D("100"), D("0.7"), D("0"), "USDT", "w")
    with pytest.raises(Overfill, match=r"would fill 1\.4"):
        order.fill("t-2", D("100"), D("0.7"), D("0"), "USDT", "w")
    assert order.filled_quantity == D("0.7")


def test_average_price_and_remaining_quantity_follow_fills() -> None:
    order = new_order("3")
    drive_to(order, OrderStatus.NEW)
    order.fill("a", D("100"), D("1"), D("0.1"), "USDT", "w")
    order.fill("b", D("103"), D("2"), D("0.2"), "USDT", "w")
    assert order.status is OrderStatus.FILLED
    assert order.average_price == D("102")
    assert order.remaining_quantity == 0
    assert order.commissions == {"USDT": D("0.3")}
    assert order.is_terminal and not order.is_open


def test_fill_racing_a_cancel_request_completes_the_order() -> None:
    order = new_order("1")
    drive_to(order, OrderStatus.CANCEL_REQUESTED)
    order.fill("t", D("100"), D("1"), D("0"), "USDT", "w")
    assert order.status is OrderStatus.FILLED


def test_rejected_cancel_returns_the_order_to_its_open_status() -> None:
    order = new_order("1")
    drive_to(order, OrderStatus.PARTIALLY_FILLED)
    order.request_cancel("u")
    order.reject_cancel("-2011", "Unknown order sent.", "w")
    assert order.status is OrderStatus.PARTIALLY_FILLED


def test_late_acknowledgement_after_a_fill_keeps_the_filled_status() -> None:
    order = new_order("1")
    order.submit("w")
    order.fill("t", D("100"), D("1"), D("0"), "USDT", "w")
    order.accept("ex-7", "w")
    assert order.status is OrderStatus.FILLED
    assert order.exchange_order_id == "ex-7"


def test_replaying_the_events_gives_the_same_state() -> None:
    order = new_order("2")
    drive_to(order, OrderStatus.PARTIALLY_FILLED)
    order.request_cancel("u")
    order.cancel("w")
    events = order.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert replayed.__dict__ == order.__dict__


def test_order_id_is_derived_from_account_and_client_order_id() -> None:
    account = uuid4()
    assert order_id_for(account, "x") == order_id_for(account, "x")
    assert order_id_for(account, "x") != order_id_for(account, "y")
    assert order_id_for(account, "x") != order_id_for(uuid4(), "x")
