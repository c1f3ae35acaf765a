"""OCO order lists through the API, sent by the real worker to the paper exchange as one
orderList/oco (python-binance in between): one leg reached expires the other, a DELETE of
the list cancels both, and bad lists are 422s that write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.values import OrderStatus
from tests.support.api import User, project, register
from tests.support.worker import Stack, api_over, user_with_paper_keys, wait_for

pytestmark = pytest.mark.integration
D = Decimal
LISTS = "/api/trading/order-lists"
ORDERS = "/api/trading/orders"
SYMBOL = "LINKUSDT"
OCO = {"type": "OCO", "symbol": SYMBOL, "side": "SELL", "quantity": "10", "price": "22",
       "stopPrice": "18", "stopLimitPrice": "17.9"}


@pytest.fixture
def desk(stack: Stack, paper_exchange: Any) -> Iterator[tuple[Stack, Any]]:
    """The API over the runtime the live worker serves, LINKUSDT pinned at 20."""
    paper_exchange.set_price(SYMBOL, "20")
    stack.rt.symbols.update_price(SYMBOL, D("20"))
    try:
        with api_over(stack) as client:
            yield stack, client
    finally:
        paper_exchange.set_price(SYMBOL, "20", freeze=False)


def trader(s: Stack, client: Any) -> User:
    user = user_with_paper_keys(s, client)
    assert s.worker.streams is not None
    wait_for(lambda: UUID(user.id) in s.worker.streams.connected, 10, "the user-data stream")
    return user


def place(client: Any, user: User, body: dict[str, Any]) -> tuple[UUID, list[UUID]]:
    answer = client.post(LISTS, json=body, headers=user.headers)
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert answer.headers["Location"] == f"{LISTS}/{data['orderListId']}"
    return UUID(data["orderListId"]), [UUID(o["orderId"]) for o in data["orders"]]


def test_an_oco_goes_out_as_one_list_and_its_take_profit_expires_the_stop(
        desk: tuple[Stack, Any], paper_exchange: Any) -> None:
    s, client = desk
    user = trader(s, client)
    list_id, (stop_leg, take_profit) = place(client, user, {**OCO, "clientOrderId": "exit-1"})
    assert list_id == stop_leg
    shown = client.get(f"{LISTS}/{list_id}", headers=user.headers).json()  # read-your-writes
    assert (shown["listOrderStatus"], shown["listClientOrderId"], shown["side"]) == (
        "EXECUTING", "exit-1", "SELL")
    assert [(o["type"], o["price"], o["stopPrice"], o["orderListId"]) for o in shown["orders"]
            ] == [("STOP_LOSS_LIMIT", "17.9", "18", str(list_id)),
                  ("LIMIT_MAKER", "22", None, str(list_id))]
    for leg in (stop_leg, take_profit):
        s.wait_status(leg, OrderStatus.NEW)
    # One list on the exchange, each leg under our clientOrderId, never sent twice.
    on_exchange = [s.exchange_orders(leg) for leg in (stop_leg, take_profit)]
    assert [len(o) for o in on_exchange] == [1, 1]
    assert on_exchange[0][0]["orderListId"] == on_exchange[1][0]["orderListId"] >= 0
    assert (on_exchange[0][0]["type"], on_exchange[1][0]["type"]) == (
        "STOP_LOSS_LIMIT", "LIMIT_MAKER")

    paper_exchange.set_price(SYMBOL, "22")
    s.wait_status(take_profit, OrderStatus.FILLED)
    s.wait_status(stop_leg, OrderStatus.EXPIRED)
    assert s.app.get_order(take_profit).average_price == D("22")
    project(s.rt)
    done = client.get(f"{LISTS}/{list_id}", headers=user.headers).json()
    assert done["listOrderStatus"] == "ALL_DONE"
    listed = {o["orderId"]: o for o in client.get(ORDERS, headers=user.headers).json()}
    assert {listed[str(leg)]["orderListId"] for leg in (stop_leg, take_profit)} == {
        str(list_id)}
    assert [listed[o["orderId"]] for o in done["orders"]] == done["orders"]
    assert client.delete(f"{LISTS}/{list_id}", headers=user.headers).status_code == 409


def test_cancel_of_the_list_cancels_both_legs(desk: tuple[Stack, Any]) -> None:
    s, client = desk
    user = trader(s, client)
    list_id, legs = place(client, user, OCO)
    for leg in legs:
        s.wait_status(leg, OrderStatus.NEW)
    answer = client.delete(f"{LISTS}/{list_id}", headers=user.headers)
    assert answer.status_code == 202
    assert answer.json()["orderIds"] == [str(leg) for leg in legs]
    for leg in legs:
        s.wait_status(leg, OrderStatus.CANCELED)
        [on_exchange] = s.exchange_orders(leg)
        assert on_exchange["status"] == "CANCELED"
    assert client.get(f"{LISTS}/{list_id}", headers=user.headers).json()[
        "listOrderStatus"] == "ALL_DONE"


def test_the_same_client_order_id_is_the_same_list(api: Any, runtime: Any) -> None:
    runtime.symbols.update_price(SYMBOL, D("20"))
    client = api
    user = register(client)
    first = place(client, user, {**OCO, "clientOrderId": "same"})
    assert place(client, user, {**OCO, "clientOrderId": "same"}) == first
    other = client.post(LISTS, json={**OCO, "clientOrderId": "same", "price": "23"},
                        headers=user.headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "client_order_id_reused"
    assert client.get(f"{LISTS}/{first[1][1]}", headers=user.headers).status_code == 404


def test_bad_order_lists_are_422_and_write_nothing(api: Any, runtime: Any) -> None:
    runtime.symbols.update_price(SYMBOL, D("20"))
    user = register(api)
    cases = [
        ({**OCO, "price": "19.5"}, "invalid_price", "price", "must be above the current "
                                                             "price 20"),
        ({**OCO, "stopPrice": "20.5", "stopLimitPrice": "20.4"}, "stop_would_trigger",
         "stopPrice", "must be below the current price 20"),
        ({**OCO, "side": "BUY"}, "stop_would_trigger", "stopPrice", "must be above"),
        ({**OCO, "type": "OTO"}, "validation_failed", "type", "must be OCO"),
        ({**OCO, "stopLimitPrice": "17.9001"}, "invalid_price", "price", "decimals"),
        ({**OCO, "quantity": "0"}, "invalid_quantity", "quantity", "greater than zero"),
        ({**OCO, "stopLimitTimeInForce": "DAY"}, "validation_failed", "stopLimitTimeInForce",
         "GTC, IOC, FOK"),
    ]
    for body, code, field, words in cases:
        answer = api.post(LISTS, json=body, headers=user.headers)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == code and words in error["message"], (body, error)
        assert error.get("field") == field or error.get("details", {}).get("field") == field, \
            (body, error)
    missing = api.post(LISTS, json={k: v for k, v in OCO.items() if k != "stopLimitPrice"},
                       headers=user.headers)
    assert missing.status_code == 422
    limit_maker = api.post(ORDERS, json={"symbol": SYMBOL, "side": "SELL", "type":
                                         "LIMIT_MAKER", "quantity": "10", "price": "22"},
                           headers=user.headers)
    assert limit_maker.status_code == 422 and "order-lists" in limit_maker.json()["error"][
        "message"]
    assert api.get(ORDERS, headers=user.headers).json() == []


def test_a_list_of_another_user_or_an_order_in_no_list_is_404(api: Any, runtime: Any) -> None:
    runtime.symbols.update_price(SYMBOL, D("20"))
    owner, stranger = register(api), register(api)
    list_id = api.post(LISTS, json=OCO, headers=owner.headers).json()["orderListId"]
    assert api.get(f"{LISTS}/{list_id}", headers=stranger.headers).status_code == 404
    assert api.delete(f"{LISTS}/{list_id}", headers=stranger.headers).status_code == 404
    plain = api.post(ORDERS, json={"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                   "quantity": "1", "price": "19"}, headers=owner.headers)
    assert api.get(f"{LISTS}/{plain.json()['orderId']}", headers=owner.headers
                   ).status_code == 404
