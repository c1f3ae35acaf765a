"""Security checks against a running `tradeledger up`: forged and misused tokens, other
users' data, SQL injection and oversized input on every endpoint of the OpenAPI, hostile
numbers under load, parallel brute force, logout then reuse, stream caps, metrics off the
public port, the placeholder secret refused at start-up, and a scan that no secret reaches
a log, a stored event, a Kafka message or a response body. The scan runs last and covers
every test of the session before it.

Clients of the API are told apart by address; each simulated client here sends its own
X-Forwarded-For (uvicorn trusts it from loopback, as from a local proxy), so one test's
budgets never throttle another's."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import psycopg
import pytest

from adapters.platform.launcher import RunningSystem
from tests.chaos.processes import child_env

pytestmark = pytest.mark.e2e

ISSUER, AUDIENCE, STREAM_AUDIENCE = "tradeledger", "tradeledger-api", "tradeledger-stream"
SCHEMA = "tradeledger"
INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE tradeledger.tradeledger_events; --",
    "1 UNION SELECT password_hash FROM tradeledger.tradeledger_events--",
    "\x00' OR 1=1; SELECT pg_sleep(5)--",
]
BIG = "A" * 5000  # inside the 64 KiB body limit, far over every field's own limit
# Secrets this module handed to the API in clear; the last test looks for each everywhere.
PLANTED: list[str] = []
# Tokens the API handed out: legitimately in responses, never in logs, rows or Kafka.
TOKENS: list[str] = []


def address() -> dict[str, str]:
    """A header that makes the API see a new client address."""
    return {"X-Forwarded-For": f"10.{random.randrange(256)}.{random.randrange(256)}."
                               f"{random.randrange(1, 255)}"}


class Recorder:
    """Keeps every response body the module's clients received."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def hook(self, response: httpx.Response) -> None:
        if "text/event-stream" in response.headers.get("content-type", ""):
            return  # streams are recorded by whoever reads them
        response.read()
        self.bodies.append(response.text)


RECORDER = Recorder()


@pytest.fixture(scope="module")
def client(running_system: RunningSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running_system.api_url, timeout=30,
                      event_hooks={"response": [RECORDER.hook]}) as http:
        yield http


@pytest.fixture(scope="module")
def env(running_system: RunningSystem) -> dict[str, str]:
    return child_env(running_system)


