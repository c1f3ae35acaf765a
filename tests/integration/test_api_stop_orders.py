"""Stop-limit and take-profit orders through the API, sent by the real worker to the paper
exchange (python-binance in between), triggered there by /admin/price; and the 422s."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.values import OrderStatus
from tests.support.api import User, place_order, project, register
from tests.support.worker import Stack, api_over, user_with_paper_keys, wait_for

pytestmark = pytest.mark.integration
D = Decimal
ORDERS = "/api/trading/orders"
SYMBOL = "SOLUSDT"


@pytest.fixture
def desk(stack: Stack, paper_exchange: Any) -> Iterator[tuple[Stack, Any]]:
    """The API over the runtime the live worker serves, SOLUSDT pinned at 150."""
    paper_exchange.set_price(SYMBOL, "150")
    try:
        with api_over(stack) as client:
            yield stack, client
    finally:
        paper_exchange.set_price(SYMBOL, "150", freeze=False)





def shown(s: Stack, client: Any, user: User, order_id: UUID) -> dict[str, Any]:
    """The order as the API shows it, checked equal in the aggregate and the read model."""
    project(s.rt)
    one = client.get(f"{ORDERS}/{order_id}", headers=user.headers).json()
    [listed] = [o for o in client.get(ORDERS, headers=user.headers).json()
                if o["orderId"] == str(order_id)]
    assert one == listed
    return dict(one)


def test_a_stop_loss_waits_then_triggers_on_the_exchange_and_fills(
        desk: tuple[Stack, Any], paper_exchange: Any) -> None:
    s, client = desk
    user = user_with_paper_keys(s, client)
    order_id = place_order(client, user, {
        "symbol": SYMBOL, "side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "1",
        "price": "139", "stopPrice": "140"})
    s.wait_status(order_id, OrderStatus.NEW)
    [on_exchange] = s.exchange_orders(order_id)
    assert (on_exchange["type"], on_exchange["stopPrice"], on_exchange["isWorking"]) == (
        "STOP_LOSS_LIMIT", "140.00000000", False)
    waiting = shown(s, client, user, order_id)
    assert (waiting["status"], waiting["stopPrice"], waiting["stopTriggered"],
            waiting["timeInForce"], waiting["orderListId"]) == ("NEW", "140", False, "GTC", None)
    assert s.worker.streams is not None
    wait_for(lambda: UUID(user.id) in s.worker.streams.connected, 10, "the user-data stream")

    paper_exchange.set_price(SYMBOL, "140")
    order = s.wait_status(order_id, OrderStatus.FILLED)
    assert order.triggered and order.filled_quantity == 1
    assert order.average_price is not None and D(139) <= order.average_price < D(140)
    done = shown(s, client, user, order_id)
    assert (done["status"], done["stopTriggered"], done["stopPrice"]) == ("FILLED", True, "140")


def test_a_take_profit_triggers_rests_as_a_limit_and_cancels(
        desk: tuple[Stack, Any], paper_exchange: Any) -> None:
    s, client = desk
    user = user_with_paper_keys(s, client)
    order_id = place_order(client, user, {
        "symbol": SYMBOL, "side": "BUY", "type": "TAKE_PROFIT_LIMIT", "quantity": "1",
        "price": "135", "stopPrice": "140", "timeInForce": "GTC"})
    s.wait_status(order_id, OrderStatus.NEW)
    assert s.worker.streams is not None
    wait_for(lambda: UUID(user.id) in s.worker.streams.connected, 10, "the user-data stream")
    paper_exchange.set_price(SYMBOL, "140")  # triggered: a BUY at 135 rests on the book
    wait_for(lambda: s.app.get_order(order_id).triggered, 10, "the trigger to be recorded")
    assert s.app.get_order(order_id).status is OrderStatus.NEW
    trail = [e["type"] for e in client.get(f"{ORDERS}/{order_id}/events",
                                           headers=user.headers).json()]
    assert trail[-1] == "OrderStopTriggered"
    assert shown(s, client, user, order_id)["stopTriggered"] is True

    assert client.delete(f"{ORDERS}/{order_id}", headers=user.headers).status_code == 202
    s.wait_status(order_id, OrderStatus.CANCELED)
    [on_exchange] = s.exchange_orders(order_id)
    assert on_exchange["status"] == "CANCELED" and on_exchange["executedQty"] == "0.00000000"


def test_bad_stop_orders_are_422_with_the_field_and_reason(api: Any, runtime: Any) -> None:
    # The API checks the stop against the live price the market-data feed keeps.
    runtime.symbols.update_price(SYMBOL, D("150"))
    client = api
    user = register(client)
    stop = {"symbol": SYMBOL, "side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "1",
            "price": "139", "stopPrice": "140"}
    cases = [
        ({**stop, "stopPrice": "151"}, "stop_would_trigger", "stopPrice",
         "must be below the current price 150"),
        ({**stop, "type": "TAKE_PROFIT_LIMIT"}, "stop_would_trigger", "stopPrice",
         "must be above the current price 150"),
        ({**stop, "stopPrice": None}, "invalid_price", "stopPrice", "stopPrice is required"),
        ({**stop, "type": "LIMIT", "price": "151"}, "invalid_price", "stopPrice",
         "applies to STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT orders only"),
        ({**stop, "type": "MARKET", "price": None}, "invalid_price", "stopPrice",
         "applies to STOP_LOSS_LIMIT"),
        ({**stop, "price": None}, "invalid_price", "price", "price is required"),
        ({**stop, "stopPrice": "140.001"}, "invalid_price", "stopPrice", "decimals"),
        ({**stop, "timeInForce": "DAY"}, "validation_failed", "timeInForce", "GTC, IOC, FOK"),
        ({**stop, "type": "STOP_LOSS"}, "validation_failed", "type", "STOP_LOSS_LIMIT"),
    ]
    for body, code, field, words in cases:
        answer = client.post(ORDERS, json=body, headers=user.headers)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == code and words in error["message"], (body, error)
        assert error.get("field") == field or error.get("details", {}).get("field") == field, \
            (body, error)
    assert client.get(ORDERS, headers=user.headers).json() == []
