"""python-binance's real Client and AsyncClient against the paper exchange, over real HTTP
and websockets. Prices are pinned through the admin endpoint so every fill is exact."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from binance import AsyncClient, BinanceSocketManager, Client
from binance.exceptions import BinanceAPIException

from adapters.paper_exchange import BackgroundPaperExchange, request_keys, start_subprocess
from adapters.paper_exchange.models import Order, Trade
from tests.support.paper_exchange import PaperExchangeHandle, binance_client, binance_module_marks

pytestmark = binance_module_marks()

D = Decimal
FEE = D("0.001")


@pytest.fixture
def exchange(binance_on_paper: PaperExchangeHandle) -> Iterator[PaperExchangeHandle]:
    """The session's paper exchange, with the symbols a test pins unfrozen afterwards."""
    pinned: list[str] = []
    original = binance_on_paper.set_price

    def set_price(symbol: str, price: Decimal | str, **kw: Any) -> dict[str, Any]:
        pinned.append(symbol)
        return original(symbol, price, **kw)

    binance_on_paper.set_price = set_price  # type: ignore[method-assign]
    yield binance_on_paper
    binance_on_paper.set_price = original  # type: ignore[method-assign]
    binance_on_paper.clear_faults()
    for symbol in set(pinned):
        price = requests.get(f"{binance_on_paper.url}/api/v3/ticker/price",
                             params={"symbol": symbol}, timeout=5).json()["price"]
        original(symbol, price, freeze=False)


@pytest.fixture
def client(exchange: PaperExchangeHandle) -> Iterator[Client]:
    """A python-binance Client with a fresh, default-funded key pair."""
    with binance_client(exchange) as c:
        yield c


def balances(client: Client) -> dict[str, tuple[Decimal, Decimal]]:
    """Return {asset: (free, locked)} from /api/v3/account."""
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in client.get_account()["balances"]}


def api_error(call: Callable[[], Any]) -> BinanceAPIException:
    """Run a call that must fail and return the Binance error it raised."""
    with pytest.raises(BinanceAPIException) as info:
        call()
    return info.value


# -- market data -----------------------------------------------------------------------------


def test_public_endpoints_answer_in_binance_shapes(client: Client) -> None:
    assert client.ping() == {}
    assert abs(client.get_server_time()["serverTime"] - time.time() * 1000) < 5_000
    info = client.get_symbol_info("BTCUSDT")
    assert info is not None
    filters = {f["filterType"]: f for f in info["filters"]}
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert len(client.get_exchange_info()["symbols"]) == 8
    price = D(client.get_symbol_ticker(symbol="ETHUSDT")["price"])
    assert price > 0
    ticker = client.get_ticker(symbol="ETHUSDT")
    assert D(ticker["lowPrice"]) <= D(ticker["lastPrice"]) <= D(ticker["highPrice"])
    assert D(client.get_avg_price(symbol="ETHUSDT")["price"]) > 0
    assert len(client.get_all_tickers()) == 8


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1d", "1w"])
def test_klines_are_twelve_element_arrays_of_strings(client: Client, interval: str) -> None:
    klines = client.get_klines(symbol="BTCUSDT", interval=interval, limit=5)
    assert 1 <= len(klines) <= 5
    for k in klines:
        assert len(k) == 12
        assert isinstance(k[0], int) and isinstance(k[6], int) and isinstance(k[8], int)
        o, h, low, c = (D(x) for x in k[1:5])
        assert low <= min(o, c) <= max(o, c) <= h
        assert all(isinstance(x, str) for x in (k[1], k[5], k[7], k[9], k[10]))
    times = [k[0] for k in klines]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_klines_honour_start_time_and_limit(client: Client) -> None:
    recent = client.get_klines(symbol="SOLUSDT", interval="1m", limit=30)
    start = recent[0][0]
    page = client.get_klines(symbol="SOLUSDT", interval="5m", startTime=start, limit=3)
    assert len(page) == 3
    assert page[0][0] >= start and page[1][0] - page[0][0] == 300_000
    err = api_error(lambda: client.get_klines(symbol="SOLUSDT", interval="7m"))
    assert err.code == -1120