def new_user(client: httpx.Client) -> dict[str, Any]:
    password = "Sec-" + uuid.uuid4().hex
    PLANTED.append(password)
    email = f"sec-{uuid.uuid4().hex[:10]}@example.com"
    response = client.post("/auth/register", json={"email": email, "password": password},
                           headers=address())
    assert response.status_code == 201, response.text
    body = response.json()
    TOKENS.extend(t for t in (body["token"], body.get("refreshToken")) if t)
    return {"email": email, "password": password, "token": body["token"],
            "refresh": body.get("refreshToken"), "id": str(body["user"]["id"]),
            "headers": {"Authorization": f"Bearer {body['token']}"}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(account_id: str, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": account_id, "email": "x@example.com",
            "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "sid": str(uuid.uuid4()),
            **override}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_refused(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in (statuses or (401,)), (response.status_code, response.text)
    assert set(response.json()["error"]) == {"code", "message", "details"}


# ---- tokens -----------------------------------------------------------------------------

def test_forged_expired_and_misdirected_tokens_are_refused(
        client: httpx.Client, env: dict[str, str]) -> None:
    user = new_user(client)
    secret = env["TRADELEDGER_JWT_SECRET"]
    assert client.get("/api/me", headers=user["headers"]).status_code == 200
    header, payload, signature = user["token"].split(".")
    other = new_user(client)
    unverified = jwt.decode(user["token"], options={"verify_signature": False})
    forged = {
        "expired": jwt.encode(claims(user["id"], iat=int(time.time()) - 7200,
                                     exp=int(time.time()) - 3600), secret, "HS256"),
        "tampered payload (another user's id, old signature)":
            f"{header}.{b64({**unverified, 'sub': other['id']})}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(user['id']))}.",
        "alg none, no dot": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(user['id']))}",
        "wrong key": jwt.encode(claims(user["id"]), "not-the-secret-" * 4, "HS256"),
        "HS512 with the real key": jwt.encode(claims(user["id"]), secret, "HS512"),
        "wrong audience": jwt.encode(claims(user["id"], aud="someone-else"), secret, "HS256"),
        "stream token as API token": jwt.encode(claims(user["id"], aud=STREAM_AUDIENCE),
                                                secret, "HS256"),
        "wrong issuer": jwt.encode(claims(user["id"], iss="evil"), secret, "HS256"),
        "no jti": jwt.encode({k: v for k, v in claims(user["id"]).items() if k != "jti"},
                             secret, "HS256"),
        "not a uuid subject": jwt.encode(claims("1 OR 1=1"), secret, "HS256"),
        "garbage": "not.a.token",
    }
    for name, token in forged.items():
        for method, path in (("GET", "/api/me"), ("GET", "/api/trading/orders"),
                             ("POST", "/api/stream-token")):
            response = client.request(method, path, headers=bearer(token))
            assert response.status_code == 401, f"{name} on {path}: {response.text}"
    expired = client.get("/api/me", headers=bearer(forged["expired"]))
    assert expired.json()["error"]["code"] == "token_expired"
    assert_refused(client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_refused(client.get("/api/me", headers={"Authorization": user["token"]}))
    assert_refused(client.get("/api/me", headers={"Authorization": "Bearer"}))
    # A stream token opens a stream and nothing else; an API token is no stream token.
    stream_token = client.post("/api/stream-token", headers=user["headers"]).json()["token"]
    assert client.get("/api/me", headers=bearer(stream_token)).status_code == 401
    with client.stream("GET", "/api/stream", params={"token": user["token"]}) as response:
        assert response.status_code == 401
    # A correctly signed token for an account that does not exist opens nothing.
    ghost = jwt.encode(claims(str(uuid.uuid4())), secret, "HS256")
    assert client.get("/api/me", headers=bearer(ghost)).status_code == 401
    # Nor does a correctly signed token naming a session that was never started.
    assert client.get("/api/trading/orders", headers=bearer(ghost)).status_code == 401


# ---- other users' data ----------------------------------------------------------------------

def read_stream_until_ready(client: httpx.Client, headers: dict[str, str],
                            params: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Replay a stream from the start (Last-Event-ID 0) up to its READY marker."""
    events: list[tuple[str, str]] = []
    with client.stream("GET", "/api/stream", params=params,
                       headers={**headers, "Last-Event-ID": "0"},
                       timeout=httpx.Timeout(10, read=20)) as response:
        assert response.status_code == 200, response.read()
        kind = ""
        for line in response.iter_lines():
            RECORDER.bodies.append(line)
            if line.startswith("event:"):
                kind = line[6:].strip()
                if kind == "READY":
                    break
            elif line.startswith("data:"):
                events.append((kind, line[5:].strip()))
    return events


def paper_exchange_url(system: RunningSystem) -> str:
    """The paper exchange `tradeledger up` started (its status line names the URL)."""
    import re

    found = re.search(r"paper-exchange\s+up\s+(http://\S+)", system.output())
    assert found, "the paper exchange's URL is not in the output"
    return found.group(1)


def test_another_users_orders_stream_and_keys_stay_invisible(
        client: httpx.Client, running_system: RunningSystem) -> None:
    alice, bob = new_user(client), new_user(client)
    cid = "alice-" + uuid.uuid4().hex[:12]
    placed = client.post("/api/trading/orders", headers=alice["headers"], json={
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
        "price": "1000.00", "timeInForce": "GTC", "clientOrderId": cid})
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["orderId"]
    deadline = time.monotonic() + 30
    while not any(o["orderId"] == order_id for o in client.get(
            "/api/trading/orders", headers=alice["headers"]).json()):
        assert time.monotonic() < deadline, "alice's order never reached her read model"
        time.sleep(0.3)
    assert any(order_id in data for _, data in read_stream_until_ready(client,
                                                                       alice["headers"]))

    for method, path in (("GET", f"/api/trading/orders/{order_id}"),
                         ("GET", f"/api/trading/orders/{order_id}?asOf=1"),
                         ("GET", f"/api/trading/orders/{order_id}/events"),
                         ("DELETE", f"/api/trading/orders/{order_id}")):
        response = client.request(method, path, headers=bob["headers"])
        assert_refused(response, 404)
        assert cid not in response.text and "BTCUSDT" not in response.text
    assert client.get(f"/api/trading/orders/{order_id}",
                      headers=alice["headers"]).json()["status"] != "CANCEL_REQUESTED"
    for path in ("/api/trading/orders", "/api/trading/trades", "/api/trading/positions",
                 f"/api/audit/events?aggregateId={order_id}", "/api/audit/events",
                 "/api/analytics"):
        response = client.get(path, headers=bob["headers"])
        assert response.status_code == 200, (path, response.text)
        assert order_id not in response.text and cid not in response.text, path
    # Bob's stream, replayed from the very start, holds nothing of Alice's.
    assert not any(order_id in data or cid in data
                   for _, data in read_stream_until_ready(client, bob["headers"]))
    # Nor does a stream opened with Bob's stream token.
    token = client.post("/api/stream-token", headers=bob["headers"]).json()["token"]
    assert not any(order_id in data for _, data in read_stream_until_ready(
        client, {}, params={"token": token}))

    # Keys: checked against the exchange first (unknown ones are refused, not echoed) ...
    api_key, secret_key = "ak" + uuid.uuid4().hex, "SK" + uuid.uuid4().hex + uuid.uuid4().hex
    PLANTED.append(secret_key)
    response = client.put("/api/account/exchange-keys", headers=bob["headers"],
                          json={"apiKey": api_key, "secretKey": secret_key})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "exchange_keys_rejected"
    assert secret_key not in response.text
    # ... then stored encrypted, shown to their owner only as a hint, never to anyone else.
    from adapters.paper_exchange.runner import admin_post

    issued = admin_post(paper_exchange_url(running_system), "/admin/keys", {})
    api_key, secret_key = issued["apiKey"], issued["secretKey"]
    PLANTED.append(secret_key)
    response = client.put("/api/account/exchange-keys", headers=bob["headers"],
                          json={"apiKey": api_key, "secretKey": secret_key})
    assert response.status_code == 204, response.text
    mine = client.get("/api/account/exchange-keys", headers=bob["headers"])
    assert mine.status_code == 200 and mine.json()["connected"] is True
    assert secret_key not in mine.text and api_key not in mine.text
    theirs = client.get("/api/account/exchange-keys", headers=alice["headers"]).text
    assert api_key[-4:] not in theirs and secret_key not in theirs
    assert secret_key not in client.get("/api/me", headers=bob["headers"]).text
    client.delete("/api/account/exchange-keys", headers=bob["headers"])


# ---- injection and oversized input on every endpoint ----------------------------------------

def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


GOOD_VALUES = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
               "price": "1000.00", "timeInForce": "GTC", "password": "Sec-good-password-1",
               "apiKey": "ak-injection-test", "secretKey": "sk-injection-test",
               "refreshToken": "r" * 40, "environment": "paper"}


def good_body(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(spec, schema)
    body: dict[str, Any] = {}
    for name in schema.get("properties", {}):
        if name == "email":
            body[name] = f"inj-{uuid.uuid4().hex[:8]}@example.com"
        elif name == "clientOrderId":
            body[name] = "inj-" + uuid.uuid4().hex[:12]
        elif name in GOOD_VALUES:
            body[name] = GOOD_VALUES[name]
        elif name in schema.get("required", []):
            body[name] = "x"
    return body


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                yield method.upper(), path, op


def is_stream(op: dict[str, Any]) -> bool:
    return "text/event-stream" in json.dumps(op.get("responses", {}))


def send(client: httpx.Client, method: str, path: str, op: dict[str, Any],
         headers: dict[str, str], **kwargs: Any) -> int:
    if is_stream(op):
        with client.stream(method, path, headers=headers, timeout=httpx.Timeout(10, read=5),
                           **kwargs) as response:
            if response.status_code >= 400:
                response.read()
                RECORDER.bodies.append(response.text)
            return response.status_code
    return client.request(method, path, headers=headers, **kwargs).status_code


def test_injection_strings_and_oversized_input_on_every_endpoint_never_give_500(
        client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    user = new_user(client)
    ops = list(operations(spec))
    assert len(ops) >= 15, [p for _, p, _ in ops]
    results: list[tuple[int, str]] = []
    for method, path, op in ops:
        params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query", "header")]
        path_defaults = {p["name"]: ("BTCUSDT" if p["name"] == "symbol" else str(uuid.uuid4()))
                         for p in params if p["in"] == "path"}
        body_schema = (op.get("requestBody", {}).get("content", {})
                       .get("application/json", {}).get("schema"))
        base_body = good_body(spec, body_schema) if body_schema else None

        def url(values: dict[str, str], template: str = path) -> str:
            for name, value in values.items():
                template = template.replace("{" + name + "}", quote(value, safe=""))
            return template

        cases: list[tuple[str, dict[str, Any]]] = []
        for bad in [*INJECTIONS, BIG[:600]]:
            for p in params:
                if p["in"] == "path":
                    cases.append((f"path {p['name']}={bad[:20]!r}",
                                  {"path": url({**path_defaults, p["name"]: bad})}))
                elif p["in"] == "query":
                    cases.append((f"query {p['name']}={bad[:20]!r}",
                                  {"path": url(path_defaults), "params": {p["name"]: bad}}))
                elif p["name"].lower() != "authorization":
                    cases.append((f"header {p['name']}={bad[:20]!r}",
                                  {"path": url(path_defaults),
                                   "headers": {p["name"]: bad.replace("\x00", "")}}))
            for field in (base_body or {}):
                cases.append((f"body {field}={bad[:20]!r}", {
                    "path": url(path_defaults), "json": {**(base_body or {}), field: bad}}))
        if base_body is not None:
            for field in base_body:
                cases.append((f"body {field}=5000 chars", {
                    "path": url(path_defaults), "json": {**base_body, field: BIG}}))
            cases.append(("body 70 KiB", {"path": url(path_defaults),
                                          "content": b'{"x": "' + b"A" * 70_000 + b'"}',
                                          "headers": {"Content-Type": "application/json"}}))
            cases.append(("body not JSON", {"path": url(path_defaults), "content": b"\xff{'",
                                            "headers": {"Content-Type": "application/json"}}))
        for name, case in cases:
            headers = {**user["headers"], **address(), **case.pop("headers", {})}
            target = case.pop("path")
            try:
                status = send(client, method, target, op, headers, **case)
            except httpx.TransportError as exc:
                # A connection a 500 left broken fails the next request on it: try again
                # on a new connection to tell that apart from this request's own failure.
                try:
                    status = send(client, method, target, op, headers, **case)
                except httpx.TransportError:
                    status = 599
                    name += f" (connection dropped: {exc!r})"
            results.append((status, f"{method} {target[:80]} {name}"))
            if name == "body 70 KiB":
                assert status == 413, f"{method} {path} accepted a 70 KiB body ({status})"
    failures = [f"{status} {what}" for status, what in results if status >= 500]
    assert not failures, f"{len(failures)} of {len(results)} requests got 5xx:\n" + "\n".join(
        failures[:40])
    # The tables the injections named are still there and serving.
    assert client.get("/api/trading/orders", headers=user["headers"]).status_code == 200
    assert client.get(f"/api/audit/events?aggregateId={uuid.uuid4()}",
                      headers=user["headers"]).status_code == 200
    new_user(client)


# ---- login throttling -----------------------------------------------------------------------

def test_repeated_failed_logins_are_throttled_even_for_the_right_password(
        client: httpx.Client) -> None:
    user = new_user(client)
    wrong = "Wrong-" + uuid.uuid4().hex
    PLANTED.append(wrong)
    here = address()
    codes = [client.post("/auth/login", json={"email": user["email"], "password": wrong},
                         headers=here).status_code for _ in range(5)]
    assert codes == [401] * 5, codes
    throttled = client.post("/auth/login", json={"email": user["email"], "password": wrong},
                            headers=here)
    assert_refused(throttled, 429)
    assert float(throttled.headers["Retry-After"]) > 0
    right = client.post("/auth/login", json={"email": user["email"],
                                             "password": user["password"]}, headers=here)
    assert right.status_code == 429, "the right password must not bypass the throttle"
    # Other accounts are not locked out by someone else's failures.
    other = new_user(client)
    assert client.post("/auth/login", json={"email": other["email"],
                                            "password": other["password"]},
                       headers=here).status_code == 200


def test_thirty_parallel_wrong_passwords_get_at_most_five_answers(
        client: httpx.Client, running_system: RunningSystem) -> None:
    user = new_user(client)
    here = address()
    wrong = "Par-" + uuid.uuid4().hex
    PLANTED.append(wrong)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=running_system.api_url, timeout=30) as own:
            return own.post("/auth/login", json={"email": user["email"], "password": wrong},
                            headers=here).status_code

    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(attempt, range(30)))
    assert codes.count(401) <= 5 and set(codes) <= {401, 429}, codes
    # The same email from 30 other addresses: the per-account budget (20) holds too.
    def spread(_: int) -> int:
        return client.post("/auth/login", json={"email": user["email"], "password": wrong},
                           headers=address()).status_code

    with ThreadPoolExecutor(10) as pool:
        spread_codes = list(pool.map(spread, range(30)))
    assert spread_codes.count(401) + codes.count(401) <= 20, spread_codes


# ---- hostile numbers --------------------------------------------------------------------------

HOSTILE_NUMBERS = ["1e999999999", "1e-999999999", "-1e999999999", "9" * 4000,
                   "0." + "0" * 3000 + "1", "1E+99999999", "\u00b2", "1" * 60 + ".5"]


def test_hostile_numbers_are_refused_within_a_second_while_others_are_served(
        client: httpx.Client, running_system: RunningSystem) -> None:
    attacker, trader = new_user(client), new_user(client)
    stop = threading.Event()
    hostile: list[tuple[int, float, str]] = []

    def flood() -> None:
        with httpx.Client(base_url=running_system.api_url, timeout=30) as own:
            n = 0
            while not stop.is_set():
                number = HOSTILE_NUMBERS[n % len(HOSTILE_NUMBERS)]
                field = "quantity" if n % 2 else "price"
                n += 1
                body = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                        "quantity": "0.01", "price": "1000.00", field: number}
                start = time.monotonic()
                response = own.post("/api/trading/orders", json=body,
                                    headers={**attacker["headers"], **address()})
                hostile.append((response.status_code, time.monotonic() - start,
                                response.text))

    def calm_reads(count: int) -> list[float]:
        seconds = []
        for _ in range(count):
            start = time.monotonic()
            assert client.get("/api/trading/orders", headers=trader["headers"]).status_code == 200
            seconds.append(time.monotonic() - start)
        return seconds

    baseline = calm_reads(30)
    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    normal: list[float] = []
    try:
        time.sleep(0.5)
        for n in range(40):
            start = time.monotonic()
            if n % 4 == 0:
                response = client.post("/api/trading/orders", headers=trader["headers"], json={
                    "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
                    "price": "1000.00", "clientOrderId": f"calm-{uuid.uuid4().hex[:12]}"})
                assert response.status_code == 202, response.text
            else:
                response = client.get("/api/trading/orders", headers=trader["headers"])
                assert response.status_code == 200, response.text
            normal.append(time.monotonic() - start)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert len(hostile) >= 40, len(hostile)
    for status, seconds, text in hostile:
        assert 400 <= status < 500, (status, text[:200])
        assert seconds < 1.0, f"a hostile number took {seconds:.2f} s"
        assert not any(number in text for number in HOSTILE_NUMBERS if len(number) > 8)
    print(f"\nhostile: {len(hostile)} requests, slowest {max(s for _, s, _ in hostile):.3f} s; "
          f"normal user under the flood: median {statistics.median(normal) * 1000:.1f} ms, "
          f"max {max(normal) * 1000:.1f} ms; without it: median "
          f"{statistics.median(baseline) * 1000:.1f} ms, max {max(baseline) * 1000:.1f} ms")


# ---- sessions ---------------------------------------------------------------------------------

def test_logout_then_reuse_of_every_token_is_refused(client: httpx.Client) -> None:
    user = new_user(client)
    stream_token = client.post("/api/stream-token", headers=user["headers"]).json()["token"]
    assert client.post("/auth/logout", headers=user["headers"],
                       json={"refreshToken": user["refresh"]}).status_code == 204
    client.cookies.clear()
    assert_refused(client.get("/api/me", headers=user["headers"]))
    assert_refused(client.post("/api/trading/orders", headers=user["headers"], json={
        "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}))
    assert_refused(client.post("/auth/refresh", json={"refreshToken": user["refresh"]}))
    with client.stream("GET", "/api/stream", params={"token": stream_token}) as response:
        assert response.status_code == 401
    # Sign out everywhere and a password change end the other logins too.
    other = new_user(client)
    second = client.post("/auth/login", json={"email": other["email"],
                                              "password": other["password"]},
                         headers=address()).json()
    TOKENS.extend([second["token"], second["refreshToken"]])
    new_password = "Changed-" + uuid.uuid4().hex
    PLANTED.append(new_password)
    changed = client.post("/api/account/password", headers=other["headers"], json={
        "currentPassword": other["password"], "newPassword": new_password})
    assert changed.status_code == 204, changed.text
    client.cookies.clear()
    for token in (other["token"], second["token"]):
        assert_refused(client.get("/api/me", headers=bearer(token)))
    assert_refused(client.post("/auth/refresh", json={"refreshToken": second["refreshToken"]}))


# ---- streams ----------------------------------------------------------------------------------

def test_streams_are_capped_per_user_and_stream_tokens_are_single_use(
        client: httpx.Client, running_system: RunningSystem) -> None:
    from adapters.platform.settings import Settings

    cap = Settings.model_fields["streams_per_user"].default
    user, other = new_user(client), new_user(client)
    token = client.post("/api/stream-token", headers=user["headers"]).json()["token"]
    with httpx.Client(base_url=running_system.api_url,
                      timeout=httpx.Timeout(10, read=30)) as streams:
        opened = []
        try:
            first = streams.stream("GET", "/api/stream", params={"token": token})
            opened.append(first)
            assert first.__enter__().status_code == 200
            again = streams.stream("GET", "/api/stream", params={"token": token})
            with again as response:
                assert response.status_code == 401, "a stream token opened a second stream"
            for _ in range(cap - 1):
                more = streams.stream("GET", "/api/stream", headers=user["headers"])
                opened.append(more)
                assert more.__enter__().status_code == 200
            with streams.stream("GET", "/api/stream", headers=user["headers"]) as refused:
                assert refused.status_code == 429
                refused.read()
                RECORDER.bodies.append(refused.text)
                assert refused.json()["error"]["code"] == "too_many_streams"
            with streams.stream("GET", "/api/stream", headers=other["headers"]) as theirs:
                assert theirs.status_code == 200, "one user's streams held another back"
        finally:
            for stream in opened:
                stream.__exit__(None, None, None)
    time.sleep(1.0)
    with client.stream("GET", "/api/stream", headers=user["headers"],
                       timeout=httpx.Timeout(10, read=5)) as after:
        assert after.status_code == 200, "closed streams did not give their slots back"


# ---- metrics and start-up -------------------------------------------------------------------

def test_metrics_are_off_the_public_port_and_printed_for_every_process(
        client: httpx.Client, running_system: RunningSystem) -> None:
    assert client.get("/metrics").status_code == 404
    lines = running_system.output()
    for name in ("api", "relay", "projector", "worker"):
        match = re.search(rf"\]\s+{name}\s+starting\s.*metrics: (http://[\d.]+:\d+/metrics)",
                          lines)
        assert match, f"no metrics URL for {name} in the start-up lines:\n{lines}"
        scraped = httpx.get(match.group(1), timeout=10)
        assert scraped.status_code == 200 and "# TYPE" in scraped.text, name
        assert match.group(1).startswith("http://127.0.0.1:"), "metrics must bind to loopback"


def test_the_documented_placeholder_secret_is_refused_at_start_up(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / ".env.example").read_text()
    placeholder = re.search(r"^TRADELEDGER_JWT_SECRET=(.*)$", example, re.M)
    assert placeholder
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELEDGER_")}
    env.update({"PYTHONPATH": str(root), "TRADELEDGER_DATA_DIR": str(tmp_path),
                "TRADELEDGER_JWT_SECRET": placeholder.group(1)})
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "up", "--api-port", "0", "--dashboard-port", "0",
         "--no-dashboard"], env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TRADELEDGER_JWT_SECRET" in done.stderr
    assert placeholder.group(1) not in done.stdout + done.stderr
    assert not (tmp_path / "postgres").exists(), "something started before the check"


# ---- the secret scan ------------------------------------------------------------------------

def kafka_messages(env: dict[str, str]) -> list[bytes]:
    """Every message of the events topic, read from the start with manual assignment."""
    from kafka import KafkaConsumer, TopicPartition

    topic = env.get("TRADELEDGER_KAFKA_TOPIC", "tradeledger.events.v2")
    consumer = KafkaConsumer(bootstrap_servers=env["TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS"],
                             enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        for tp in assignment:
            consumer.seek(tp, 0)
        out: list[bytes] = []
        idle = 0
        while idle < 3:
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            if not batch:
                idle += 1
                continue
            idle = 0
            for records in batch.values():
                for record in records:
                    out.append((record.key or b"") + b" " + (record.value or b"") + b" "
                               + b" ".join(v or b"" for _, v in record.headers or []))
        return out
    finally:
        consumer.close()


def stored_rows(db_url: str) -> tuple[int, list[str]]:
    """Every row of every table in our schema as text; and how many events are stored."""
    texts: list[str] = []
    with psycopg.connect(db_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (SCHEMA,))]
        for table in tables:
            for (row,) in conn.execute(f'SELECT t::text FROM "{SCHEMA}"."{table}" t'):
                texts.append(row)
        events = conn.execute(
            f'SELECT state FROM "{SCHEMA}".tradeledger_events').fetchall()
        texts += [bytes(state).decode("utf-8", "replace") for (state,) in events]
    return len(events), texts


def test_no_secret_appears_in_logs_events_kafka_messages_or_responses(
        client: httpx.Client, running_system: RunningSystem, env: dict[str, str]) -> None:
    user = new_user(client)
    login = client.post("/auth/login", json={"email": user["email"],
                                             "password": user["password"]}, headers=address())
    TOKENS.extend([login.json()["token"], login.json()["refreshToken"]])
    refreshed = client.post("/auth/refresh", json={"refreshToken": user["refresh"]},
                            headers=address())
    TOKENS.extend([refreshed.json()["token"], refreshed.json()["refreshToken"]])
    keys_secret = "SK" + uuid.uuid4().hex * 2
    PLANTED.append(keys_secret)
    client.put("/api/account/exchange-keys", headers=user["headers"],
               json={"apiKey": "ak" + uuid.uuid4().hex, "secretKey": keys_secret})
    client.post("/api/trading/orders", headers=user["headers"], json={
        "symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"})
    time.sleep(3)  # let the relay, projector and worker log what they do with it

    data_dir = running_system.data_dir
    secrets = {f"planted #{i}": s for i, s in enumerate(PLANTED)}
    generated = json.loads((data_dir / "secrets.json").read_text())
    secrets["jwt secret"] = env.get("TRADELEDGER_JWT_SECRET") or generated["jwt_secret"]
    for spec in (env.get("TRADELEDGER_MASTER_KEYS"), generated["master_keys"]):
        for n, entry in enumerate((spec or "").split(",")):
            if ":" in entry:
                secrets[f"master key {n}"] = entry.split(":", 1)[1]
    # The exchange secrets the worker provisioned for our users (the paper exchange keeps
    # them by design; nothing of ours may show them).
    exchange_db = data_dir / "paper-exchange" / "paper_exchange.sqlite3"
    if exchange_db.exists():
        import sqlite3

        db = sqlite3.connect(f"file:{exchange_db}?mode=ro", uri=True)
        try:
            for n, (secret,) in enumerate(db.execute("SELECT secret FROM accounts")):
                secrets[f"exchange secret {n}"] = secret
        finally:
            db.close()

    logs = {p.name: p.read_text(errors="replace")
            for p in [*data_dir.glob("*.log"), *(data_dir / "logs").glob("*.log")]}
    assert "api.log" in logs and "up.log" in logs, sorted(logs)
    event_count, rows = stored_rows(env["TRADELEDGER_DATABASE_URL"])
    assert event_count > 0
    messages = kafka_messages(env)
    assert messages, "the events topic is empty: nothing was scanned"
    places: dict[str, list[str]] = {
        **{f"log {name}": [text] for name, text in logs.items()},
        "postgres rows and stored events": rows,
        "kafka messages": [m.decode("utf-8", "replace") for m in messages],
        "response bodies": RECORDER.bodies,
    }
    leaks = [f"{what} in {where}" for what, secret in secrets.items() if len(secret) >= 8
             for where, texts in places.items() if any(secret in t for t in texts)]
    # Tokens are in their own responses by design; nowhere else.
    leaks += [f"token #{n} in {where}" for n, token in enumerate(TOKENS)
              for where, texts in places.items() if where != "response bodies"
              and any(token in t for t in texts)]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
    print(f"\nscanned {len(secrets)} secrets and {len(TOKENS)} tokens in {len(logs)} logs, "
          f"{len(rows)} rows "
          f"({event_count} events), {len(messages)} Kafka messages, "
          f"{len(RECORDER.bodies)} responses")
