"""OCO order lists (Binance's POST /api/v3/orderList/oco) on the paper exchange, through
python-binance's Client over real HTTP and its user-data stream over the WS-API: one lock for
both legs, the other leg expiring when one is reached, cancel of the list or of one leg."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from binance import AsyncClient, BinanceSocketManager, Client
from binance.exceptions import BinanceAPIException

from tests.support.paper_exchange import (
    PaperExchangeHandle,
    binance_client,
    binance_module_marks,
    pinned_price,
)

pytestmark = binance_module_marks()

D = Decimal
SYMBOL = "LINKUSDT"


@pytest.fixture
def exchange(binance_on_paper: PaperExchangeHandle) -> Iterator[PaperExchangeHandle]:
    """The session's paper exchange with LINKUSDT pinned at 20, let go afterwards."""
    with pinned_price(binance_on_paper, SYMBOL, "20") as handle:
        yield handle


@pytest.fixture
def client(exchange: PaperExchangeHandle) -> Iterator[Client]:
    """A python-binance Client with a fresh, default-funded key pair."""
    with binance_client(exchange) as c:
        yield c


def sell_oco(client: Client, **kw: Any) -> dict[str, Any]:
    """Take profit at 22 (LIMIT_MAKER above), stop out at 18 for 17.9 (below)."""
    params: dict[str, Any] = dict(
        symbol=SYMBOL, side="SELL", quantity="10", aboveType="LIMIT_MAKER", abovePrice="22",
        belowType="STOP_LOSS_LIMIT", belowStopPrice="18", belowPrice="17.9",
        belowTimeInForce="GTC", listClientOrderId="oco-1", aboveClientOrderId="oco-1-tp",
        belowClientOrderId="oco-1-sl")
    params.update(kw)
    result: dict[str, Any] = client.create_oco_order(
        **{k: v for k, v in params.items() if v is not None})
    return result


def balance(client: Client, asset: str) -> tuple[Decimal, Decimal]:
    [b] = [b for b in client.get_account()["balances"] if b["asset"] == asset]
    return D(b["free"]), D(b["locked"])


def statuses(client: Client, listed: dict[str, Any]) -> dict[str, str]:
    return {o["clientOrderId"]: client.get_order(symbol=SYMBOL, orderId=o["orderId"])["status"]
            for o in listed["orders"]}


def test_a_sell_oco_locks_once_and_the_take_profit_expires_the_stop(
        exchange: PaperExchangeHandle, client: Client) -> None:
    free, _ = balance(client, "LINK")
    res = sell_oco(client)
    assert (res["contingencyType"], res["listStatusType"], res["listOrderStatus"],
            res["listClientOrderId"]) == ("OCO", "EXEC_STARTED", "EXECUTING", "oco-1")
    assert [o["clientOrderId"] for o in res["orders"]] == ["oco-1-sl", "oco-1-tp"]
    stop, limit = res["orderReports"]
    assert (stop["type"], stop["stopPrice"], stop["workingTime"]) == (
        "STOP_LOSS_LIMIT", "18.00000000", -1)
    assert (limit["type"], limit["price"]) == ("LIMIT_MAKER", "22.00000000")
    assert {r["orderListId"] for r in res["orderReports"]} == {res["orderListId"]}
    assert balance(client, "LINK") == (free - 10, D(10))  # one lock for both legs
    [listed] = client.get_open_oco_orders()
    assert listed["orderListId"] == res["orderListId"]

    exchange.set_price(SYMBOL, "19")  # between the legs: nothing happens
    assert statuses(client, res) == {"oco-1-sl": "NEW", "oco-1-tp": "NEW"}
    exchange.set_price(SYMBOL, "22")  # the take profit is reached: it fills as maker
    assert statuses(client, res) == {"oco-1-sl": "EXPIRED", "oco-1-tp": "FILLED"}
    [trade] = client.get_my_trades(symbol=SYMBOL, orderId=limit["orderId"])
    assert trade["isMaker"] and trade["price"] == "22.00000000"
    assert trade["orderListId"] == res["orderListId"]
    assert balance(client, "LINK") == (free - 10, D(0))
    done = client.v3_get_order_list(orderListId=res["orderListId"])
    assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert client.get_open_oco_orders() == []
    exchange.set_price(SYMBOL, "17")  # the expired stop never triggers
    assert statuses(client, res)["oco-1-sl"] == "EXPIRED"


