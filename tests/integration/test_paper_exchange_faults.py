"""The paper exchange's Binance failure modes, through python-binance's real Client over HTTP
and raw WS-API websockets: late execution, query lag, rate limits and bans, exchangeInfo
changes, the Testnet reset, WS-API connection events and the admin controls.

The module runs its own exchange: these tests squeeze limits, close markets and wipe every
order, which must not reach the session's shared exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import requests
from binance import Client
from binance.exceptions import BinanceAPIException

from adapters.paper_exchange import BackgroundPaperExchange
from adapters.paper_exchange.server import ADMIN_TOKEN_HEADER
from tests.support.paper_exchange import binance_module_marks

pytestmark = binance_module_marks(timeout=90)

D = Decimal
BINANCE_LIMITS = {"weightPerMinute": 6000, "ordersPer10s": 100, "ordersPerDay": 200000,
                  "banSeconds": 120, "backoffTolerance": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundPaperExchange]:
    """A paper exchange of this module's own, with the default (Testnet-like) settings."""
    state_dir: Path = tmp_path_factory.mktemp("paper-faults")
    exchange = BackgroundPaperExchange(state_dir, tick_ms=100, history_days=1).start()
    try:
        yield exchange
    finally:
        exchange.stop()


@pytest.fixture
def url(server: BackgroundPaperExchange, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The exchange's base URL, python-binance pointed at it, every setting restored after."""
    monkeypatch.setattr(Client, "API_URL", server.url + "/api")
    yield server.url
    admin(server.url, "/admin/faults", {"mode": "none"})
    admin(server.url, "/admin/limits", BINANCE_LIMITS)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        admin(server.url, "/admin/exchange-info", {"symbol": symbol, "status": "TRADING"})
        admin(server.url, "/admin/price", {"symbol": symbol, "price": price(server.url, symbol),
                                           "freeze": False})


def admin(url: str, path: str, body: dict[str, Any] | None = None,
          status: int = 200) -> Any:
    """POST (or GET without a body) an admin endpoint and check its status."""
    if body is None:
        response = requests.get(url + path, timeout=10)
    else:
        response = requests.post(url + path, json=body, timeout=10)
    assert response.status_code == status, response.text
    return response.json()


def price(url: str, symbol: str) -> str:
    """Return a symbol's last price."""
    return str(requests.get(url + "/api/v3/ticker/price", params={"symbol": symbol},
                            timeout=5).json()["price"])


def new_client(url: str) -> Client:
    """Issue a default-funded key pair and return a Client for it."""
    keys = admin(url, "/admin/keys", {})
    return Client(keys["apiKey"], keys["secretKey"], ping=False)


def api_error(call: Callable[[], Any]) -> BinanceAPIException:
    """Run a call that must fail and return the Binance error it raised."""
    with pytest.raises(BinanceAPIException) as info:
        call()
    return info.value


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    """Poll `check` until it holds (fails the test after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def early_in_window(seconds: int, room: float) -> None:
    """Wait until at least `room` seconds are left in the current fixed window."""
    while seconds - time.time() % seconds < room:
        time.sleep(0.1)


def ws_signed(api_key: str, secret: str, **extra: Any) -> dict[str, Any]:
    """Sign WS-API params as python-binance does: HMAC over the sorted, encoded params."""
    params: dict[str, Any] = {"apiKey": api_key, "timestamp": int(time.time() * 1000), **extra}
    params["signature"] = hmac.new(secret.encode(), urlencode(sorted(params.items())).encode(),
                                   hashlib.sha256).hexdigest()
    return params


async def ws_call(ws: aiohttp.ClientWebSocketResponse, req_id: int, method: str,
                  params: dict[str, Any]) -> dict[str, Any]:
    """Send one WS-API request and return its reply (skipping pushed events)."""
    await ws.send_str(json.dumps({"id": req_id, "method": method, "params": params}))
    while True:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
        if reply.get("id") == req_id:
            return reply


@contextlib.asynccontextmanager
async def user_stream(url: str, api_key: str, secret: str
                      ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A WS-API connection with the key's user-data stream subscribed (checked)."""
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url.replace("http", "ws") + "/ws-api/v3") as ws:
        reply = await ws_call(ws, 1, "userDataStream.subscribe.signature",
                              ws_signed(api_key, secret))
        assert reply["status"] == 200, reply
        yield ws