# -- authentication and errors -------------------------------------------------------------


def test_wrong_secret_is_rejected_with_1022(exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys()
    bad = Client(keys.api_key, "0" * 64, ping=False)
    err = api_error(bad.get_account)
    assert (err.status_code, err.code) == (400, -1022)
    assert err.message == "Signature for this request is not valid."


def test_unknown_api_key_is_rejected_with_2015(exchange: PaperExchangeHandle) -> None:
    err = api_error(Client("f" * 64, "0" * 64, ping=False).get_account)
    assert (err.status_code, err.code) == (401, -2015)


def test_stale_timestamp_is_rejected_with_1021(client: Client) -> None:
    client.timestamp_offset = -11_000  # python-binance sends recvWindow=10000
    err = api_error(client.get_account)
    assert (err.status_code, err.code) == (400, -1021)
    client.timestamp_offset = 0
    assert client.get_account()["canTrade"] is True


def test_bad_parameters_get_binance_error_codes(client: Client) -> None:
    def order(**kw: Any) -> Callable[[], Any]:
        params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                  "quantity": "0.001", "price": "10000", **kw}
        return lambda: client.create_order(**{k: v for k, v in params.items() if v is not None})

    cases = {
        -1121: order(symbol="NOPEUSDT"),
        -1102: order(quantity=None),
        -1100: order(quantity="1e-3"),
        -1116: order(type="STOP"),
        -1117: order(side="HOLD"),
        -1115: order(timeInForce="GTD"),
    }
    for code, call in cases.items():
        err = api_error(call)
        assert (err.status_code, err.code) == (400, code), err.message
    assert api_error(order(quantity=None)).message == (
        "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")


@pytest.mark.parametrize(("kw", "filter_name"), [
    ({"quantity": "0.000015"}, "LOT_SIZE"),
    ({"quantity": "100000"}, "LOT_SIZE"),
    ({"price": "10000.001"}, "PRICE_FILTER"),
    ({"quantity": "0.0001", "price": "10000"}, "NOTIONAL"),
])
def test_orders_breaking_filters_get_1013(client: Client, kw: dict[str, str],
                                          filter_name: str) -> None:
    params = {"symbol": "BTCUSDT", "quantity": "0.001", "price": "10000", **kw}
    err = api_error(lambda: client.order_limit_buy(**params))
    assert (err.code, err.message) == (-1013, f"Filter failure: {filter_name}")


