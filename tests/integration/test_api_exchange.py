"""Issue 15 through the API against the paper exchange, with python-binance in between:
keys are checked at connect time, and orders are validated against the live exchangeInfo."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.api.app import create_app
from adapters.paper_exchange.runner import admin_post
from adapters.platform.bootstrap import Runtime
from adapters.processes.api import exchange_info, keys_checker
from domain.account import account_id_for
from tests.support.api import PASSWORD, TestClient, register

pytestmark = pytest.mark.integration


def closed_port_url() -> str:
    """A URL where nothing listens (connection refused): the exchange is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def on_paper(runtime: Runtime, paper_exchange: Any) -> Runtime:
    runtime.settings = runtime.settings.model_copy(
        update={"paper_exchange_url": paper_exchange.url, "exchange": "paper"})
    return runtime


@pytest.fixture
def client(on_paper: Runtime) -> Iterator[Any]:
    app = create_app(on_paper, keys_checker=keys_checker(on_paper.settings),
                     exchange_info=exchange_info(on_paper.settings, on_paper))
    with TestClient(app) as c:
        yield c


def test_bad_keys_are_refused_at_registration_and_nothing_is_stored(
        client: Any, on_paper: Runtime) -> None:
    email = f"bad{uuid.uuid4().hex[:8]}@example.com"
    answer = client.post("/auth/register", json={
        "email": email, "password": PASSWORD, "binanceApiKey": "NOT-A-PAPER-KEY-0000",
        "binanceSecretKey": "nope"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "exchange_keys_rejected"
    assert error["details"]["exchangeCode"] == -2015
    assert "Invalid API-key" in error["message"]
    assert "nope" not in answer.text
    # No account at all: the email is still free.
    assert not list(on_paper.app.events.get(account_id_for(email)))
    assert client.post("/auth/login", json={"email": email,
                                            "password": PASSWORD}).status_code == 401


def test_good_keys_are_stored_and_a_wrong_secret_is_refused_on_put(
        client: Any, on_paper: Runtime, paper_exchange: Any) -> None:
    keys = paper_exchange.issue_keys()
    user = register(client, binanceApiKey=keys.api_key, binanceSecretKey=keys.secret_key)
    me = client.get("/api/me", headers=user.headers).json()["exchangeKeys"]
    assert me["connected"] and me["status"] == "active" and me["environment"] == "paper"
    before = list(on_paper.app.events.get(uuid.UUID(user.id)))

    other = paper_exchange.issue_keys()
    wrong = client.put("/api/account/exchange-keys", headers=user.headers,
                       json={"apiKey": other.api_key, "secretKey": keys.secret_key})
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["error"]["code"] == "exchange_keys_rejected"
    assert wrong.json()["error"]["details"]["exchangeCode"] == -1022  # signature
    assert keys.secret_key not in wrong.text
    assert list(on_paper.app.events.get(uuid.UUID(user.id))) == before  # nothing stored

    good = client.put("/api/account/exchange-keys", headers=user.headers,
                      json={"apiKey": other.api_key, "secretKey": other.secret_key})
    assert good.status_code == 204, good.text


def test_an_unreachable_exchange_answers_503_and_stores_nothing(on_paper: Runtime) -> None:
    settings = on_paper.settings.model_copy(update={"paper_exchange_url": closed_port_url()})
    with TestClient(create_app(on_paper, keys_checker=keys_checker(settings))) as c:
        email = f"down{uuid.uuid4().hex[:8]}@example.com"
        answer = c.post("/auth/register", json={
            "email": email, "password": PASSWORD, "binanceApiKey": "SOMEKEY-000000000",
            "binanceSecretKey": "secret"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "exchange_unavailable"
        assert not list(on_paper.app.events.get(account_id_for(email)))
        user = register(c)  # without keys nothing is asked
        put = c.put("/api/account/exchange-keys", headers=user.headers,
                    json={"apiKey": "SOMEKEY-000000000", "secretKey": "secret"})
        assert put.status_code == 503
        assert not c.get("/api/me", headers=user.headers).json()["exchangeKeys"]["connected"]


def test_keys_of_another_environment_show_as_unused(client: Any, on_paper: Runtime) -> None:
    user = register(client)
    from commands.messages import ConnectExchangeKeys

    # Stored before this installation switched to paper (no check can reach the Testnet here).
    on_paper.app.handle(ConnectExchangeKeys(account_id=uuid.UUID(user.id),
                                            api_key="TESTNETKEY-123456", secret_key="s",
                                            environment="testnet"))
    keys = client.get("/api/me", headers=user.headers).json()["exchangeKeys"]
    assert keys["status"] == "wrong_environment"
    assert "testnet" in keys["reason"] and "paper" in keys["reason"]


def order(symbol: str = "LINKUSDT", **kw: Any) -> dict[str, Any]:
    body = {"symbol": symbol, "side": "BUY", "type": "LIMIT", "quantity": "1.00",
            "price": "18.000", "clientOrderId": uuid.uuid4().hex[:16]}
    body.update(kw)
    return body


def test_exchange_info_changes_are_honoured_after_a_refresh(
        client: Any, paper_exchange: Any) -> None:
    app = client.app
    refresher = app.state.ctx.runtime.symbols
    assert refresher.live  # loaded from the exchange at start, not the built-in table
    user = register(client)
    assert client.post("/api/trading/orders", headers=user.headers,
                       json=order()).status_code in (201, 202)
    try:
        admin_post(paper_exchange.url, "/admin/exchange-info",
                   {"symbol": "LINKUSDT", "status": "BREAK"})
        admin_post(paper_exchange.url, "/admin/exchange-info", {
            "symbol": "ADAUSDT", "filters": [{
                "filterType": "MARKET_LOT_SIZE", "minQty": "10.0", "maxQty": "1000.0",
                "stepSize": "10.0"}]})
        # Still the old rules until the refresh (the interval is minutes long).
        assert client.post("/api/trading/orders", headers=user.headers,
                           json=order()).status_code in (201, 202)
        refresh(client)
        listed = {s["symbol"]: s for s in client.get("/api/market/symbols").json()}
        assert (listed["LINKUSDT"]["status"], listed["ETHUSDT"]["status"]) == ("BREAK", "TRADING")
        stopped = client.post("/api/trading/orders", headers=user.headers, json=order())
        assert stopped.status_code == 422, stopped.text
        assert stopped.json()["error"]["code"] == "symbol_not_trading"
        small = client.post("/api/trading/orders", headers=user.headers, json=order(
            "ADAUSDT", type="MARKET", quantity="5.0", price=None))
        assert small.status_code == 422, small.text
        assert small.json()["error"]["code"] == "invalid_quantity"
        assert "MARKET" in small.json()["error"]["message"]
    finally:
        admin_post(paper_exchange.url, "/admin/exchange-info",
                   {"symbol": "LINKUSDT", "status": "TRADING"})
        admin_post(paper_exchange.url, "/admin/exchange-info",
                   {"symbol": "ADAUSDT", "filters": [{
                       "filterType": "MARKET_LOT_SIZE", "minQty": "0.0", "maxQty": "900000.0",
                       "stepSize": "0.0"}]})
    refresh(client)
    assert client.post("/api/trading/orders", headers=user.headers,
                       json=order()).status_code in (201, 202)


def test_too_many_decimals_are_refused_before_the_exchange_sees_them(client: Any) -> None:
    user = register(client)
    answer = client.post("/api/trading/orders", headers=user.headers, json=order(price="18.0001"))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_price"
    assert "more decimals" in answer.json()["error"]["message"]


def refresh(client: Any) -> None:
    """What the refresher does every few minutes (or at once after -1013/-1111)."""
    info = client.app.state.exchange_info
    assert info.refresh()


def test_max_num_orders_is_checked_against_the_open_orders_the_read_side_knows(
        client: Any, on_paper: Runtime, paper_exchange: Any) -> None:
    from tests.support.api import project

    user = register(client)
    try:
        admin_post(paper_exchange.url, "/admin/exchange-info", {
            "symbol": "DOGEUSDT", "filters": [{"filterType": "MAX_NUM_ORDERS",
                                               "maxNumOrders": 2}]})
        refresh(client)
        for n in range(2):
            placed = client.post("/api/trading/orders", headers=user.headers, json=order(
                "DOGEUSDT", quantity="100", price="0.30000"))
            assert placed.status_code == 202, placed.text
            if n == 0:  # one open: an OCO list (two orders) no longer fits
                project(on_paper)
                oco = client.post("/api/trading/order-lists", headers=user.headers, json={
                    "type": "OCO", "symbol": "DOGEUSDT", "side": "SELL", "quantity": "100",
                    "price": "0.50000", "stopPrice": "0.30000", "stopLimitPrice": "0.29000"})
                assert oco.status_code == 422, oco.text
                assert oco.json()["error"]["code"] == "too_many_open_orders"
        project(on_paper)
        third = client.post("/api/trading/orders", headers=user.headers,
                            json=order("DOGEUSDT", quantity="100", price="0.30000"))
        assert third.status_code == 422, third.text
        assert third.json()["error"]["code"] == "too_many_open_orders"
    finally:
        admin_post(paper_exchange.url, "/admin/exchange-info", {
            "symbol": "DOGEUSDT", "filters": [{"filterType": "MAX_NUM_ORDERS",
                                               "maxNumOrders": 200}]})
        refresh(client)


def test_an_order_refused_for_stale_rules_triggers_a_refresh(on_paper: Runtime) -> None:
    from adapters.binance.symbols import RejectionWatch
    from commands.messages import PlaceOrder, RecordRejection, RegisterAccount

    watch = RejectionWatch(on_paper.app)
    assert not watch()
    account = on_paper.app.handle(RegisterAccount(email=f"w{uuid.uuid4().hex[:8]}@example.com",
                                                  password=PASSWORD))

    def rejected(code: str) -> None:
        order_id = on_paper.app.handle(PlaceOrder(
            account_id=account, client_order_id=uuid.uuid4().hex[:16], symbol="ETHUSDT",
            side="BUY", order_type="MARKET", quantity="0.01"))
        on_paper.app.handle(RecordRejection(order_id, code, "refused", "worker"))

    rejected("-2010")  # insufficient balance: says nothing about the rules
    assert not watch()
    rejected("-1013")  # a filter failed: our copy of exchangeInfo is stale
    assert watch()
    assert not watch()  # each refusal counts once