def keys_of(client: Client) -> tuple[str, str]:
    """Return a Client's key pair."""
    return str(client.API_KEY), str(client.API_SECRET)


# -- late execution and query lag --------------------------------------------------------


def test_late_order_answers_1007_and_exists_only_after_its_delay(url: str) -> None:
    client = new_client(url)
    admin(url, "/admin/faults", {"mode": "late", "seconds": 5, "delayMs": 1500})
    cid = "late-" + "a1" * 8
    err = api_error(lambda: client.order_market_buy(symbol="ETHUSDT", quantity="0.01",
                                                    newClientOrderId=cid))
    assert (err.status_code, err.code) == (503, -1007)
    assert err.message == ("Timeout waiting for response from backend server. Send status "
                           "unknown; execution status unknown.")
    # Not there yet, for any query
    assert api_error(lambda: client.get_order(symbol="ETHUSDT",
                                              origClientOrderId=cid)).code == -2013
    assert client.get_all_orders(symbol="ETHUSDT") == []
    assert client.get_my_trades(symbol="ETHUSDT") == []
    assert admin(url, "/admin/orders?clientOrderId=" + cid) == []
    wait_for(lambda: len(admin(url, "/admin/orders?clientOrderId=" + cid)) == 1, 5)
    order = client.get_order(symbol="ETHUSDT", origClientOrderId=cid)
    assert order["status"] == "FILLED"
    assert len(client.get_my_trades(symbol="ETHUSDT")) == 1


def test_late_order_reports_its_events_when_it_executes(url: str) -> None:
    client = new_client(url)
    api_key, secret = keys_of(client)
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})

    async def scenario() -> None:
        async with user_stream(url, api_key, secret) as ws:
            admin(url, "/admin/faults", {"mode": "late", "seconds": 5, "delayMs": 1000})
            sent = time.monotonic()
            err = await asyncio.to_thread(api_error, lambda: client.order_limit_buy(
                symbol="BTCUSDT", quantity="0.001", price="40000"))
            assert err.code == -1007
            assert client.get_open_orders(symbol="BTCUSDT") == []
            event = json.loads(await asyncio.wait_for(ws.receive_str(), 5))["event"]
            assert (event["e"], event["x"]) == ("executionReport", "NEW")
            assert time.monotonic() - sent >= 0.9
            assert len(client.get_open_orders(symbol="BTCUSDT")) == 1

    asyncio.run(scenario())