def test_insufficient_balance_and_duplicate_client_id_get_2010(
        exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys({"USDT": "100"})
    client = Client(keys.api_key, keys.secret_key, ping=False)
    err = api_error(lambda: client.order_limit_buy(symbol="ETHUSDT", quantity="1", price="200"))
    assert (err.code, err.message) == (-2010,
                                       "Account has insufficient balance for requested action.")
    client.order_limit_buy(symbol="ETHUSDT", quantity="0.1", price="100",
                           newClientOrderId="dup-1")
    err = api_error(lambda: client.order_limit_buy(symbol="ETHUSDT", quantity="0.1",
                                                   price="100", newClientOrderId="dup-1"))
    assert (err.code, err.message) == (-2010, "Duplicate order sent.")


def test_unknown_orders_get_2011_on_cancel_and_2013_on_query(client: Client) -> None:
    err = api_error(lambda: client.cancel_order(symbol="BTCUSDT", orderId=987654321))
    assert (err.status_code, err.code, err.message) == (400, -2011, "Unknown order sent.")
    err = api_error(lambda: client.get_order(symbol="BTCUSDT", origClientOrderId="nope"))
    assert (err.status_code, err.code, err.message) == (400, -2013, "Order does not exist.")


# -- trading ---------------------------------------------------------------------------------


def test_market_buy_fills_at_ask_with_commission_in_base(exchange: PaperExchangeHandle,
                                                         client: Client) -> None:
    exchange.set_price("BTCUSDT", "50000")
    before = balances(client)
    res = client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
    assert res["status"] == "FILLED" and res["type"] == "MARKET"
    assert res["executedQty"] == "0.01000000"
    [fill] = res["fills"]
    assert fill["price"] == "50005.00000000"  # 50,000 + 1 bp half spread
    assert (fill["commission"], fill["commissionAsset"]) == ("0.00001000", "BTC")
    assert res["cummulativeQuoteQty"] == "500.05000000"
    after = balances(client)
    assert after["USDT"][0] == before["USDT"][0] - D("500.05")
    assert after["BTC"][0] == before["BTC"][0] + D("0.01") - D("0.00001")
    [trade] = client.get_my_trades(symbol="BTCUSDT")
    assert trade["id"] == fill["tradeId"] and trade["isBuyer"] and not trade["isMaker"]


def test_market_sell_pays_commission_in_quote(exchange: PaperExchangeHandle,
                                              client: Client) -> None:
    exchange.set_price("ETHUSDT", "2000")
    before = balances(client)
    res = client.order_market_sell(symbol="ETHUSDT", quantity="0.1")
    [fill] = res["fills"]
    assert fill["price"] == "1999.80000000"
    assert (fill["commission"], fill["commissionAsset"]) == ("0.19998000", "USDT")
    after = balances(client)
    assert after["ETH"][0] == before["ETH"][0] - D("0.1")
    assert after["USDT"][0] == before["USDT"][0] + D("199.98") - D("0.19998")


def test_large_market_order_fills_in_three_trades(exchange: PaperExchangeHandle,
                                                  client: Client) -> None:
    exchange.set_price("SOLUSDT", "100")
    res = client.order_market_buy(symbol="SOLUSDT", quantity="20")
    assert [f["qty"] for f in res["fills"]] == ["10.00000000", "6.00000000", "4.00000000"]
    ids = [f["tradeId"] for f in res["fills"]]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert res["status"] == "FILLED"


def test_quote_order_qty_market_buy_spends_at_most_that(exchange: PaperExchangeHandle,
                                                        client: Client) -> None:
    exchange.set_price("LINKUSDT", "20")
    res = client.order_market_buy(symbol="LINKUSDT", quoteOrderQty="100")
    assert D(res["cummulativeQuoteQty"]) <= 100
    assert res["executedQty"] == "4.99000000"  # 100 / 20.002, floored to the 0.01 step


def test_limit_order_rests_locks_funds_and_fills_on_cross(exchange: PaperExchangeHandle,
                                                          client: Client) -> None:
    exchange.set_price("BNBUSDT", "600")
    before = balances(client)
    res = client.order_limit_buy(symbol="BNBUSDT", quantity="0.5", price="550",
                                 newClientOrderId="rest-1")
    assert (res["status"], res["fills"]) == ("NEW", [])
    assert balances(client)["USDT"] == (before["USDT"][0] - 275, D(275))
    [open_order] = client.get_open_orders(symbol="BNBUSDT")
    assert open_order["clientOrderId"] == "rest-1"

    exchange.set_price("BNBUSDT", "549.5")  # crosses: fills at the limit price (maker)
    order = client.get_order(symbol="BNBUSDT", origClientOrderId="rest-1")
    assert order["status"] == "FILLED" and order["cummulativeQuoteQty"] == "275.00000000"
    [trade] = client.get_my_trades(symbol="BNBUSDT", orderId=res["orderId"])
    assert trade["price"] == "550.00000000" and trade["isMaker"]
    after = balances(client)
    assert after["USDT"] == (before["USDT"][0] - 275, D(0))
    assert after["BNB"][0] == before["BNB"][0] + D("0.5") - D("0.0005")
    assert client.get_open_orders(symbol="BNBUSDT") == []


def test_limit_sell_fills_when_price_rises_to_it(exchange: PaperExchangeHandle,
                                                 client: Client) -> None:
    exchange.set_price("XRPUSDT", "1.4")
    res = client.order_limit_sell(symbol="XRPUSDT", quantity="100", price="1.5")
    assert balances(client)["XRP"][1] == 100
    exchange.set_price("XRPUSDT", "1.5")
    order = client.get_order(symbol="XRPUSDT", orderId=res["orderId"])
    assert order["status"] == "FILLED"
    assert balances(client)["XRP"][1] == 0


def test_capped_liquidity_partially_fills_then_cancel_releases_the_rest(
        exchange: PaperExchangeHandle, client: Client) -> None:
    exchange.set_price("BTCUSDT", "60000")
    res = client.order_limit_buy(symbol="BTCUSDT", quantity="0.1", price="55000")
    exchange.set_price("BTCUSDT", "54000", liquidity="0.04")
    order = client.get_order(symbol="BTCUSDT", orderId=res["orderId"])
    assert (order["status"], order["executedQty"]) == ("PARTIALLY_FILLED", "0.04000000")
    trades = client.get_my_trades(symbol="BTCUSDT", orderId=res["orderId"])
    assert [t["qty"] for t in trades] == ["0.02000000", "0.01200000", "0.00800000"]
    assert balances(client)["USDT"][1] == D("3300")  # 0.06 still locked at 55,000

    canceled = client.cancel_order(symbol="BTCUSDT", orderId=res["orderId"])
    assert (canceled["status"], canceled["executedQty"]) == ("CANCELED", "0.04000000")
    assert balances(client)["USDT"][1] == 0
    err = api_error(lambda: client.cancel_order(symbol="BTCUSDT", orderId=res["orderId"]))
    assert err.code == -2011


def test_ioc_fills_what_it_can_and_expires_the_rest(exchange: PaperExchangeHandle,
                                                    client: Client) -> None:
    exchange.set_price("ADAUSDT", "1.0000", liquidity="30")
    res = client.order_limit_buy(symbol="ADAUSDT", quantity="100", price="1.0100",
                                 timeInForce="IOC")
    assert (res["status"], res["executedQty"]) == ("EXPIRED", "30.00000000")
    assert res["fills"][0]["price"] == "1.00010000"  # taker at the ask
    assert balances(client)["USDT"][1] == 0
    res = client.order_limit_buy(symbol="ADAUSDT", quantity="100", price="0.5000",
                                 timeInForce="IOC")
    assert (res["status"], res["fills"]) == ("EXPIRED", [])


def test_fok_fills_entirely_or_not_at_all(exchange: PaperExchangeHandle,
                                          client: Client) -> None:
    exchange.set_price("DOGEUSDT", "0.40000", liquidity="500")
    res = client.order_limit_buy(symbol="DOGEUSDT", quantity="1000", price="0.41000",
                                 timeInForce="FOK")
    assert (res["status"], res["executedQty"], res["fills"]) == ("EXPIRED", "0.00000000", [])
    exchange.set_price("DOGEUSDT", "0.40000")
    res = client.order_limit_buy(symbol="DOGEUSDT", quantity="1000", price="0.41000",
                                 timeInForce="FOK")
    assert (res["status"], res["executedQty"]) == ("FILLED", "1000.00000000")


def test_limit_maker_that_would_cross_is_rejected(exchange: PaperExchangeHandle,
                                                  client: Client) -> None:
    exchange.set_price("ETHUSDT", "2000")
    err = api_error(lambda: client.create_order(symbol="ETHUSDT", side="BUY",
                                                type="LIMIT_MAKER", quantity="0.01",
                                                price="2100"))
    assert (err.code, err.message) == (-2010, "Order would immediately match and take.")


def test_response_types_and_cancel_by_client_id(exchange: PaperExchangeHandle,
                                                client: Client) -> None:
    exchange.set_price("ETHUSDT", "2000")
    ack = client.order_limit_buy(symbol="ETHUSDT", quantity="0.01", price="1500",
                                 newClientOrderId="ack-1", newOrderRespType="ACK")
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = client.order_limit_buy(symbol="ETHUSDT", quantity="0.01", price="1500",
                                    newClientOrderId="res-1", newOrderRespType="RESULT")
    assert result["status"] == "NEW" and "fills" not in result
    assert result["orderId"] > ack["orderId"]
    canceled = client.cancel_order(symbol="ETHUSDT", origClientOrderId="ack-1")
    assert canceled["origClientOrderId"] == "ack-1" and canceled["status"] == "CANCELED"
    statuses = {o["clientOrderId"]: o["status"] for o in client.get_all_orders(symbol="ETHUSDT")}
    assert statuses == {"ack-1": "CANCELED", "res-1": "NEW"}
    # Once closed, a client order id may be used again.
    client.order_limit_buy(symbol="ETHUSDT", quantity="0.01", price="1500",
                           newClientOrderId="ack-1")


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "status", "code"), [("error503", 503, -1001),
                                                     ("timeout", 408, -1007)])
