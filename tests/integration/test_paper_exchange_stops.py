"""Stop-limit and take-profit orders on the paper exchange, through python-binance's Client and
our BinanceGateway over real HTTP: Binance's validation errors, no trigger before the stop,
the trigger on /admin/price, then LIMIT behaviour (take at once, or rest and fill as maker)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from binance import AsyncClient, BinanceSocketManager, Client
from binance.exceptions import BinanceAPIException

from adapters.binance.gateway import BinanceGateway
from adapters.paper_exchange.runner import admin_post
from commands.ports import ExchangeCredentials, ExchangeOrderRequest, ExchangeOrderStatus
from tests.support.paper_exchange import (
    PaperExchangeHandle,
    binance_client,
    binance_module_marks,
    pinned_price,
)

pytestmark = binance_module_marks()

D = Decimal
SYMBOL = "SOLUSDT"


@pytest.fixture
def exchange(binance_on_paper: PaperExchangeHandle) -> Iterator[PaperExchangeHandle]:
    """The session's paper exchange with SOLUSDT pinned at 150, let go afterwards."""
    with pinned_price(binance_on_paper, SYMBOL, "150") as handle:
        yield handle


@pytest.fixture
def client(exchange: PaperExchangeHandle) -> Iterator[Client]:
    """A python-binance Client with a fresh, default-funded key pair."""
    with binance_client(exchange) as c:
        yield c


def stop_order(client: Client, order_type: str, side: str, stop: str, price: str,
               **kw: Any) -> dict[str, Any]:
    params: dict[str, Any] = dict(symbol=SYMBOL, side=side, type=order_type, quantity="1",
                                  price=price, stopPrice=stop, timeInForce="GTC")
    params.update(kw)
    params = {k: v for k, v in params.items() if v is not None}
    result: dict[str, Any] = client.create_order(**params)
    return result


def sol(client: Client) -> tuple[Decimal, Decimal]:
    [balance] = [b for b in client.get_account()["balances"] if b["asset"] == "SOL"]
    return D(balance["free"]), D(balance["locked"])


def test_stop_loss_sell_waits_off_the_book_then_triggers_and_takes(
        exchange: PaperExchangeHandle, client: Client) -> None:
    free_before, _ = sol(client)
    res = stop_order(client, "STOP_LOSS_LIMIT", "SELL", stop="140", price="139")
    assert (res["status"], res["workingTime"], res["stopPrice"]) == ("NEW", -1, "140.00000000")
    assert sol(client) == (free_before - 1, D(1))  # locked like a LIMIT order
    exchange.set_price(SYMBOL, "140.01")  # close, not reached: nothing happens
    order = client.get_order(symbol=SYMBOL, orderId=res["orderId"])
    assert (order["status"], order["isWorking"], order["workingTime"]) == ("NEW", False, -1)
    assert [o["orderId"] for o in client.get_open_orders(symbol=SYMBOL)] == [res["orderId"]]

    exchange.set_price(SYMBOL, "140")  # reached: a LIMIT SELL at 139 crosses, takes
    order = client.get_order(symbol=SYMBOL, orderId=res["orderId"])
    assert order["status"] == "FILLED" and order["isWorking"] is True  # it worked
    assert order["workingTime"] > 0
    [trade] = client.get_my_trades(symbol=SYMBOL, orderId=res["orderId"])
    assert not trade["isMaker"] and D(trade["price"]) < D(140)
    assert sol(client) == (free_before - 1, D(0))


def test_take_profit_buy_triggers_then_rests_and_fills_as_maker(
        exchange: PaperExchangeHandle, client: Client) -> None:
    res = stop_order(client, "TAKE_PROFIT_LIMIT", "BUY", stop="140", price="135")
    exchange.set_price(SYMBOL, "140")  # reached: a BUY at 135 does not cross, it rests
    order = client.get_order(symbol=SYMBOL, orderId=res["orderId"])
    assert (order["status"], order["isWorking"], order["type"]) == (
        "NEW", True, "TAKE_PROFIT_LIMIT")
    exchange.set_price(SYMBOL, "135")
    order = client.get_order(symbol=SYMBOL, orderId=res["orderId"])
    assert order["status"] == "FILLED"
    [trade] = client.get_my_trades(symbol=SYMBOL, orderId=res["orderId"])
    assert trade["isMaker"] and trade["price"] == "135.00000000"


def test_cancel_of_an_untriggered_stop_releases_its_funds(
        exchange: PaperExchangeHandle, client: Client) -> None:
    free_before, _ = sol(client)
    res = stop_order(client, "TAKE_PROFIT_LIMIT", "SELL", stop="160", price="161")
    client.cancel_order(symbol=SYMBOL, orderId=res["orderId"])
    exchange.set_price(SYMBOL, "165")  # too late: a canceled stop never triggers
    order = client.get_order(symbol=SYMBOL, orderId=res["orderId"])
    assert order["status"] == "CANCELED" and order["executedQty"] == "0.00000000"
    assert sol(client) == (free_before, D(0))