def test_query_lag_hides_new_orders_from_queries_but_not_from_the_stream(url: str) -> None:
    client = new_client(url)
    api_key, secret = keys_of(client)
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})

    async def scenario() -> None:
        async with user_stream(url, api_key, secret) as ws:
            admin(url, "/admin/faults", {"mode": "query_lag", "seconds": 5, "lagMs": 1500})
            placed = await asyncio.to_thread(client.order_limit_buy, symbol="BTCUSDT",
                                             quantity="0.001", price="40000")
            event = json.loads(await asyncio.wait_for(ws.receive_str(), 5))["event"]
            assert (event["e"], event["i"]) == ("executionReport", placed["orderId"])
            ref = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
            assert api_error(lambda: client.get_order(**ref)).code == -2013
            assert client.get_open_orders(symbol="BTCUSDT") == []
            assert client.get_all_orders(symbol="BTCUSDT") == []
            await asyncio.sleep(1.6)
            assert client.get_order(**ref)["status"] == "NEW"
            assert [o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == [
                placed["orderId"]]

    asyncio.run(scenario())


def test_faults_admin_refuses_unknown_modes_and_bad_numbers(url: str) -> None:
    assert admin(url, "/admin/faults", {"mode": "sideways"}, 400)["code"] == -1100
    assert admin(url, "/admin/faults", {"mode": "late", "seconds": 1, "delayMs": 16000},
                 400)["code"] == -1100
    assert admin(url, "/admin/faults", {"mode": "query_lag", "seconds": 1, "lagMs": "x"},
                 400)["code"] == -1100
    shown = admin(url, "/admin/faults", {"mode": "late", "seconds": 3, "delayMs": 10})
    assert shown["mode"] == "late" and shown["delayMs"] == 10
    assert admin(url, "/admin/faults")["late"]["mode"] == "late"


# -- rate limits ------------------------------------------------------------------------


def test_every_response_carries_the_used_weight_and_orders_their_counts(url: str) -> None:
    client = new_client(url)
    info = client.get_exchange_info()
    assert {(r["rateLimitType"], r["interval"], r["intervalNum"], r["limit"])
            for r in info["rateLimits"]} >= {("REQUEST_WEIGHT", "MINUTE", 1, 6000),
                                              ("ORDERS", "SECOND", 10, 100),
                                              ("ORDERS", "DAY", 1, 200000)}
    early_in_window(60, 5)
    client.ping()
    before = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    client.get_account()
    assert int(client.response.headers["X-MBX-USED-WEIGHT-1M"]) == before + 20
    early_in_window(10, 3)
    client.order_market_buy(symbol="ETHUSDT", quantity="0.01")
    client.order_market_buy(symbol="ETHUSDT", quantity="0.01")
    assert client.response.headers["X-MBX-ORDER-COUNT-10S"] == "2"
    assert client.response.headers["X-MBX-ORDER-COUNT-1D"] == "2"
    assert "X-MBX-USED-WEIGHT-1M" in requests.get(url + "/api/v3/ping", timeout=5).headers


def test_orders_over_the_limit_get_429_then_a_growing_ban(url: str) -> None:
    admin(url, "/admin/limits", {"ordersPer10s": 3, "banSeconds": 30})
    client = new_client(url)
    early_in_window(10, 6)
    for _ in range(3):
        client.order_market_buy(symbol="ETHUSDT", quantity="0.01")
    err = api_error(lambda: client.order_market_buy(symbol="ETHUSDT", quantity="0.01"))
    assert (err.status_code, err.code) == (429, -1015)
    assert err.message == "Too many new orders; current limit is 3 orders per TEN_SECONDS."
    assert 1 <= int(err.response.headers["Retry-After"]) <= 10
    assert admin(url, "/admin/limits")["bans"] == 0
    # Keep sending while told to back off (past the 1 s grace for requests already in
    # flight): two more 429s are tolerated, then the IP is banned.
    time.sleep(1.1)
    codes = [api_error(lambda: client.order_market_buy(symbol="ETHUSDT", quantity="0.01"))
             for _ in range(3)]
    assert [c.status_code for c in codes] == [429, 429, 418]
    assert codes[-1].code == -1003
    assert codes[-1].message.startswith("Way too much request weight used; IP banned until ")
    assert codes[-1].response.headers["Retry-After"] == "30"
    # Banned: every request of the IP, even a ping, until the ban ends
    assert requests.get(url + "/api/v3/ping", timeout=5).status_code == 418
    limits = admin(url, "/admin/limits")
    assert limits["bans"] == 1 and limits["ordersPer10s"] == 3
    assert list(limits["banned"].values()) and max(limits["banned"].values()) <= 30


def test_weight_over_the_limit_gets_429_with_binance_message(url: str) -> None:
    admin(url, "/admin/limits", {"weightPerMinute": 50})
    client = new_client(url)
    early_in_window(60, 10)
    client.get_exchange_info()  # 20
    client.get_exchange_info()  # 40
    err = api_error(client.get_exchange_info)  # 60 > 50
    assert (err.status_code, err.code) == (429, -1003)
    assert err.message == ("Too much request weight used; current limit is 50 request weight "
                           "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                           "polling the API.")
    assert 1 <= int(err.response.headers["Retry-After"]) <= 60
    assert admin(url, "/admin/limits")["weight"]["127.0.0.1"] >= 60
    # The admin controls are not rate-limited
    assert admin(url, "/admin/faults")["mode"] == "none"


def test_ws_api_counts_weight_and_answers_rate_limits(url: str) -> None:
    admin(url, "/admin/limits", {"weightPerMinute": 3})
    early_in_window(60, 5)

    async def scenario() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url.replace("http", "ws") + "/ws-api/v3") as ws:
            return [await ws_call(ws, i, "ping", {}) for i in range(4)]

    replies = asyncio.run(scenario())
    assert [r["status"] for r in replies] == [200, 200, 200, 429]
    assert replies[0]["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert replies[2]["rateLimits"][0]["count"] == 3
    assert replies[3]["error"]["code"] == -1003


def test_limits_admin_refuses_unknown_settings(url: str) -> None:
    assert admin(url, "/admin/limits", {"ordersPerMinute": 5}, 400)["code"] == -1100
    assert admin(url, "/admin/limits", {"ordersPer10s": 0}, 400)["code"] == -1100
    assert admin(url, "/admin/limits", {"ordersPer10s": 7})["ordersPer10s"] == 7
    info = requests.get(url + "/api/v3/exchangeInfo", timeout=5).json()
    assert {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
            "limit": 7} in info["rateLimits"]


# -- exchangeInfo changes and filters ----------------------------------------------------


def test_symbol_status_changes_at_once_and_closed_markets_refuse_orders(url: str) -> None:
    client = new_client(url)
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})
    resting = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="40000")
    admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT", "status": "BREAK"})
    assert client.get_symbol_info("BTCUSDT")["status"] == "BREAK"
    err = api_error(lambda: client.order_market_buy(symbol="BTCUSDT", quantity="0.001"))
    assert (err.code, err.message) == (-1013, "Market is closed.")
    assert api_error(lambda: client.cancel_order(symbol="BTCUSDT",
                                                 orderId=resting["orderId"])).code == -1013
    # A closed market does not trade: crossing its price fills nothing
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "39000", "freeze": True})
    assert client.get_order(symbol="BTCUSDT", orderId=resting["orderId"])["status"] == "NEW"
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})
    admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT", "status": "CANCEL_ONLY"})
    assert api_error(lambda: client.order_market_buy(symbol="BTCUSDT",
                                                     quantity="0.001")).code == -1013
    assert client.cancel_order(symbol="BTCUSDT", orderId=resting["orderId"])["status"] == (
        "CANCELED")
    admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT", "status": "TRADING"})
    assert client.order_market_buy(symbol="BTCUSDT", quantity="0.001")["status"] == "FILLED"