def test_fault_fails_order_calls_for_its_duration(exchange: PaperExchangeHandle, client: Client,
                                                  mode: str, status: int, code: int) -> None:
    exchange.set_fault(mode, 30)
    err = api_error(lambda: client.order_market_buy(symbol="ETHUSDT", quantity="0.01"))
    assert (err.status_code, err.code) == (status, code)
    assert client.get_all_orders(symbol="ETHUSDT") == []  # not executed
    assert client.get_open_orders(symbol="ETHUSDT") == []  # other endpoints still work
    exchange.clear_faults()
    assert client.order_market_buy(symbol="ETHUSDT", quantity="0.01")["status"] == "FILLED"


def test_hang_fault_times_out_but_can_still_execute_the_order(exchange: PaperExchangeHandle,
                                                              client: Client) -> None:
    exchange.set_price("ETHUSDT", "2000")
    exchange.set_fault("hang", 1.5, execute=True)
    client.REQUEST_TIMEOUT = 0.3
    with pytest.raises(requests.exceptions.Timeout):
        client.order_limit_buy(symbol="ETHUSDT", quantity="0.01", price="1000",
                               newClientOrderId="lost-ack")
    client.REQUEST_TIMEOUT = 10
    time.sleep(1.5)  # the order endpoint hangs until the window ends
    order = client.get_order(symbol="ETHUSDT", origClientOrderId="lost-ack")
    assert order["status"] == "NEW"


