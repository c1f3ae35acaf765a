"""Hypothesis throws arbitrary input at the order, auth and query routes: never a 500, and
every error comes in the one error shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.api.app import create_app
from adapters.platform.bootstrap import Runtime
from tests.support.api import TestClient, register
from tests.support.postgres import make_test_settings

pytestmark = pytest.mark.integration
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["BTCUSDT", "ethusdt", "BUY", "sell", "LIMIT", "MARKET", "GTC", "IOC",
                     "0.001", "90000.00", "1e-7", "-1", "NaN", "Infinity", "1e99999", "", " "]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
order_fields = st.fixed_dictionaries({}, optional={
    "symbol": json_values, "side": json_values, "type": json_values, "quantity": json_values,
    "price": json_values, "timeInForce": json_values, "clientOrderId": json_values,
})
bodies = st.one_of(order_fields, json_values,
                   st.dictionaries(st.text(max_size=12), json_values, max_size=4))


@pytest.fixture
def fuzz_client(runtime: Runtime, pg_url: str, tmp_path: Path) -> Any:
    runtime.settings = make_test_settings(pg_url, runtime.settings.database_schema, tmp_path,
                                          order_rate_limit_per_second=100_000.0)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        user = register(client)
        client.cookies.clear()
        yield client, user


def assert_not_500(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.status_code != 405:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}


@FUZZ
@given(body=bodies)
def test_order_endpoint_never_answers_500_to_any_json(fuzz_client: Any, body: Any) -> None:
    client, user = fuzz_client
    response = client.post("/api/trading/orders", content=json.dumps(body),
                           headers={**user.headers, "Content-Type": "application/json"})
    assert_not_500(response)
    if response.status_code == 202:
        assert set(response.json()) == {"orderId", "status", "clientOrderId"}


@FUZZ
@given(raw=st.binary(max_size=200), key=st.one_of(st.none(), st.text(max_size=300)))
def test_order_endpoint_never_answers_500_to_any_bytes_or_idempotency_key(
        fuzz_client: Any, raw: bytes, key: str | None) -> None:
    client, user = fuzz_client
    headers = {**user.headers, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key.encode("ascii", "ignore").decode().strip() or "k"
    assert_not_500(client.post("/api/trading/orders", content=raw, headers=headers))


@FUZZ
@given(segment=st.text(max_size=60), as_of=st.one_of(st.none(), st.text(max_size=40)),
       params=st.dictionaries(st.sampled_from(["status", "symbol", "limit", "offset", "since",
                                               "until", "eventType", "aggregateId"]),
                              st.text(max_size=30), max_size=4))
def test_query_routes_never_answer_500(fuzz_client: Any, segment: str, as_of: str | None,
                                       params: dict[str, str]) -> None:
    client, user = fuzz_client
    query = {"asOf": as_of} if as_of is not None else {}
    safe = quote(segment, safe="") or "x"
    assert_not_500(client.get(f"/api/trading/orders/{safe}", params=query,
                              headers=user.headers))
    for path in ("/api/trading/orders", "/api/audit/events", "/api/trading/trades"):
        assert_not_500(client.get(path, params=params, headers=user.headers))


@FUZZ
@given(body=st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "email": json_values, "password": json_values, "binanceApiKey": json_values,
    "binanceSecretKey": json_values, "refreshToken": json_values})))
def test_auth_routes_never_answer_500(fuzz_client: Any, body: Any) -> None:
    client, _ = fuzz_client
    for path in ("/auth/login", "/auth/refresh", "/auth/logout", "/auth/register"):
        response = client.post(path, content=json.dumps(body),
                               headers={"Content-Type": "application/json",
                                        "X-Forwarded-For": "fuzz"})
        # Throttled logins (429) are a fine answer to a fuzzer.
        assert_not_500(response)


def test_a_chunked_body_over_the_limit_is_413_in_the_error_shape(fuzz_client: Any) -> None:
    client, user = fuzz_client

    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    response = client.post("/api/trading/orders", content=chunks(),
                           headers={**user.headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