def test_filters_change_at_run_time_and_are_enforced(url: str) -> None:
    client = new_client(url)
    admin(url, "/admin/price", {"symbol": "ETHUSDT", "price": "3000", "freeze": True})
    changed = admin(url, "/admin/exchange-info", {"symbol": "ETHUSDT", "filters": [
        {"filterType": "LOT_SIZE", "minQty": "0.01", "maxQty": "100", "stepSize": "0.01"},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "1.2",
         "bidMultiplierDown": "0.8", "askMultiplierUp": "1.2", "askMultiplierDown": "0.8",
         "avgPriceMins": 0},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0", "maxQty": "0.5", "stepSize": "0"},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 2}]})
    assert {f["filterType"] for f in changed["filters"]} >= {"PERCENT_PRICE_BY_SIDE",
                                                              "MARKET_LOT_SIZE",
                                                              "MAX_NUM_ORDERS"}
    served = {f["filterType"]: f for f in client.get_symbol_info("ETHUSDT")["filters"]}
    assert served["LOT_SIZE"]["stepSize"] == "0.01000000"
    assert served["MAX_NUM_ORDERS"]["maxNumOrders"] == 2

    def failure(call: Callable[[], Any]) -> str:
        err = api_error(call)
        assert err.code == -1013
        return err.message

    assert failure(lambda: client.order_limit_buy(
        symbol="ETHUSDT", quantity="0.015", price="2900")) == "Filter failure: LOT_SIZE"
    assert failure(lambda: client.order_limit_buy(
        symbol="ETHUSDT", quantity="0.01", price="2000")) == (
        "Filter failure: PERCENT_PRICE_BY_SIDE")
    assert failure(lambda: client.order_limit_sell(
        symbol="ETHUSDT", quantity="0.01", price="4000")) == (
        "Filter failure: PERCENT_PRICE_BY_SIDE")
    assert failure(lambda: client.order_market_buy(
        symbol="ETHUSDT", quantity="0.6")) == "Filter failure: MARKET_LOT_SIZE"
    client.order_limit_buy(symbol="ETHUSDT", quantity="0.01", price="2900")
    client.order_limit_buy(symbol="ETHUSDT", quantity="0.01", price="2901")
    assert failure(lambda: client.order_limit_buy(
        symbol="ETHUSDT", quantity="0.01", price="2902")) == "Filter failure: MAX_NUM_ORDERS"
    # Other symbols keep their filters
    assert client.order_market_buy(symbol="BTCUSDT", quantity="0.001")["status"] == "FILLED"
    admin(url, "/admin/exchange-info", {"symbol": "ETHUSDT", "filters": [
        {"filterType": "LOT_SIZE", "minQty": "0.0001", "maxQty": "9000", "stepSize": "0.0001"},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "1000",
         "bidMultiplierDown": "0.001", "askMultiplierUp": "1000", "askMultiplierDown": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": "0"},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200}]})


def test_exchange_info_admin_refuses_bad_changes(url: str) -> None:
    assert admin(url, "/admin/exchange-info", {"symbol": "NOPEUSDT", "status": "BREAK"},
                 400)["code"] == -1121
    assert admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT", "status": "NAP"},
                 400)["code"] == -1100
    assert admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT", "filters": [
        {"filterType": "ICEBERG_PARTS", "limit": 10}]}, 400)["code"] == -1100
    assert admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT", "filters": [
        {"filterType": "LOT_SIZE", "stepSize": "0"}]}, 400)["code"] == -1100
    assert admin(url, "/admin/exchange-info", {"symbol": "BTCUSDT"}, 400)["code"] == -1102