# -- websockets ------------------------------------------------------------------------------


def test_user_data_stream_reports_new_trade_and_canceled(exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys()
    exchange.set_price("LINKUSDT", "20")

    async def scenario() -> list[dict[str, Any]]:
        client = await AsyncClient.create(keys.api_key, keys.secret_key)
        # Closing waits for the WS-API read loop's recv timeout (10 s by default): shorten it.
        client.ws_api.TIMEOUT = 1
        try:
            bm = BinanceSocketManager(client)
            async with bm.user_socket() as stream:
                await client.order_limit_buy(symbol="LINKUSDT", quantity="1", price="19",
                                             newClientOrderId="uds-1")
                await client.order_market_buy(symbol="LINKUSDT", quantity="1")
                await client.cancel_order(symbol="LINKUSDT", origClientOrderId="uds-1")
                events: list[dict[str, Any]] = []
                # 4 reports; 3 balance updates (lock, trade, unlock: a MARKET NEW moves none)
                while len(events) < 7:
                    events.append(await asyncio.wait_for(stream.recv(), 5))
                return events
        finally:
            await client.close_connection()

    events = asyncio.run(scenario())
    reports = [(e["c"], e["x"], e["X"]) for e in events if e["e"] == "executionReport"]
    assert reports[0] == ("uds-1", "NEW", "NEW")
    assert [r[1:] for r in reports[1:3]] == [("NEW", "NEW"), ("TRADE", "FILLED")]
    assert reports[3][1:] == ("CANCELED", "CANCELED")
    canceled = next(e for e in events if e.get("x") == "CANCELED")
    assert canceled["C"] == "uds-1"
    trade = next(e for e in events if e.get("x") == "TRADE")
    assert (trade["L"], trade["l"], trade["N"]) == ("20.00200000", "1.00000000", "LINK")
    positions = [e for e in events if e["e"] == "outboundAccountPosition"]
    assert [sorted(b["a"] for b in p["B"]) for p in positions] == [
        ["USDT"], ["LINK", "USDT"], ["USDT"]]
    assert positions[-1]["B"][0]["l"] == "0.00000000"


def test_user_data_stream_with_a_wrong_secret_is_refused(exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys()

    async def scenario() -> None:
        client = await AsyncClient.create(keys.api_key, "0" * 64)
        client.ws_api.TIMEOUT = 1
        try:
            async with BinanceSocketManager(client).user_socket():
                pass
        finally:
            await client.close_connection()

    with pytest.raises(BinanceAPIException) as info:
        asyncio.run(scenario())
    assert info.value.code == -1022


def test_user_data_events_go_to_each_subscription_until_it_unsubscribes(
        exchange: PaperExchangeHandle) -> None:
    keys = exchange.issue_keys()
    client = Client(keys.api_key, keys.secret_key, ping=False)
    exchange.set_price("ADAUSDT", "0.5")

    def signed(api_key: str, secret: str) -> dict[str, Any]:
        params: dict[str, Any] = {"apiKey": api_key, "timestamp": int(time.time() * 1000)}
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        params["signature"] = hmac.new(secret.encode(), payload.encode(),
                                       hashlib.sha256).hexdigest()
        return params

    async def call(ws: aiohttp.ClientWebSocketResponse, req_id: int, method: str,
                   params: dict[str, Any]) -> Any:
        await ws.send_str(json.dumps({"id": req_id, "method": method, "params": params}))
        reply = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
        assert reply["id"] == req_id and reply["status"] == 200, reply
        return reply["result"]

    async def events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[tuple[int, str]]:
        got = [json.loads(await asyncio.wait_for(ws.receive_str(), 5)) for _ in range(count)]
        return [(m["subscriptionId"], m["event"]["e"]) for m in got]

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(exchange.ws_api_url) as ws, \
                session.ws_connect(exchange.ws_api_url) as other:
            subscribe = "userDataStream.subscribe.signature"
            assert await call(ws, 1, subscribe, signed(keys.api_key, keys.secret_key)) == {
                "subscriptionId": 0}
            assert await call(ws, 2, subscribe, signed(keys.api_key, keys.secret_key)) == {
                "subscriptionId": 1}
            await call(other, 1, subscribe, signed(keys.api_key, keys.secret_key))
            await asyncio.to_thread(client.order_market_buy, symbol="ADAUSDT", quantity="20")
            # NEW and TRADE reports plus one position, to each of the two subscriptions
            assert sorted(await events(ws, 6)) == sorted(
                [(0, "executionReport")] * 2 + [(0, "outboundAccountPosition")]
                + [(1, "executionReport")] * 2 + [(1, "outboundAccountPosition")])
            assert [e for _, e in await events(other, 3)] == [
                "executionReport", "executionReport", "outboundAccountPosition"]
            assert await call(ws, 3, "userDataStream.unsubscribe", {"subscriptionId": 0}) == {}
            await call(other, 2, "userDataStream.unsubscribe", {})
            await asyncio.to_thread(client.order_market_sell, symbol="ADAUSDT", quantity="20")
            assert [i for i, _ in await events(ws, 3)] == [1, 1, 1]
            assert await call(ws, 4, "session.subscriptions", {}) == [{"subscriptionId": 1}]
            assert await call(other, 3, "session.subscriptions", {}) == []

    try:
        asyncio.run(scenario())
    finally:
        client.close_connection()


def test_kline_and_ticker_streams_deliver_updates(exchange: PaperExchangeHandle) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        client = await AsyncClient.create()
        try:
            bm = BinanceSocketManager(client)
            async with bm.kline_socket("BTCUSDT", interval="1m") as stream:
                klines = [await asyncio.wait_for(stream.recv(), 5) for _ in range(3)]
            async with bm.multiplex_socket(["ethusdt@ticker", "solusdt@kline_1h"]) as stream:
                combined = await asyncio.wait_for(stream.recv(), 5)
            return klines, combined
        finally:
            await client.close_connection()

    klines, combined = asyncio.run(scenario())
    for msg in klines:
        assert msg["e"] == "kline" and msg["s"] == "BTCUSDT"
        k = msg["k"]
        assert k["i"] == "1m" and k["T"] - k["t"] == 59_999 and k["x"] is False
        assert D(k["l"]) <= D(k["c"]) <= D(k["h"])
    assert combined["stream"] in ("ethusdt@ticker", "solusdt@kline_1h")
    assert combined["data"]["e"] in ("24hrTicker", "kline")


# -- persistence -----------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"

    def connect(server: BackgroundPaperExchange) -> Client:
        monkeypatch.setattr(Client, "API_URL", server.url + "/api")
        return Client(keys.api_key, keys.secret_key, ping=False)

    with BackgroundPaperExchange(state, history_days=1, tick_ms=1000) as first:
        handle = PaperExchangeHandle(first)
        keys = handle.issue_keys()
        handle.set_price("ETHUSDT", "2000")
        client = connect(first)
        filled = client.order_market_buy(symbol="ETHUSDT", quantity="0.5")
        resting = client.order_limit_buy(symbol="ETHUSDT", quantity="1", price="1000")
        account_before = balances(client)
        history_before = client.get_klines(symbol="BTCUSDT", interval="1h", limit=10)[:-1]

    with BackgroundPaperExchange(state, history_days=1, tick_ms=1000) as second:
        client = connect(second)
        assert balances(client) == account_before
        [open_order] = client.get_open_orders(symbol="ETHUSDT")
        assert open_order["orderId"] == resting["orderId"]
        assert D(client.get_symbol_ticker(symbol="ETHUSDT")["price"]) == 2000  # still pinned
        assert client.get_order(symbol="ETHUSDT", orderId=filled["orderId"])["status"] == "FILLED"
        history_after = client.get_klines(symbol="BTCUSDT", interval="1h",
                                          startTime=history_before[0][0],
                                          limit=len(history_before))
        assert history_after == history_before
        again = client.order_market_buy(symbol="ETHUSDT", quantity="0.01")
        assert again["orderId"] > resting["orderId"]
        assert again["fills"][0]["tradeId"] > filled["fills"][-1]["tradeId"]


def test_committed_orders_survive_a_crash_and_ids_keep_growing(tmp_path: Path) -> None:
    # Order and trade ids are not counted in a meta row: they continue from the stored ones.
    proc, url = start_subprocess(tmp_path / "crash", history_days=1)
    try:
        keys = request_keys(url)
        client = Client(keys.api_key, keys.secret_key, ping=False)
        client.API_URL = url + "/api"
        filled = [client.order_market_buy(symbol="ETHUSDT", quantity="0.01") for _ in range(3)]
        resting = client.order_limit_buy(symbol="ETHUSDT", quantity="1", price="10")
        account_before = balances(client)
    finally:
        proc.kill()  # SIGKILL: no shutdown, only what was committed is there
        proc.wait(10)
    proc, url = start_subprocess(tmp_path / "crash", history_days=1)
    try:
        client.API_URL = url + "/api"
        assert balances(client) == account_before
        assert [o["orderId"] for o in client.get_all_orders(symbol="ETHUSDT")] == [
            *(f["orderId"] for f in filled), resting["orderId"]]
        assert [t["id"] for t in client.get_my_trades(symbol="ETHUSDT")] == [
            f["fills"][0]["tradeId"] for f in filled]
        again = client.order_market_buy(symbol="ETHUSDT", quantity="0.01")
        assert again["orderId"] == resting["orderId"] + 1
        assert again["fills"][0]["tradeId"] == filled[-1]["fills"][0]["tradeId"] + 1
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.parametrize("record", [Order, Trade])
def test_stored_records_keep_every_field(record: type[Order] | type[Trade]) -> None:
    # to_json is spelled out field by field (cheaper than asdict): it must not miss one.
    values: dict[str, Any] = {f.name: Decimal("1.5") if f.type == "Decimal" else f.name
              for f in dataclasses.fields(record)}
    item = record(**values)
    assert list(item.to_json()) == [f.name for f in dataclasses.fields(record)]
    assert record.from_json(json.loads(json.dumps(item.to_json()))) == item


def test_module_entry_point_serves_in_a_subprocess(tmp_path: Path) -> None:
    proc, url = start_subprocess(tmp_path / "sub", history_days=1)
    try:
        keys = request_keys(url, {"USDT": "10"})
        client = Client(keys.api_key, keys.secret_key, ping=False)
        client.API_URL = url + "/api"
        assert balances(client) == {"USDT": (D(10), D(0))}
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
