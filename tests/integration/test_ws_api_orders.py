"""Orders over Binance's WebSocket API: the paper exchange's order.place / order.cancel /
order.status (raw websockets) and the real BinanceGateway sending through one WS-API
connection, with its rate limits, faults, a connection dropped mid-request and REST as the
fallback.

The module runs its own exchange: these tests squeeze limits and inject faults, which must
not reach the session's shared exchange.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.binance.gateway import BinanceGateway
from adapters.binance.ws_api import WsApiClient, limits_as_headers
from adapters.paper_exchange import BackgroundPaperExchange
from commands.ports import ExchangeCredentials, ExchangeOrderRequest, ExchangeOrderStatus
from domain.errors import ExchangeThrottled, ExchangeUnavailable
from tests.integration.test_paper_exchange_faults import (
    BINANCE_LIMITS,
    admin,
    early_in_window,
    wait_for,
    ws_call,
    ws_signed,
)
from tests.support.paper_exchange import binance_module_marks

pytestmark = binance_module_marks(timeout=90)
D = Decimal


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundPaperExchange]:
    """A paper exchange of this module's own."""
    state_dir: Path = tmp_path_factory.mktemp("paper-ws-orders")
    exchange = BackgroundPaperExchange(state_dir, tick_ms=100, history_days=1).start()
    try:
        yield exchange
    finally:
        exchange.stop()


@pytest.fixture
def url(server: BackgroundPaperExchange) -> Iterator[str]:
    """The exchange's base URL; faults and limits restored after each test."""
    yield server.url
    admin(server.url, "/admin/faults", {"mode": "none"})
    admin(server.url, "/admin/limits", BINANCE_LIMITS)


@pytest.fixture
def creds(url: str) -> ExchangeCredentials:
    keys = admin(url, "/admin/keys", {})
    return ExchangeCredentials(keys["apiKey"], keys["secretKey"], "paper")


@pytest.fixture
def gateway(url: str) -> Iterator[BinanceGateway]:
    """The gateway with orders over the WS-API (20 s read timeout: no test waits it out)."""
    gw = BinanceGateway("paper", url + "/api", url.replace("http", "ws") + "/ws-api/v3",
                        backoff=0.05, timeout=(1.0, 20.0), order_transport="ws")
    yield gw
    gw.close()


def coid() -> str:
    return "tl" + uuid.uuid4().hex


def market(qty: str = "0.01", client_order_id: str | None = None) -> ExchangeOrderRequest:
    return ExchangeOrderRequest("ETHUSDT", "BUY", "MARKET", D(qty), None, None,
                                client_order_id or coid())


def ws_api_of(gateway: BinanceGateway) -> WsApiClient:
    ws_api = gateway.ws_api()
    assert ws_api is not None
    return ws_api