def test_the_stop_leg_triggering_expires_the_take_profit(
        exchange: PaperExchangeHandle, client: Client) -> None:
    res = sell_oco(client)
    exchange.set_price(SYMBOL, "18")  # the stop is reached: SELL at 17.9 takes at once
    assert statuses(client, res) == {"oco-1-sl": "FILLED", "oco-1-tp": "EXPIRED"}
    [trade] = client.get_my_trades(symbol=SYMBOL, orderId=res["orders"][0]["orderId"])
    assert not trade["isMaker"]
    assert balance(client, "LINK")[1] == 0


def test_a_buy_oco_locks_the_dearer_leg_and_releases_it_all(
        exchange: PaperExchangeHandle, client: Client) -> None:
    free, _ = balance(client, "USDT")
    res = client.create_oco_order(
        symbol=SYMBOL, side="BUY", quantity="10", aboveType="STOP_LOSS_LIMIT",
        aboveStopPrice="21", abovePrice="21.5", aboveTimeInForce="GTC",
        belowType="LIMIT_MAKER", belowPrice="19")
    assert balance(client, "USDT") == (free - D(215), D(215))
    exchange.set_price(SYMBOL, "19")  # the LIMIT_MAKER leg buys at 19
    assert sorted(statuses(client, res).values()) == ["EXPIRED", "FILLED"]
    assert balance(client, "USDT") == (free - D(190), D(0))


def test_canceling_the_list_or_one_leg_cancels_both_and_unlocks(
        exchange: PaperExchangeHandle, client: Client) -> None:
    free, _ = balance(client, "LINK")
    res = sell_oco(client)
    canceled = client.v3_delete_order_list(symbol=SYMBOL, orderListId=res["orderListId"])
    assert canceled["listOrderStatus"] == "ALL_DONE"
    assert {r["status"] for r in canceled["orderReports"]} == {"CANCELED"}
    assert statuses(client, res) == {"oco-1-sl": "CANCELED", "oco-1-tp": "CANCELED"}
    assert balance(client, "LINK") == (free, D(0))
    with pytest.raises(BinanceAPIException) as info:
        client.v3_delete_order_list(symbol=SYMBOL, orderListId=res["orderListId"])
    assert info.value.code == -2011

    again = sell_oco(client)  # the client ids are free again once the list is done
    client.cancel_order(symbol=SYMBOL, origClientOrderId="oco-1-tp")
    assert statuses(client, again) == {"oco-1-sl": "CANCELED", "oco-1-tp": "CANCELED"}
    assert balance(client, "LINK") == (free, D(0))


