"""Orders through HTTP: place, idempotency, read-your-writes, time travel, audit, cancel,
another user's order, rate limits, and bad input that must never become a 500."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.api.app import create_app
from adapters.platform.bootstrap import Runtime
from commands.messages import RecordAcceptance, RecordFill
from tests.support.api import (
    LIMIT_ORDER,
    PASSWORD,
    TestClient,
    register,
)
from tests.support.postgres import make_test_settings

pytestmark = pytest.mark.integration
ORDERS = "/api/trading/orders"


def place(api: Any, user: Any, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return api.post(ORDERS, json=body or LIMIT_ORDER, headers={**user.headers, **headers})


def test_place_order_is_202_pending_and_readable_at_once(api: Any) -> None:
    user = register(api)
    response = place(api, user, {**LIMIT_ORDER, "quantity": 0.0015, "price": 90000.5,
                                 "side": "buy", "type": "limit", "clientOrderId": "my-1"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING" and body["clientOrderId"] == "my-1"
    assert response.headers["Location"] == f"{ORDERS}/{body['orderId']}"
    order = api.get(f"{ORDERS}/{body['orderId']}", headers=user.headers).json()
    assert order["orderId"] == body["orderId"] and order["status"] == "PENDING"
    assert order["quantity"] == "0.0015" and order["price"] == "90000.5"  # strings, exact
    assert order["side"] == "BUY" and order["timeInForce"] == "GTC" and order["version"] == 1
    assert set(order) == {
        "orderId", "clientOrderId", "symbol", "side", "type", "timeInForce", "quantity", "price",
        "status", "exchangeOrderId", "filledQuantity", "averagePrice", "commission",
        "rejectCode", "rejectReason", "createdAt", "updatedAt", "statusTimes", "fillLatencyMs",
        "version", "outcome", "statusDetail", "quoteOrderQty", "stopPrice", "stopTriggered",
        "orderListId"}
    assert order["outcome"] is None and order["statusDetail"] is None
    assert order["quoteOrderQty"] is None and order["stopPrice"] is None
    assert order["orderListId"] is None


def test_market_order_without_price(api: Any) -> None:
    user = register(api)
    body = {"symbol": "ethusdt", "side": "SELL", "type": "MARKET", "quantity": "0.01"}
    response = place(api, user, body)
    assert response.status_code == 202, response.text
    order = api.get(f"{ORDERS}/{response.json()['orderId']}", headers=user.headers).json()
    assert order["symbol"] == "ETHUSDT" and order["price"] is None and order["timeInForce"] is None


def test_same_client_order_id_or_idempotency_key_gives_the_same_order(api: Any,
                                                                      runtime: Runtime) -> None:
    user = register(api)
    a = place(api, user, {**LIMIT_ORDER, "clientOrderId": "dup-1"}).json()
    b = place(api, user, {**LIMIT_ORDER, "clientOrderId": "dup-1"}).json()
    assert a["orderId"] == b["orderId"]
    k1 = place(api, user, **{"Idempotency-Key": "retry-abc"}).json()
    k2 = place(api, user, **{"Idempotency-Key": "retry-abc"}).json()
    assert k1["orderId"] == k2["orderId"] and k1["clientOrderId"].startswith("idk-")
    fresh = [place(api, user).json()["orderId"] for _ in range(2)]
    assert fresh[0] != fresh[1]  # no id and no key: every POST is a new order
    changed = place(api, user, {**LIMIT_ORDER, "quantity": "0.002", "clientOrderId": "dup-1"})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "client_order_id_reused"
    events = list(runtime.app.events.get(uuid.UUID(a["orderId"])))
    assert len(events) == 1


def test_domain_validation_errors_are_422_with_the_field(api: Any) -> None:
    user = register(api)
    cases = {
        "unknown_symbol": {**LIMIT_ORDER, "symbol": "FOOBAR"},
        "invalid_quantity": {**LIMIT_ORDER, "quantity": "0.0000001"},
        "invalid_price": {**LIMIT_ORDER, "price": "90000.001"},
        "notional_too_small": {**LIMIT_ORDER, "quantity": "0.00001", "price": "100.00"},
        "validation_failed": {**LIMIT_ORDER, "side": "HOLD"},
    }
    for code, body in cases.items():
        response = place(api, user, body)
        assert response.status_code == 422, (code, response.text)
        assert response.json()["error"]["code"] == code


def test_bad_input_gets_4xx_in_the_error_shape_never_500(api: Any) -> None:
    user = register(api)
    h = {**user.headers, "Content-Type": "application/json"}
    bodies: list[tuple[bytes, int]] = [
        (b"{not json", 400),
        (b"", 422),
        (b"[]", 422),
        (b"null", 422),
        (b'{"symbol": 1, "side": [], "type": {}, "quantity": true}', 422),
        (b'{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"NaN","price":"1"}', 422),
        (b'{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"1e999999","price":"1"}',
         422),
        (b'{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":1e400,"price":"1"}', 422),
        (b'{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001","price":"9e4",'
         b'"extra":1}', 422),
        (b'{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001","price":"90000",'
         b'"clientOrderId":"bad id!"}', 422),
        (b'{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"0.001",'
         b'"timeInForce":"GTC"}', 422),
        (b"\xff\xfe", 400),
    ]
    for raw, expected in bodies:
        response = api.post(ORDERS, content=raw, headers=h)
        assert response.status_code == expected, (raw, response.text)
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}
    huge = api.post(ORDERS, content=b'{"symbol":"' + b"A" * 70_000 + b'"}', headers=h)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    bad_uuid = api.get(f"{ORDERS}/not-a-uuid", headers=user.headers)
    assert bad_uuid.status_code == 422 and bad_uuid.json()["error"]["code"] == "validation_failed"
    assert api.get("/no/such/route").json()["error"]["code"] == "not_found"
    assert api.put(ORDERS, headers=user.headers).status_code == 405
    secret_echo = api.put("/api/account/exchange-keys", headers=user.headers,
                          json={"apiKey": "k", "secretKey": "TOPSECRET", "bogus": 1})
    assert secret_echo.status_code == 422 and "TOPSECRET" not in secret_echo.text


def test_another_users_order_is_404_for_every_route(api: Any) -> None:
    alice, bob = register(api), register(api)
    order_id = place(api, alice).json()["orderId"]
    for method, path in (("GET", f"{ORDERS}/{order_id}"), ("GET", f"{ORDERS}/{order_id}/events"),
                         ("DELETE", f"{ORDERS}/{order_id}")):
        response = api.request(method, path, headers=bob.headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "order_not_found"
    assert api.get(f"{ORDERS}/{uuid.uuid4()}", headers=alice.headers).status_code == 404
    assert api.get(f"{ORDERS}/{alice.id}", headers=alice.headers).status_code == 404  # an account


def test_cancel_is_202_and_a_second_cancel_of_a_filled_order_is_409(api: Any,
                                                                      runtime: Runtime) -> None:
    user = register(api)
    order_id = place(api, user).json()["orderId"]
    cancel = api.delete(f"{ORDERS}/{order_id}", headers=user.headers)
    assert cancel.status_code == 202 and cancel.json()["status"] == "CANCEL_REQUESTED"
    assert api.get(f"{ORDERS}/{order_id}", headers=user.headers).json()["status"] == \
        "CANCEL_REQUESTED"
    filled = place(api, user).json()["orderId"]
    runtime.app.handle(RecordFill(order_id=uuid.UUID(filled), trade_id="t1",
                                  price=Decimal("90000"), quantity=Decimal("0.001"),
                                  commission=Decimal("0.09"), commission_asset="USDT"))
    refused = api.delete(f"{ORDERS}/{filled}", headers=user.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "illegal_transition"


def test_as_of_version_and_time_travel_and_the_audit_trail(api: Any, runtime: Runtime) -> None:
    user = register(api)
    order_id = place(api, user).json()["orderId"]
    oid = uuid.UUID(order_id)
    time.sleep(0.02)
    runtime.app.handle(RecordAcceptance(order_id=oid, exchange_order_id="X-1"))
    time.sleep(0.02)
    runtime.app.handle(RecordFill(order_id=oid, trade_id="t1", price=Decimal("89999.99"),
                                  quantity=Decimal("0.0004"), commission=Decimal("0.01"),
                                  commission_asset="USDT"))
    url = f"{ORDERS}/{order_id}"
    now = api.get(url, headers=user.headers).json()
    assert now["status"] == "PARTIALLY_FILLED" and now["version"] == 4
    assert now["filledQuantity"] == "0.0004" and now["averagePrice"] == "89999.99"
    assert now["commission"] == {"USDT": "0.01"} and now["exchangeOrderId"] == "X-1"
    assert list(now["statusTimes"]) == ["PENDING", "SUBMITTED", "NEW", "PARTIALLY_FILLED"]
    v1 = api.get(url, params={"asOf": "1"}, headers=user.headers).json()
    assert v1["status"] == "PENDING" and v1["version"] == 1
    v3 = api.get(url, params={"asOf": 3}, headers=user.headers).json()
    assert v3["status"] == "NEW" and v3["filledQuantity"] == "0"
    at_accept = now["statusTimes"]["NEW"]
    by_time = api.get(url, params={"asOf": at_accept}, headers=user.headers).json()
    assert by_time["version"] == 3
    naive = datetime.fromisoformat(at_accept).astimezone(UTC).replace(tzinfo=None).isoformat()
    assert api.get(url, params={"asOf": naive}, headers=user.headers).json()["version"] == 3
    before = (datetime.fromisoformat(now["createdAt"]) - timedelta(seconds=1)).isoformat()
    assert api.get(url, params={"asOf": before}, headers=user.headers).status_code == 404
    assert api.get(url, params={"asOf": "yesterday"}, headers=user.headers).status_code == 422
    assert api.get(url, params={"asOf": "99"}, headers=user.headers).json()["version"] == 4

    trail = api.get(f"{url}/events", headers=user.headers).json()
    assert [e["type"] for e in trail] == ["OrderPlaced", "OrderSubmitted", "OrderAccepted",
                                          "OrderFilled"]
    assert [e["version"] for e in trail] == [1, 2, 3, 4]
    assert trail[0]["actor"] == f"user:{user.id}" and trail[2]["actor"] == "worker"
    assert trail[3]["payload"]["trade_id"] == "t1"


def test_aggregate_shape_equals_the_read_model_shape(api: Any, runtime: Runtime) -> None:
    from tests.support.api import project

    user = register(api)
    order_id = place(api, user).json()["orderId"]
    oid = uuid.UUID(order_id)
    runtime.app.handle(RecordAcceptance(order_id=oid, exchange_order_id="X-9"))
    runtime.app.handle(RecordFill(order_id=oid, trade_id="t1", price=Decimal("90000"),
                                  quantity=Decimal("0.001"), commission=Decimal("0.0000001"),
                                  commission_asset="BTC"))
    project(runtime)
    from_aggregate = api.get(f"{ORDERS}/{order_id}", headers=user.headers).json()
    listed = api.get(ORDERS, headers=user.headers).json()
    assert listed == [from_aggregate]


def test_order_placement_is_rate_limited_per_user_with_retry_after(
        runtime: Runtime, pg_url: str, tmp_path: Any) -> None:
    runtime.settings = make_test_settings(pg_url, runtime.settings.database_schema, tmp_path,
                                          order_rate_limit_per_second=2.0)
    with TestClient(create_app(runtime)) as client:
        alice, bob = register(client), register(client)
        codes = [place(client, alice).status_code for _ in range(4)]
        assert codes[:2] == [202, 202] and 429 in codes[2:]
        limited = place(client, alice)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert place(client, bob).status_code == 202  # per user


def test_exchange_keys_put_get_delete_and_never_returned(api: Any, runtime: Runtime) -> None:
    user = register(api)
    keys = "/api/account/exchange-keys"
    assert api.get(keys, headers=user.headers).json()["connected"] is False
    put = api.put(keys, headers=user.headers,
                  json={"apiKey": "APIKEY-0123456789", "secretKey": "SECRET-abcdef",
                        "environment": "testnet"})
    assert put.status_code == 204
    shown = api.get(keys, headers=user.headers)
    # This installation trades on paper: testnet keys are kept but never used, and say so.
    assert shown.json() == {
        "connected": True, "apiKeyHint": "APIK********6789", "environment": "testnet",
        "status": "wrong_environment",
        "reason": "these keys are for testnet but this installation trades on paper: they "
                  "are not used; connect paper keys"}
    assert "SECRET" not in shown.text
    creds = runtime.app.exchange_credentials(uuid.UUID(user.id))
    assert creds.secret_key == "SECRET-abcdef"
    live = api.put(keys, headers=user.headers, json={"apiKey": "a" * 12, "secretKey": "b" * 12,
                                                      "environment": "live"})
    assert live.status_code == 403 and live.json()["error"]["code"] == "live_trading_disabled"
    bad_env = api.put(keys, headers=user.headers, json={"apiKey": "a", "secretKey": "b",
                                                         "environment": "moon"})
    assert bad_env.status_code == 422
    assert api.delete(keys, headers=user.headers).status_code == 204
    assert api.delete(keys, headers=user.headers).status_code == 204
    assert api.get(keys, headers=user.headers).json()["connected"] is False
    assert api.put(keys, json={"apiKey": "a", "secretKey": "b"}).status_code == 401


def test_keys_and_passwords_never_reach_the_logs(api: Any, caplog: pytest.LogCaptureFixture,
                                                 runtime: Runtime) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    user = register(api, binanceApiKey="APIKEY-LOGCHECK-1", binanceSecretKey="SECRET-LOGCHECK")
    api.put("/api/account/exchange-keys", headers=user.headers,
            json={"apiKey": "APIKEY-LOGCHECK-2", "secretKey": "SECRET-LOGCHECK-2"})
    api.put("/api/account/exchange-keys", headers=user.headers,
            json={"apiKey": "APIKEY-LOGCHECK-3", "secretKey": "SECRET-LOGCHECK-3", "x": 1})
    api.post("/auth/login", json={"email": user.email, "password": "WRONG-PASSWORD-LOG"})
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in ("SECRET-LOGCHECK", "APIKEY-LOGCHECK", "WRONG-PASSWORD-LOG", PASSWORD):
        assert secret not in text