def test_too_many_decimals_get_1111(url: str) -> None:
    client = new_client(url)
    err = api_error(lambda: client.order_market_buy(symbol="BTCUSDT", quantity="0.000010001"))
    assert (err.code, err.message) == (-1111, "Parameter 'quantity' has too much precision.")
    err = api_error(lambda: client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                                   price="50000.000000001"))
    assert (err.code, err.message) == (-1111, "Parameter 'price' has too much precision.")


def test_commission_is_zero_by_default_and_set_by_admin(url: str) -> None:
    client = new_client(url)
    fill = client.order_market_buy(symbol="ETHUSDT", quantity="0.01")["fills"][0]
    assert D(fill["commission"]) == 0
    assert admin(url, "/admin/commission", {"rate": "0.001"}) == {"rate": "0.001"}
    try:
        fill = client.order_market_buy(symbol="ETHUSDT", quantity="0.01")["fills"][0]
        assert D(fill["commission"]) == D("0.00001")
        assert client.get_account()["takerCommission"] == 10
    finally:
        admin(url, "/admin/commission", {"rate": "0"})
    assert admin(url, "/admin/commission", {"rate": "2"}, 400)["code"] == -1100


# -- reset, WS-API events, admin orders -------------------------------------------------


def test_reset_wipes_orders_and_trades_and_refunds_balances(url: str) -> None:
    client = new_client(url)
    api_key, secret = keys_of(client)
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})
    funded = {b["asset"]: b["free"] for b in client.get_account()["balances"]}
    resting = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="40000")
    client.order_market_buy(symbol="BTCUSDT", quantity="0.001")

    async def scenario() -> None:
        async with user_stream(url, api_key, secret) as ws:
            result = await asyncio.to_thread(admin, url, "/admin/reset", {})
            assert result["ordersRemoved"] >= 2 and result["connectionsClosed"] >= 1
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING)

    asyncio.run(scenario())
    ref = {"symbol": "BTCUSDT", "orderId": resting["orderId"]}
    assert api_error(lambda: client.get_order(**ref)).code == -2013
    assert api_error(lambda: client.cancel_order(**ref)).code == -2011
    assert client.get_open_orders() == []
    assert client.get_my_trades(symbol="BTCUSDT") == []
    assert {b["asset"]: b["free"] for b in client.get_account()["balances"]} == funded
    # Ids keep growing after a reset
    assert client.order_market_buy(symbol="BTCUSDT", quantity="0.001")["orderId"] > (
        resting["orderId"])


