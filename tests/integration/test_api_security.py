"""Issue 16 through HTTP: hostile numbers, brute force, sessions, streams, cookies, market
caching, CORS. Each test here failed before its fix."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from adapters.api.app import create_app
from adapters.platform.bootstrap import Runtime
from adapters.platform.crypto import ConfigurationError
from tests.support.api import (
    LIMIT_ORDER,
    PASSWORD,
    LiveServer,
    TestClient,
    next_event,
    register,
    sse_events,
)

pytestmark = pytest.mark.integration


def sql_exec(runtime: Runtime, statement: str, *args: Any) -> None:
    schema = runtime.settings.database_schema
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(statement.replace("{schema}", f'"{schema}"'), args)


# ---- High 1: hostile numbers --------------------------------------------------------------

@pytest.mark.parametrize("quantity", ["1e999999999", "1e-999999999", "9" * 5000, "\u00b2"])
def test_hostile_quantities_are_refused_at_once_and_never_echoed(api: Any,
                                                                 quantity: str) -> None:
    user = register(api)
    start = time.monotonic()
    response = api.post("/api/trading/orders", headers=user.headers,
                        json={**LIMIT_ORDER, "quantity": quantity})
    assert time.monotonic() - start < 1.0
    assert response.status_code == 422, response.text
    assert quantity not in response.text


def test_unicode_digits_in_as_of_and_last_event_id_are_422(api: Any) -> None:
    user = register(api)
    placed = api.post("/api/trading/orders", headers=user.headers, json=LIMIT_ORDER).json()
    response = api.get(f"/api/trading/orders/{placed['orderId']}", headers=user.headers,
                       params={"asOf": "\u00b2"})
    assert response.status_code == 422, response.text
    stream = api.get("/api/stream", headers=user.headers, params={"lastEventId": "\u00b2"})
    assert stream.status_code == 422, stream.text
    raw = api.get("/api/stream", headers={**user.headers,
                                          "Last-Event-ID": "\u00b2".encode()})
    assert raw.status_code == 422, raw.text


# ---- Medium 4: brute force ------------------------------------------------------------------

def test_thirty_parallel_wrong_passwords_get_at_most_five_answers(live_api: LiveServer) -> None:
    with httpx.Client(base_url=live_api.url, timeout=30) as client:
        user = register(client)

        def attempt(_: int) -> int:
            return client.post("/auth/login", json={"email": user.email,
                                                    "password": "wrong-" + uuid.uuid4().hex}
                               ).status_code

        with ThreadPoolExecutor(30) as pool:
            codes = list(pool.map(attempt, range(30)))
    assert codes.count(401) <= 5, codes
    assert set(codes) <= {401, 429}


def test_failures_over_many_emails_from_one_address_are_throttled(api: Any) -> None:
    from adapters.api.auth_store import LOGIN_MAX_FAILURES_PER_IP

    codes = [api.post("/auth/login", json={"email": f"nobody{n}@example.com",
                                           "password": "x" * 12}).status_code
             for n in range(LOGIN_MAX_FAILURES_PER_IP + 1)]
    assert codes[-1] == 429 and codes.count(401) == LOGIN_MAX_FAILURES_PER_IP


def test_registration_and_refresh_are_throttled_per_address(runtime: Runtime) -> None:
    runtime.settings.auth_requests_per_ip_per_minute = 3
    runtime.settings.cookie_secure = "never"
    with TestClient(create_app(runtime)) as client:
        users = [register(client) for _ in range(3)]
        refused = client.post("/auth/register", json={"email": "late@example.com",
                                                      "password": PASSWORD})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        for _ in range(3):
            client.post("/auth/refresh", json={"refreshToken": users[0].refresh_token})
        assert client.post("/auth/refresh", json={
            "refreshToken": users[1].refresh_token}).status_code == 429


def test_unknown_emails_cost_one_verify_like_known_ones() -> None:
    from domain.errors import AuthenticationFailed
    from tests.unit.fakes import make_app

    app = make_app()
    calls: list[str] = []
    real_hash, real_verify = app.hasher.hash, app.hasher.verify
    app.hasher.hash = lambda pw: calls.append(pw) or real_hash(pw)  # type: ignore[method-assign]
    app.hasher.verify = (  # type: ignore[method-assign]
        lambda h, pw: calls.append("verify") or real_verify(h, pw))
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            app.authenticate("nobody@example.com", "whatever-password")
    # One verify each (as for a known email), against a dummy hash made only once.
    assert calls.count("verify") == 3 and calls.count("timing-equaliser") <= 1


# ---- Medium 5: sessions ---------------------------------------------------------------------

def test_logout_ends_the_access_token_too(api: Any) -> None:
    user = register(api)
    api.cookies.clear()
    assert api.get("/api/me", headers=user.headers).status_code == 200
    assert api.post("/auth/logout", headers=user.headers,
                    json={"refreshToken": user.refresh_token}).status_code == 204
    refused = api.get("/api/me", headers=user.headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "session_ended"
    assert api.post("/api/stream-token", headers=user.headers).status_code == 401
    assert api.post("/auth/refresh",
                    json={"refreshToken": user.refresh_token}).status_code == 401


def test_logout_with_only_the_access_token_ends_that_session(api: Any) -> None:
    user = register(api)
    other = api.post("/auth/login", json={"email": user.email, "password": PASSWORD}).json()
    api.cookies.clear()
    assert api.post("/auth/logout", headers=user.headers).status_code == 204
    assert api.get("/api/me", headers=user.headers).status_code == 401
    # The other login of the same account lives on.
    assert api.get("/api/me", headers={"Authorization": f"Bearer {other['token']}"}
                   ).status_code == 200


def test_sign_out_everywhere_ends_every_session(api: Any) -> None:
    user = register(api)
    second = api.post("/auth/login", json={"email": user.email, "password": PASSWORD}).json()
    api.cookies.clear()
    assert api.post("/auth/logout-all", headers=user.headers).status_code == 204
    for token in (user.token, second["token"]):
        assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}
                       ).status_code == 401
    assert api.post("/auth/refresh",
                    json={"refreshToken": second["refreshToken"]}).status_code == 401
    assert api.post("/auth/login", json={"email": user.email,
                                         "password": PASSWORD}).status_code == 200


def test_password_change_needs_the_current_one_and_ends_every_session(api: Any) -> None:
    user = register(api)
    api.cookies.clear()
    wrong = api.post("/api/account/password", headers=user.headers,
                     json={"currentPassword": "not-it-at-all", "newPassword": "a-new-password-1"})
    assert wrong.status_code == 401
    assert api.get("/api/me", headers=user.headers).status_code == 200
    short = api.post("/api/account/password", headers=user.headers,
                     json={"currentPassword": PASSWORD, "newPassword": "x"})
    assert short.status_code == 422
    done = api.post("/api/account/password", headers=user.headers,
                    json={"currentPassword": PASSWORD, "newPassword": "a-new-password-1"})
    assert done.status_code == 204, done.text
    assert api.get("/api/me", headers=user.headers).status_code == 401
    assert api.post("/auth/refresh", json={"refreshToken": user.refresh_token}).status_code == 401
    assert api.post("/auth/login", json={"email": user.email,
                                         "password": PASSWORD}).status_code == 401
    assert api.post("/auth/login", json={"email": user.email,
                                         "password": "a-new-password-1"}).status_code == 200


def test_a_login_has_an_absolute_lifetime_however_often_it_is_refreshed(
        api: Any, runtime: Runtime) -> None:
    user = register(api)
    api.cookies.clear()
    token = api.post("/auth/refresh", json={"refreshToken": user.refresh_token}).json()
    sql_exec(runtime, "UPDATE {schema}.api_sessions SET started_at = now() - %s "
             "WHERE account_id = %s", timedelta(days=runtime.settings.session_max_days, hours=1),
             uuid.UUID(user.id))
    api.app.state.ctx.sessions.forget_account(uuid.UUID(user.id))
    assert api.post("/auth/refresh",
                    json={"refreshToken": token["refreshToken"]}).status_code == 401
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token['token']}"}
                   ).status_code == 401


def test_a_token_without_a_session_claim_is_refused(api: Any, runtime: Runtime) -> None:
    user = register(api)
    api.cookies.clear()
    claims = jwt.decode(user.token, options={"verify_signature": False})
    del claims["sid"]
    token = jwt.encode(claims, runtime.jwt_secret, algorithm="HS256")
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# ---- Medium 6: streams ----------------------------------------------------------------------

def test_stream_tokens_are_single_use_and_streams_are_capped(runtime: Runtime) -> None:
    runtime.settings.streams_per_user = 2

    async def scenario(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as sync:
            user, other = register(sync), register(sync)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            token = (await client.post("/api/stream-token", headers=user.headers)).json()["token"]
            async with client.stream("GET", "/api/stream", params={"token": token}) as first:
                assert first.status_code == 200
                events = sse_events(first)  # held: dropping it would close the stream
                assert (await next_event(events)).event == "READY"
                async with client.stream("GET", "/api/stream",
                                         params={"token": token}) as again:
                    assert again.status_code == 401  # the token was spent
                async with client.stream("GET", "/api/stream", headers=user.headers) as second:
                    assert second.status_code == 200
                    async with client.stream("GET", "/api/stream",
                                             headers=user.headers) as third:
                        assert third.status_code == 429
                        await third.aread()
                        assert third.json()["error"]["code"] == "too_many_streams"
                    # Another user is not held back by this one's streams.
                    async with client.stream("GET", "/api/stream",
                                             headers=other.headers) as theirs:
                        assert theirs.status_code == 200
            await asyncio.sleep(0.3)  # closed streams give their slots back
            async with client.stream("GET", "/api/stream", headers=user.headers) as after:
                assert after.status_code == 200

    app = create_app(runtime, hub_poll_seconds=30.0)
    server = LiveServer(app).start()
    try:
        asyncio.run(asyncio.wait_for(scenario(server.url), 30))
    finally:
        server.stop()


def test_a_replay_from_zero_is_bounded() -> None:
    from adapters.api.hub import ChangeHub, Reset

    class Source:
        def changes_since(self, account_id: str, seq: int, limit: int = 500) -> list[Any]:
            return [type("C", (), {"seq": s})() for s in range(seq + 1, min(seq + limit,
                                                                            10_000) + 1)]

        def latest_seq(self, account_id: str) -> int:
            return 10_000

    async def scenario() -> list[Any]:
        hub = ChangeHub("postgresql://unused.invalid/x", Source(), channel="x_changes",
                        poll_seconds=60)
        out: list[Any] = []
        async for item in hub.changes("a", 0, max_replay=700):
            out.append(item)
            if isinstance(item, int) and not isinstance(item, Reset):
                break
        await hub.stop()
        return out

    items = asyncio.run(scenario())
    changes = [i for i in items if not isinstance(i, int)]
    assert len(changes) == 700
    assert any(isinstance(i, Reset) and int(i) == 10_000 for i in items)


# ---- Medium 8 and Low: cookies, CORS --------------------------------------------------------

def test_a_browser_keeps_its_refresh_token_in_an_httponly_cookie(runtime: Runtime) -> None:
    runtime.settings.cookie_secure = "always"
    with TestClient(create_app(runtime), base_url="https://testserver") as client:
        email = f"c{uuid.uuid4().hex[:8]}@example.com"
        response = client.post("/auth/register", headers={"X-Refresh-Cookie": "1"},
                               json={"email": email, "password": PASSWORD})
        assert response.status_code == 201
        assert response.json()["refreshToken"] is None  # scripts never see it
        cookies = [c for c in response.headers.get_list("set-cookie")
                   if c.startswith("tl_refresh=")]
        assert cookies, response.headers
        attrs = cookies[0].lower()
        for flag in ("httponly", "secure", "samesite=strict", "path=/auth"):
            assert flag in attrs, attrs
        again = client.post("/auth/refresh")  # the cookie alone
        assert again.status_code == 200, again.text
        assert again.json()["refreshToken"] is None and again.json()["token"]
        assert client.post("/auth/logout").status_code == 204
        assert client.post("/auth/refresh").status_code == 401


def test_the_secure_flag_holds_behind_a_tls_proxy(runtime: Runtime) -> None:
    with TestClient(create_app(runtime), base_url="http://api.internal") as client:
        response = client.post("/auth/register", json={
            "email": f"p{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD})
        assert "secure" in response.headers["set-cookie"].lower()


def test_cors_with_credentials_refuses_a_wildcard(runtime: Runtime) -> None:
    with pytest.raises(ConfigurationError, match="CORS"):
        create_app(runtime, cors_origins=["*"])


# ---- Medium 10: market data ---------------------------------------------------------------

class CountingMarket:
    def __init__(self) -> None:
        self.calls = 0

    async def klines(self, symbol: str, interval: str, limit: int) -> list[dict[str, Any]]:
        self.calls += 1
        await asyncio.sleep(0.01)
        return [{"time": 1, "open": "1", "high": "1", "low": "1", "close": "1", "volume": "1"}]

    async def ticker(self, symbol: str) -> dict[str, Any]:
        self.calls += 1
        return {"symbol": symbol, "price": "1", "change24h": "0"}


def test_market_answers_are_cached_and_limited_per_address(runtime: Runtime) -> None:
    runtime.settings.market_requests_per_ip_per_second = 5
    market = CountingMarket()
    with TestClient(create_app(runtime, market=market)) as client:  # type: ignore[arg-type]
        codes = [client.get("/api/market/BTCUSDT/klines").status_code for _ in range(12)]
        assert codes.count(200) == 10 and codes.count(429) == 2, codes
        assert market.calls == 1  # one exchange request served all of them
