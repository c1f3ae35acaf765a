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


# ---- the whole OpenAPI surface ---------------------------------------------------------------
# Every operation the API documents, with hypothesis-made path, query, header and body values
# drawn from the operation's own schema (and off it), stateful where it helps: path ids are
# sometimes the caller's real order, and the caller stays signed in across examples.

def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in spec["paths"].items()
            for method, op in item.items() if method in ("get", "post", "put", "delete")]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _value_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values near the schema (right type, edges, enum members) mixed with any JSON."""
    options: list[st.SearchStrategy[Any]] = [json_values]
    kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "integer" in kinds:
        options.append(st.integers(min_value=-(2**65), max_value=2**65))
        options.append(st.sampled_from([schema.get("minimum", 0), schema.get("maximum", 1)]))
    if "string" in kinds:
        options.append(st.text(max_size=int(schema.get("maxLength", 40)) + 5))
        options.append(st.sampled_from(["BTCUSDT", "\u00b2", "1e999999999", "0.001", "GTC",
                                        "LIMIT", "BUY", "1m", "' OR 1=1--"]))
    return st.one_of(options)


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@pytest.fixture
def surface(fuzz_client: Any) -> Any:
    client, user = fuzz_client
    spec = client.get("/openapi.json").json()
    placed = client.post("/api/trading/orders", headers=user.headers, json={
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
        "price": "90000.00"})
    order_id = placed.json()["orderId"] if placed.status_code == 202 else None
    return client, user, spec, order_id


def test_the_openapi_document_covers_every_route(surface: Any) -> None:
    _, _, spec, _ = surface
    paths = set(spec["paths"])
    for expected in ("/auth/logout-all", "/api/account/password", "/api/audit/verify",
                     "/api/trading/orders/{orderId}", "/api/market/{symbol}/klines"):
        assert expected in paths
    assert len(_operations(spec)) >= 20


# Each example sends one request per operation (~25), so fewer examples than the others.
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_operation_never_answers_500(surface: Any, data: st.DataObject) -> None:
    client, user, spec, order_id = surface
    for method, path, op in _operations(spec):
        if "text/event-stream" in json.dumps(op.get("responses", {})):
            continue  # streams: test_api_stream and the e2e probes
        if path in ("/auth/logout-all", "/api/account/password", "/auth/logout"):
            continue  # they end the fuzzer's own session; covered without it below
        target, params, headers = path, {}, dict(user.headers)
        for param in op.get("parameters", []):
            schema = param.get("schema", {})
            if param["in"] == "path":
                real = "BTCUSDT" if param["name"] == "symbol" else order_id
                value = data.draw(st.one_of(st.just(real), _value_for(schema)) if real
                                  else _value_for(schema))
                target = target.replace("{" + param["name"] + "}",
                                        quote(_param_text(value), safe="") or "x")
            elif param["in"] == "query" and data.draw(st.booleans()):
                params[param["name"]] = _param_text(data.draw(_value_for(schema)))
            elif param["in"] == "header" and data.draw(st.booleans()):
                text = _param_text(data.draw(_value_for(schema)))
                headers[param["name"]] = text.encode("ascii", "ignore").decode().strip() or "x"
        body_schema = (op.get("requestBody", {}).get("content", {})
                       .get("application/json", {}).get("schema"))
        kwargs: dict[str, Any] = {}
        if body_schema is not None:
            props = _resolve(spec, body_schema).get("properties", {})
            body = data.draw(st.one_of(
                json_values,
                st.fixed_dictionaries({}, optional={
                    name: _value_for(_resolve(spec, s)) for name, s in props.items()})))
            kwargs["content"] = json.dumps(body)
            headers["Content-Type"] = "application/json"
        headers["X-Forwarded-For"] = "fuzz"
        response = client.request(method, target, params=params, headers=headers, **kwargs)
        if response.status_code == 503:  # documented: this app has no market data source
            assert response.json()["error"]["code"] == "market_data_unavailable"
            continue
        assert response.status_code < 500, (method, target, params, kwargs, response.text)
        assert_not_500(response)


@FUZZ
@given(body=st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "currentPassword": json_values, "newPassword": json_values, "refreshToken": json_values})))
def test_session_ending_routes_never_answer_500(fuzz_client: Any, body: Any) -> None:
    client, _ = fuzz_client
    for path in ("/api/account/password", "/auth/logout"):
        assert_not_500(client.post(path, content=json.dumps(body), headers={
            "Content-Type": "application/json", "Authorization": "Bearer not.a.token"}))
    assert_not_500(client.post("/auth/logout-all", headers={"Authorization": "Bearer x.y.z"}))