def test_server_shutdown_and_stream_terminated_events(url: str) -> None:
    client = new_client(url)
    api_key, secret = keys_of(client)

    async def scenario() -> None:
        async with user_stream(url, api_key, secret) as ws:
            ended = await asyncio.to_thread(admin, url, "/admin/ws",
                                            {"event": "eventStreamTerminated"})
            assert ended["subscriptions"] >= 1
            msg = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
            assert msg["subscriptionId"] == 0 and msg["event"]["e"] == "eventStreamTerminated"
            assert (await ws_call(ws, 2, "session.subscriptions", {}))["result"] == []
            sent = await asyncio.to_thread(admin, url, "/admin/ws",
                                           {"event": "serverShutdown", "closeAfterMs": 200})
            assert sent["connections"] >= 1
            msg = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
            assert list(msg) == ["event"] and msg["event"]["e"] == "serverShutdown"
            assert isinstance(msg["event"]["E"], int)
            closing = await asyncio.wait_for(ws.receive(), 5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.CLOSING)

    asyncio.run(scenario())
    assert admin(url, "/admin/ws", {"event": "reboot"}, 400)["code"] == -1100


def test_admin_orders_finds_client_order_ids_across_keys(url: str) -> None:
    one, two = new_client(url), new_client(url)
    hex_id = "0123456789abcdef0123456789abcdef"
    one.order_market_buy(symbol="ETHUSDT", quantity="0.01", newClientOrderId="tl-" + hex_id)
    two.order_market_buy(symbol="ETHUSDT", quantity="0.01", newClientOrderId="x" + hex_id)
    two.order_market_buy(symbol="ETHUSDT", quantity="0.01", newClientOrderId="unrelated")
    found = admin(url, "/admin/orders?clientOrderId=" + hex_id.upper())
    assert sorted(o["clientOrderId"] for o in found) == ["tl-" + hex_id, "x" + hex_id]
    assert {o["apiKey"] for o in found} == {keys_of(one)[0], keys_of(two)[0]}
    assert requests.get(url + "/admin/orders", timeout=5).status_code == 400


# -- signatures, WS recvWindow, admin token ---------------------------------------------


def test_signature_counts_only_over_the_payload_as_sent(url: str) -> None:
    client = new_client(url)
    api_key, secret = keys_of(client)
    params = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01",
              "newClientOrderId": "a:b", "timestamp": str(int(time.time() * 1000))}
    sent = urlencode(params)  # "a%3Ab"
    unencoded = "&".join(f"{k}={v}" for k, v in params.items())  # "a:b"

    def post(signed: str) -> requests.Response:
        signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        return requests.post(url + "/api/v3/order", data=sent + "&signature=" + signature,
                             headers={"X-MBX-APIKEY": api_key,
                                      "Content-Type": "application/x-www-form-urlencoded"},
                             timeout=5)

    refused = post(unencoded)
    assert refused.status_code == 400 and refused.json()["code"] == -1022
    assert post(sent).status_code == 200


def test_ws_api_caps_recv_window(url: str) -> None:
    client = new_client(url)
    api_key, secret = keys_of(client)

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url.replace("http", "ws") + "/ws-api/v3") as ws:
            return await ws_call(ws, 1, "userDataStream.subscribe.signature",
                                 ws_signed(api_key, secret, recvWindow=60001))

    reply = asyncio.run(scenario())
    assert reply["status"] == 400 and reply["error"]["code"] == -1131


def test_admin_token_is_required_once_configured(tmp_path: Path) -> None:
    with BackgroundPaperExchange(tmp_path / "token", history_days=1,
                                 admin_token="s3cret-token") as server:
        refused = requests.post(server.url + "/admin/keys", json={}, timeout=5)
        assert refused.status_code == 403
        assert "s3cret" not in refused.text
        wrong = requests.post(server.url + "/admin/keys", json={}, timeout=5,
                              headers={ADMIN_TOKEN_HEADER: "guess"})
        assert wrong.status_code == 403
        ok = requests.post(server.url + "/admin/keys", json={}, timeout=5,
                           headers={ADMIN_TOKEN_HEADER: "s3cret-token"})
        assert ok.status_code == 200 and ok.json()["apiKey"]