async def ws_session(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Make WS-API calls one after the other on one connection; return the replies."""
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url.replace("http", "ws") + "/ws-api/v3") as ws:
        return [await ws_call(ws, i, method, params) for i, (method, params) in enumerate(calls)]


# -- the paper exchange's WS-API trading methods --------------------------------------------


def test_ws_order_methods_answer_as_rest_with_order_counts_in_rate_limits(url: str) -> None:
    keys = admin(url, "/admin/keys", {})
    key, secret = keys["apiKey"], keys["secretKey"]
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})
    early_in_window(10, 3)
    placed, status, resting, canceled, again, missing = asyncio.run(ws_session(url, [
        ("order.place", ws_signed(key, secret, symbol="ETHUSDT", side="BUY", type="MARKET",
                                  quantity="0.01", newClientOrderId="ws-a")),
        ("order.status", ws_signed(key, secret, symbol="ETHUSDT", origClientOrderId="ws-a")),
        ("order.place", ws_signed(key, secret, symbol="BTCUSDT", side="BUY", type="LIMIT",
                                  timeInForce="GTC", quantity="0.001", price="40000",
                                  newClientOrderId="ws-b")),
        ("order.cancel", ws_signed(key, secret, symbol="BTCUSDT", origClientOrderId="ws-b")),
        ("order.cancel", ws_signed(key, secret, symbol="BTCUSDT", origClientOrderId="ws-b")),
        ("order.status", ws_signed(key, secret, symbol="BTCUSDT", origClientOrderId="nope")),
    ]))
    assert placed["status"] == 200 and placed["result"]["status"] == "FILLED"
    assert placed["result"]["fills"]  # FULL by default, as REST
    assert limits_as_headers(placed["rateLimits"])["X-MBX-ORDER-COUNT-10S"] == "1"
    assert limits_as_headers(resting["rateLimits"])["X-MBX-ORDER-COUNT-1D"] == "2"
    assert status["result"]["orderId"] == placed["result"]["orderId"]
    assert status["result"]["status"] == "FILLED"
    # order.status weighs 4, as GET /api/v3/order
    assert (int(limits_as_headers(status["rateLimits"])["X-MBX-USED-WEIGHT-1M"])
            == int(limits_as_headers(placed["rateLimits"])["X-MBX-USED-WEIGHT-1M"]) + 4)
    assert resting["result"]["status"] == "NEW"
    assert canceled["result"]["status"] == "CANCELED"
    assert canceled["result"]["origClientOrderId"] == "ws-b"
    assert (again["status"], again["error"]["code"]) == (400, -2011)
    assert (missing["status"], missing["error"]["code"]) == (400, -2013)


def test_ws_order_refusals_are_rest_s_errors(url: str) -> None:
    keys = admin(url, "/admin/keys", {})
    key, secret = keys["apiKey"], keys["secretKey"]
    bad_sig = ws_signed(key, secret, symbol="ETHUSDT", side="BUY", type="MARKET",
                        quantity="0.01")
    bad_sig["signature"] = "0" * 64
    replies = asyncio.run(ws_session(url, [
        ("order.place", ws_signed(key, secret, symbol="ETHUSDT", side="BUY", type="MARKET",
                                  quantity="0.00001")),
        ("order.place", ws_signed(key, secret, symbol="FOOUSDT", side="BUY", type="MARKET",
                                  quantity="1")),
        ("order.place", ws_signed(key, secret, symbol="BTCUSDT", side="BUY", type="MARKET",
                                  quantity="50")),
        ("order.place", ws_signed(key, secret, symbol="ETHUSDT", type="MARKET",
                                  quantity="0.01")),
        ("order.place", bad_sig),
        ("order.place", ws_signed("nokey", secret, symbol="ETHUSDT", side="BUY",
                                  type="MARKET", quantity="0.01")),
    ]))
    assert [(r["status"], r["error"]["code"]) for r in replies] == [
        (400, -1013), (400, -1121), (400, -2010), (400, -1102), (400, -1022), (401, -2015)]


def test_ws_orders_over_the_limit_get_429_with_retry_after_then_418(url: str) -> None:
    admin(url, "/admin/limits", {"ordersPer10s": 2, "banSeconds": 30})
    keys = admin(url, "/admin/keys", {})

    def order() -> tuple[str, dict[str, Any]]:
        return ("order.place", ws_signed(keys["apiKey"], keys["secretKey"], symbol="ETHUSDT",
                                         side="BUY", type="MARKET", quantity="0.01"))

    early_in_window(10, 6)
    replies = asyncio.run(ws_session(url, [order(), order(), order()]))
    assert [r["status"] for r in replies] == [200, 200, 429]
    refused = replies[2]["error"]
    assert refused["code"] == -1015
    assert refused["msg"] == "Too many new orders; current limit is 2 orders per TEN_SECONDS."
    assert 0 < refused["data"]["retryAfter"] - refused["data"]["serverTime"] <= 10_000
    time.sleep(1.1)  # past the grace for requests already in flight
    more = asyncio.run(ws_session(url, [order(), order(), order()]))
    assert [r["status"] for r in more] == [429, 429, 418]
    assert more[-1]["error"]["code"] == -1003


@pytest.mark.parametrize(("mode", "status", "code"), [
    ("error503", 503, -1001), ("timeout", 408, -1007)])
def test_ws_order_faults_answer_as_rest(url: str, mode: str, status: int, code: int) -> None:
    keys = admin(url, "/admin/keys", {})
    admin(url, "/admin/faults", {"mode": mode, "seconds": 5, "execute": True})
    [reply] = asyncio.run(ws_session(url, [("order.place", ws_signed(
        keys["apiKey"], keys["secretKey"], symbol="ETHUSDT", side="BUY", type="MARKET",
        quantity="0.01", newClientOrderId="fault-" + mode))]))
    assert (reply["status"], reply["error"]["code"]) == (status, code)
    # execute=True: it executed all the same (REST's semantics)
    assert len(admin(url, "/admin/orders?clientOrderId=fault-" + mode)) == 1


def test_ws_hang_holds_only_the_order_while_the_connection_answers_others(url: str) -> None:
    keys = admin(url, "/admin/keys", {})
    admin(url, "/admin/faults", {"mode": "hang", "seconds": 30})

    async def scenario() -> tuple[dict[str, Any], bool]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url.replace("http", "ws") + "/ws-api/v3") as ws:
            await ws.send_json({"id": "o", "method": "order.place", "params": ws_signed(
                keys["apiKey"], keys["secretKey"], symbol="ETHUSDT", side="BUY",
                type="MARKET", quantity="0.01", newClientOrderId="hung-1")})
            pong = await ws_call(ws, 2, "ping", {})
            order_answered = False
            try:
                await asyncio.wait_for(ws.receive_str(), 0.5)
                order_answered = True
            except TimeoutError:
                pass
            return pong, order_answered

    pong, order_answered = asyncio.run(scenario())
    assert pong["status"] == 200 and not order_answered
    assert admin(url, "/admin/orders?clientOrderId=hung-1") == []  # execute=False


def test_ws_late_order_answers_1007_and_executes_after_its_delay(url: str) -> None:
    keys = admin(url, "/admin/keys", {})
    admin(url, "/admin/faults", {"mode": "late", "seconds": 5, "delayMs": 800})
    [reply] = asyncio.run(ws_session(url, [("order.place", ws_signed(
        keys["apiKey"], keys["secretKey"], symbol="ETHUSDT", side="BUY", type="MARKET",
        quantity="0.01", newClientOrderId="late-ws-1"))]))
    assert (reply["status"], reply["error"]["code"]) == (503, -1007)
    assert admin(url, "/admin/orders?clientOrderId=late-ws-1") == []
    wait_for(lambda: len(admin(url, "/admin/orders?clientOrderId=late-ws-1")) == 1, 5)


# -- the gateway over the WS-API -----------------------------------------------------------


def test_gateway_places_queries_and_cancels_over_one_ws_api_connection(
        url: str, gateway: BinanceGateway, creds: ExchangeCredentials) -> None:
    admin(url, "/admin/price", {"symbol": "BTCUSDT", "price": "50000", "freeze": True})
    early_in_window(10, 3)
    filled = gateway.submit_order(creds, market())
    assert filled.status is ExchangeOrderStatus.FILLED and filled.fills
    resting = gateway.submit_order(creds, ExchangeOrderRequest(
        "BTCUSDT", "BUY", "LIMIT", D("0.001"), D("40000"), "GTC", coid()))
    queried = gateway.query_order(creds, "BTCUSDT", resting.client_order_id)
    assert queried is not None and queried.status is ExchangeOrderStatus.NEW
    canceled = gateway.cancel_order(creds, "BTCUSDT", resting.client_order_id)
    assert canceled.status is ExchangeOrderStatus.CANCELED
    ws_api = ws_api_of(gateway)
    assert (ws_api.connections_opened, ws_api.requests_sent) == (1, 4)
    # The budget took the exchange's counts from the answers' rateLimits.
    account = str(gateway.client(creds).tl_account)
    state = gateway.budget._accounts[account]
    assert state.header_count == 2 and state.day_count == 2


def test_gateway_backs_off_after_a_ws_429_and_sends_nothing_until_retry_after(
        url: str, gateway: BinanceGateway, creds: ExchangeCredentials) -> None:
    admin(url, "/admin/limits", {"ordersPer10s": 2})
    early_in_window(10, 6)
    gateway.submit_order(creds, market())
    gateway.submit_order(creds, market())
    with pytest.raises(ExchangeThrottled) as told:
        gateway.submit_order(creds, market())
    assert told.value.retry_after is not None and 0 < told.value.retry_after <= 10
    sent = ws_api_of(gateway).requests_sent
    with pytest.raises(ExchangeThrottled):
        gateway.submit_order(creds, market())
    assert ws_api_of(gateway).requests_sent == sent  # refused here, never sent
    assert admin(url, "/admin/limits")["rejected"] == 1


@pytest.mark.parametrize("executes", [True, False])
def test_connection_dropped_mid_request_is_an_unknown_outcome_never_resent(
        url: str, gateway: BinanceGateway, creds: ExchangeCredentials,
        executes: bool) -> None:
    gateway.query_order(creds, "ETHUSDT", coid())  # the connection is up
    admin(url, "/admin/faults", {"mode": "hang", "seconds": 5, "execute": executes})
    request = market()
    outcome: list[BaseException | object] = []

    def send() -> None:
        try:
            outcome.append(gateway.submit_order(creds, request))
        except BaseException as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: ws_api_of(gateway).requests_sent == 2)
    if executes:
        wait_for(lambda: len(admin(
            url, "/admin/orders?clientOrderId=" + request.client_order_id)) == 1)
    else:
        time.sleep(0.3)
    ws_api_of(gateway).drop()
    sender.join(15)
    [error] = outcome
    # Not an answer after the hang (the read timeout is 20 s): the drop ended the wait.
    assert isinstance(error, ExchangeUnavailable) and error.maybe_sent
    admin(url, "/admin/faults", {"mode": "none"})
    # The recheck proves the outcome: one order if it executed, none otherwise; never two.
    found = gateway.query_order(creds, "ETHUSDT", request.client_order_id)
    if executes:
        assert found is not None and found.status is ExchangeOrderStatus.FILLED
    else:
        assert found is None
    assert [o["clientOrderId"] for o in gateway.all_orders(creds, "ETHUSDT")].count(
        request.client_order_id) == (1 if executes else 0)


def test_orders_go_over_rest_while_the_ws_api_cannot_be_reached(
        url: str, creds: ExchangeCredentials) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    gateway = BinanceGateway("paper", url + "/api", f"ws://127.0.0.1:{closed_port}/ws-api/v3",
                             backoff=0.05, timeout=(0.5, 5.0), order_transport="ws")
    try:
        report = gateway.submit_order(creds, market())
        assert report.status is ExchangeOrderStatus.FILLED
        assert gateway.query_order(creds, "ETHUSDT", report.client_order_id) is not None
        ws_api = ws_api_of(gateway)
        assert not ws_api.connected and ws_api.requests_sent == 0
    finally:
        gateway.close()


def test_after_a_drop_orders_go_over_rest_until_the_connection_is_back(
        url: str, gateway: BinanceGateway, creds: ExchangeCredentials) -> None:
    gateway.submit_order(creds, market())
    ws_api = ws_api_of(gateway)
    ws_api.drop()
    wait_for(lambda: not ws_api.connected)
    sent = ws_api.requests_sent
    gateway.submit_order(creds, market())  # over REST meanwhile: not a lost order
    assert ws_api.requests_sent == sent or ws_api.connections_opened == 2
    wait_for(lambda: ws_api.connected)
    gateway.submit_order(creds, market())
    assert ws_api.connections_opened == 2 and ws_api.requests_sent > sent
