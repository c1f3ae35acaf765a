"""Issue 19: spend-amount (quoteOrderQty) MARKET orders, from the command to the execution
manager: validation, the quantity the exchange fixes, and old events that still load."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from commands.messages import PlaceOrder, RecordExecutedQuantity, RecordFill, RegisterAccount
from commands.ports import ExchangeFill, ExchangeOrderReport, ExchangeOrderStatus
from domain.errors import (
    ClientOrderIdReused,
    IllegalTransition,
    InvalidQuantity,
    NotionalTooSmall,
    Overfill,
    ValidationFailed,
)
from domain.order import Order
from domain.values import OrderStatus
from tests.unit.execution_world import World
from tests.unit.fakes import make_app

D = Decimal


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    return make_app(BTCUSDT="50000")


@pytest.fixture
def account(app):  # type: ignore[no-untyped-def]
    return app.handle(RegisterAccount(email=f"{uuid4().hex[:8]}@example.com",
                                      password="x" * 12))


def spend(app, account, quote: object = "100", **kw):  # type: ignore[no-untyped-def]
    values = {"account_id": account, "client_order_id": uuid4().hex[:12], "symbol": "BTCUSDT",
              "side": "BUY", "order_type": "MARKET", "quantity": None,
              "quote_order_qty": quote, **kw}
    return app.handle(PlaceOrder(**values))


def test_a_spend_amount_order_is_placed_with_its_quote_and_no_quantity_yet(app, account) -> None:
    order = app.get_order(spend(app, account, "100.5"))
    assert order.quote_order_qty == D("100.5") and order.quantity == 0
    assert not order.quantity_known and order.status is OrderStatus.PENDING
    [placed] = list(app.events.get(order.id))
    assert placed.quote_order_qty == D("100.5")


@pytest.mark.parametrize(("kw", "error", "field"), [
    ({"quantity": "0.01"}, ValidationFailed, "quantity"),  # both
    ({"quote": None}, ValidationFailed, "quantity"),  # neither
    ({"order_type": "LIMIT", "price": "50000"}, InvalidQuantity, "quoteOrderQty"),
    ({"quote": "0"}, InvalidQuantity, "quoteOrderQty"),
    ({"quote": "4.99"}, NotionalTooSmall, "quoteOrderQty"),  # NOTIONAL is 5 USDT
    ({"quote": "9000000000"}, InvalidQuantity, "quoteOrderQty"),  # above MARKET max qty
    ({"price": "50000"}, ValidationFailed, "price"),
])
def test_spend_amount_orders_are_checked(app, account, kw, error, field) -> None:  # type: ignore[no-untyped-def]
    quote = kw.pop("quote", "100")
    with pytest.raises(error) as caught:
        spend(app, account, quote, **kw)
    assert caught.value.details["field"] == field
    assert type(caught.value) is error


def test_the_quantity_at_the_live_price_must_reach_the_minimum(account) -> None:  # type: ignore[no-untyped-def]
    # At 10,000,000 USDT a BTC, 5 USDT passes NOTIONAL but buys less than 0.00001 BTC.
    dear = make_app(BTCUSDT="10000000")
    account = dear.handle(RegisterAccount(email="d@example.com", password="x" * 12))
    with pytest.raises(InvalidQuantity, match="below the minimum quantity"):
        spend(dear, account, "5")
    unknown_price = make_app()
    account = unknown_price.handle(RegisterAccount(email="u@example.com", password="x" * 12))
    assert spend(unknown_price, account, "5")  # no live price: the exchange has the last word


def test_a_retried_spend_amount_order_is_the_same_order_even_after_it_filled(
        app, account) -> None:  # type: ignore[no-untyped-def]
    body = {"client_order_id": "same-1"}
    first = spend(app, account, "100", **body)
    app.handle(RecordExecutedQuantity(first, D("0.002")))
    assert spend(app, account, "100", **body) == first
    with pytest.raises(ClientOrderIdReused):
        spend(app, account, "200", **body)


def test_fills_wait_for_the_fixed_quantity_to_complete(app, account) -> None:  # type: ignore[no-untyped-def]
    order_id = spend(app, account, "100")
    app.handle(RecordFill(order_id, "t1", D("50000"), D("0.001"), D("0"), "BTC"))
    assert app.get_order(order_id).status is OrderStatus.PARTIALLY_FILLED
    app.handle(RecordExecutedQuantity(order_id, D("0.001")))
    order = app.get_order(order_id)
    assert order.status is OrderStatus.FILLED and order.quantity == D("0.001")
    app.handle(RecordExecutedQuantity(order_id, D("0.001")))  # repeated: a no-op
    assert app.get_order(order_id).version == order.version

    other = spend(app, account, "100")
    app.handle(RecordExecutedQuantity(other, D("0.002")))  # known first, then fills
    app.handle(RecordFill(other, "t2", D("50000"), D("0.001"), D("0"), "BTC"))
    assert app.get_order(other).status is OrderStatus.PARTIALLY_FILLED
    with pytest.raises(Overfill):
        app.handle(RecordFill(other, "t3", D("50000"), D("0.0011"), D("0"), "BTC"))
    app.handle(RecordFill(other, "t3", D("50000"), D("0.001"), D("0"), "BTC"))
    assert app.get_order(other).status is OrderStatus.FILLED


def test_a_fixed_quantity_below_the_fills_or_on_a_plain_order_is_refused(app, account) -> None:  # type: ignore[no-untyped-def]
    order_id = spend(app, account, "100")
    app.handle(RecordFill(order_id, "t1", D("50000"), D("0.001"), D("0"), "BTC"))
    with pytest.raises(Overfill):
        app.handle(RecordExecutedQuantity(order_id, D("0.0005")))
    app.handle(RecordExecutedQuantity(order_id, D("0.0015")))
    with pytest.raises(IllegalTransition):
        app.handle(RecordExecutedQuantity(order_id, D("0.002")))
    plain = app.handle(PlaceOrder(account, "plain-1", "BTCUSDT", "BUY", "MARKET", "0.001"))
    with pytest.raises(IllegalTransition):
        app.handle(RecordExecutedQuantity(plain, D("0.001")))


def test_an_order_placed_event_stored_before_quote_order_qty_still_loads(app, account) -> None:  # type: ignore[no-untyped-def]
    order_id = app.handle(PlaceOrder(account, "old-1", "BTCUSDT", "BUY", "MARKET", "0.001"))
    [placed] = list(app.events.get(order_id))
    stored = app.mapper.to_stored_event(placed)
    state = app.mapper.transcoder.decode(stored.state)
    del state["quote_order_qty"]  # as an event written before the field existed
    old = app.mapper.to_domain_event(type(stored)(
        originator_id=stored.originator_id, originator_version=stored.originator_version,
        topic=stored.topic, state=app.mapper.transcoder.encode(state)))
    order = old.mutate(None)
    assert isinstance(order, Order)
    assert order.quote_order_qty is None and order.quantity == D("0.001")
    assert order.quantity_known


def test_the_manager_sends_the_quote_and_records_the_quantity_the_exchange_fixed(
        world: World) -> None:
    order_id = spend(world.app, world.account_id, "125")
    world.settle(world.manager.drive(order_id))
    [sent] = world.exchange.orders.values()
    assert sent.request.quote_order_qty == D("125")
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.FILLED
    assert order.quantity == order.filled_quantity == D("0.0025")  # 125 / 50000
    assert world.event_types(order_id) == [
        "OrderPlaced", "OrderSubmitted", "OrderAccepted", "OrderQuantityFixed", "OrderFilled",
        "OrderFilled"]


def test_fills_streamed_before_the_final_report_complete_when_it_comes(world: World) -> None:
    order_id = spend(world.app, world.account_id, "100")
    report = ExchangeOrderReport("77", "x", "BTCUSDT", ExchangeOrderStatus.PARTIALLY_FILLED,
                                 D("0.001"), D("50"),
                                 (ExchangeFill("s1", D("50000"), D("0.001"), D("0"), "BTC"),))
    world.manager.apply_report(order_id, report)
    assert world.status(order_id) is OrderStatus.PARTIALLY_FILLED
    last = ExchangeOrderReport("77", "x", "BTCUSDT", ExchangeOrderStatus.FILLED, D("0.002"),
                               D("100"),
                               (ExchangeFill("s2", D("50000"), D("0.001"), D("0"), "BTC"),))
    world.manager.apply_report(order_id, last)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.FILLED and order.quantity == D("0.002")