@pytest.mark.parametrize("kw,code,msg", [
    # The stop is already reached at 150: Binance refuses rather than trigger at once.
    (dict(order_type="STOP_LOSS_LIMIT", side="SELL", stop="151", price="150"), -2010,
     "Order would trigger immediately."),
    (dict(order_type="STOP_LOSS_LIMIT", side="BUY", stop="149", price="150"), -2010,
     "Order would trigger immediately."),
    (dict(order_type="TAKE_PROFIT_LIMIT", side="SELL", stop="149", price="150"), -2010,
     "Order would trigger immediately."),
    (dict(order_type="TAKE_PROFIT_LIMIT", side="BUY", stop="151", price="150"), -2010,
     "Order would trigger immediately."),
    (dict(order_type="STOP_LOSS_LIMIT", side="SELL", stop=None, price="139"), -1102,
     "Mandatory parameter 'stopPrice'"),
    (dict(order_type="STOP_LOSS_LIMIT", side="SELL", stop="140", price="139",
          timeInForce=None), -1102, "Mandatory parameter 'timeInForce'"),
    (dict(order_type="STOP_LOSS_LIMIT", side="SELL", stop="140.001", price="139"), -1013,
     "Filter failure: PRICE_FILTER"),
    (dict(order_type="LIMIT", side="SELL", stop="140", price="151"), -1106,
     "Parameter 'stopPrice' sent when not required."),
])
def test_bad_stop_orders_get_binance_errors(client: Client, kw: dict[str, Any], code: int,
                                            msg: str) -> None:
    with pytest.raises(BinanceAPIException) as info:
        stop_order(client, **kw)
    assert info.value.code == code and msg in info.value.message
    assert client.get_open_orders(symbol=SYMBOL) == []


def percent_price_band(exchange: PaperExchangeHandle, down: str, up: str) -> None:
    """Set SOLUSDT's PERCENT_PRICE_BY_SIDE band (both sides) around the last price."""
    admin_post(exchange.url, "/admin/exchange-info", {"symbol": SYMBOL, "filters": [
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": up,
         "bidMultiplierDown": down, "askMultiplierUp": up, "askMultiplierDown": down,
         "avgPriceMins": 0}]})


@pytest.mark.parametrize("order_type,side,stop,price", [
    ("STOP_LOSS_LIMIT", "SELL", "140", "100"),  # a stop-loss whose limit is 2/3 the market
    ("TAKE_PROFIT_LIMIT", "SELL", "160", "200"),
    ("STOP_LOSS_LIMIT", "BUY", "160", "200"),
])
def test_percent_price_by_side_applies_to_a_stop_orders_price_when_placed(
        exchange: PaperExchangeHandle, client: Client, order_type: str, side: str, stop: str,
        price: str) -> None:
    # Binance's filters.md holds every order's `price` to the band, stop orders included.
    percent_price_band(exchange, "0.8", "1.2")
    try:
        with pytest.raises(BinanceAPIException) as info:
            stop_order(client, order_type, side, stop=stop, price=price)
        assert (info.value.code, info.value.message) == (
            -1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
        assert client.get_open_orders(symbol=SYMBOL) == []
        # Inside the band the same stop order is accepted.
        inside = str(D(stop) - 1 if D(price) < D(stop) else D(stop) + 1)
        placed = stop_order(client, order_type, side, stop=stop, price=inside)
        assert placed["status"] == "NEW"
        client.cancel_order(symbol=SYMBOL, orderId=placed["orderId"])
    finally:
        percent_price_band(exchange, "0.001", "1000")


def test_exchange_info_lists_the_stop_types(client: Client) -> None:
    info = client.get_symbol_info(SYMBOL)
    assert info is not None
    assert {"STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"} <= set(info["orderTypes"])


def test_user_data_stream_reports_the_stop_not_working_then_working(
        exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys()

    async def scenario() -> list[dict[str, Any]]:
        client = await AsyncClient.create(keys.api_key, keys.secret_key)
        client.ws_api.TIMEOUT = 1
        try:
            async with BinanceSocketManager(client).user_socket() as stream:
                await client.create_order(symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT",
                                          quantity="1", price="139", stopPrice="140",
                                          timeInForce="GTC", newClientOrderId="sl-1")
                await asyncio.to_thread(exchange.set_price, SYMBOL, "140")
                reports: list[dict[str, Any]] = []
                while len(reports) < 3:
                    event = await asyncio.wait_for(stream.recv(), 5)
                    if event["e"] == "executionReport":
                        reports.append(event)
                return reports
        finally:
            await client.close_connection()

    reports = asyncio.run(scenario())
    assert [(r["x"], r["X"], r["w"]) for r in reports] == [
        ("NEW", "NEW", False), ("NEW", "NEW", True), ("TRADE", "FILLED", False)]
    assert {r["P"] for r in reports} == {"140.00000000"}
    assert reports[0]["W"] == -1 and reports[1]["W"] > 0


# ---- our gateway -------------------------------------------------------------------------

@pytest.fixture
def gateway(paper_exchange: PaperExchangeHandle) -> Iterator[BinanceGateway]:
    gw = BinanceGateway("paper", paper_exchange.api_url, paper_exchange.ws_api_url,
                        backoff=0.05, timeout=(1.0, 1.5))
    yield gw
    gw.close()


def test_gateway_sends_the_stop_and_reads_whether_it_works(
        exchange: PaperExchangeHandle, gateway: BinanceGateway) -> None:
    keys = exchange.issue_keys()
    creds = ExchangeCredentials(keys.api_key, keys.secret_key, "paper")
    cid = "tl" + uuid.uuid4().hex
    report = gateway.submit_order(creds, ExchangeOrderRequest(
        SYMBOL, "BUY", "STOP_LOSS_LIMIT", D("1"), D("156"), "GTC", cid, stop_price=D("155")))
    assert report.status is ExchangeOrderStatus.NEW and report.working is False
    [listed] = gateway.open_orders(creds)
    assert listed.client_order_id == cid and listed.working is False
    exchange.set_price(SYMBOL, "155")  # reached: a BUY at 156 takes at the ask
    queried = gateway.query_order(creds, SYMBOL, cid)
    assert queried is not None and queried.status is ExchangeOrderStatus.FILLED
    assert queried.cumulative_quantity == 1 and len(queried.fills) == 1