@pytest.mark.parametrize("kw,code,msg", [
    # The legs must straddle the market: a SELL's take profit above 20, its stop below.
    (dict(abovePrice="19.5"), -2010, "relationship of the prices"),
    (dict(belowStopPrice="20.5", belowPrice="20.4"), -2010, "relationship of the prices"),
    # A take profit leg is held to its limit price, not its stop (rest-api.md orderList/oco).
    (dict(aboveType="TAKE_PROFIT_LIMIT", aboveStopPrice="21", abovePrice="19.5",
          aboveTimeInForce="GTC"), -2010, "relationship of the prices"),
    # A SELL takes profit above and stops out below, never the other way round: Binance
    # answers each misplaced leg with its own code (errors.md).
    (dict(aboveType="STOP_LOSS_LIMIT", abovePrice="22", aboveStopPrice="22",
          aboveTimeInForce="GTC"), -1197, "A stop loss order in a sell OCO must be below."),
    (dict(belowType="LIMIT_MAKER", belowStopPrice=None, belowTimeInForce=None), -1168,
     "At least one OCO order must be contingent."),
    (dict(aboveType="TAKE_PROFIT_LIMIT", aboveStopPrice="21", aboveTimeInForce="GTC",
          belowType="LIMIT_MAKER", belowStopPrice=None, belowTimeInForce=None), -1166,
     "A limit order in a sell OCO must be above."),
    (dict(belowType="TAKE_PROFIT_LIMIT"), -1199,
     "A take profit order in a sell OCO must be above."),
    (dict(side="BUY"), -1165, "A limit order in a buy OCO must be below."),
    (dict(side="BUY", aboveType="TAKE_PROFIT_LIMIT", aboveStopPrice="21",
          aboveTimeInForce="GTC", belowType="LIMIT_MAKER", belowStopPrice=None,
          belowTimeInForce=None, belowPrice="19"), -1198,
     "A take profit order in a buy OCO must be below."),
    (dict(side="BUY", aboveType="STOP_LOSS_LIMIT", aboveStopPrice="22",
          aboveTimeInForce="GTC"), -1196, "A stop loss order in a buy OCO must be above."),
    (dict(belowType="LIMIT"), -1158, "Order type not supported in OCO."),
    (dict(belowType="STOP_MARKET"), -1116, "Invalid orderType."),
    (dict(belowTimeInForce=None), -1102, "Mandatory parameter 'timeInForce'"),
    (dict(belowPrice="17.9001"), -1013, "PRICE_FILTER"),
    (dict(quantity="1000"), -2010, "insufficient balance"),
    (dict(aboveClientOrderId="same", belowClientOrderId="same"), -2010, "Duplicate order"),
])
def test_bad_oco_lists_get_binance_errors(client: Client, kw: dict[str, Any], code: int,
                                          msg: str) -> None:
    with pytest.raises(BinanceAPIException) as info:
        sell_oco(client, **kw)
    assert info.value.code == code and msg in info.value.message
    assert client.get_open_orders(symbol=SYMBOL) == []


def test_user_data_stream_reports_the_legs_and_list_status(
        exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys()

    async def scenario() -> list[dict[str, Any]]:
        client = await AsyncClient.create(keys.api_key, keys.secret_key)
        client.ws_api.TIMEOUT = 1
        try:
            async with BinanceSocketManager(client).user_socket() as stream:
                await client.create_oco_order(
                    symbol=SYMBOL, side="SELL", quantity="10", aboveType="LIMIT_MAKER",
                    abovePrice="22", belowType="STOP_LOSS_LIMIT", belowStopPrice="18",
                    belowPrice="17.9", belowTimeInForce="GTC", listClientOrderId="s-1")
                await asyncio.to_thread(exchange.set_price, SYMBOL, "22")
                events: list[dict[str, Any]] = []
                while sum(e["e"] == "listStatus" for e in events) < 2:
                    event = await asyncio.wait_for(stream.recv(), 5)
                    if event["e"] != "outboundAccountPosition":
                        events.append(event)
                while len(events) < 6:
                    events.append(await asyncio.wait_for(stream.recv(), 5))
                return [e for e in events if e["e"] != "outboundAccountPosition"]
        finally:
            await client.close_connection()

    events = asyncio.run(scenario())
    kinds = [(e["e"], e.get("x"), e.get("X"), e.get("o")) for e in events]
    # Binance: a reached LIMIT_MAKER executes BEFORE its stop-loss sibling is expired
    # (CHANGELOG, OCO "Execution Order"), the sibling's `eR` saying why (user-data-stream.md).
    assert kinds == [
        ("executionReport", "NEW", "NEW", "STOP_LOSS_LIMIT"),
        ("executionReport", "NEW", "NEW", "LIMIT_MAKER"),
        ("listStatus", None, None, None),
        ("executionReport", "TRADE", "FILLED", "LIMIT_MAKER"),
        ("executionReport", "EXPIRED", "EXPIRED", "STOP_LOSS_LIMIT"),
        ("listStatus", None, None, None),
    ]
    [expired] = [e for e in events if e.get("x") == "EXPIRED"]
    assert expired["eR"] == "OCO_TRIGGER"
    assert all("eR" not in e for e in events if e.get("x") != "EXPIRED")
    started, done = (e for e in events if e["e"] == "listStatus")
    assert (started["l"], started["L"], started["C"], started["c"]) == (
        "EXEC_STARTED", "EXECUTING", "s-1", "OCO")
    assert (done["l"], done["L"]) == ("ALL_DONE", "ALL_DONE")
    assert len({e["g"] for e in events}) == 1 and events[0]["g"] >= 0
