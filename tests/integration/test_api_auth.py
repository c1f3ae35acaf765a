"""Auth through HTTP: register, login, refresh rotation, logout, throttling, bad tokens."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import psycopg
import pytest

from adapters.platform.bootstrap import Runtime
from tests.support.api import (
    LIMIT_ORDER,
    PASSWORD,
    register,
)

pytestmark = pytest.mark.integration


def claims_for(runtime: Runtime, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": runtime.settings.jwt_issuer, "aud": runtime.settings.jwt_audience,
              "sub": str(uuid.uuid4()), "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex,
              "sid": str(uuid.uuid4())}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def get_me(api: Any, token: str) -> Any:
    return api.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def test_register_returns_201_with_token_user_and_cookie(api: Any) -> None:
    response = api.post("/auth/register", json={"email": "  Trader@Example.COM ",
                                                  "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "trader@example.com"
    assert body["token"] and body["refreshToken"]
    cookie = response.headers["set-cookie"]
    assert "tl_access=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    me = get_me(api, body["token"]).json()
    assert me == {"id": body["user"]["id"], "email": "trader@example.com",
                  "exchangeKeys": {"connected": False, "apiKeyHint": None, "environment": None,
                                   "status": "none", "reason": None}}


def test_register_twice_is_409_and_short_password_422_and_bad_email_422(api: Any) -> None:
    register(api, "dup@example.com")
    again = api.post("/auth/register", json={"email": "DUP@example.com", "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_already_registered"
    short = api.post("/auth/register", json={"email": "s@example.com", "password": "short"})
    assert short.status_code == 422 and short.json()["error"]["details"]["field"] == "password"
    bad = api.post("/auth/register", json={"email": "not-an-email", "password": PASSWORD})
    assert bad.status_code == 422


def test_register_with_keys_connects_them_and_calls_the_hook(runtime: Runtime) -> None:
    from adapters.api.app import create_app
    from tests.support.api import TestClient

    seen: list[Any] = []
    with TestClient(create_app(runtime, on_account_registered=seen.append)) as client:
        user = register(client, binanceApiKey="AKIAEXAMPLEKEY1234", binanceSecretKey="s3cret")
        keys = client.get("/api/account/exchange-keys", headers=user.headers).json()
        assert keys == {"connected": True, "apiKeyHint": "AKIA********1234",
                        "environment": "paper", "status": "active", "reason": None}
        assert [str(a) for a in seen] == [user.id]
        half = client.post("/auth/register", json={"email": "half@example.com",
                                                   "password": PASSWORD, "binanceApiKey": "k"})
        assert half.status_code == 422
        assert client.post("/auth/login", json={"email": "half@example.com",
                                                "password": PASSWORD}).status_code == 401


def test_login_works_and_wrong_password_or_unknown_email_is_401(api: Any) -> None:
    register(api, "login@example.com")
    ok = api.post("/auth/login", json={"email": "LOGIN@example.com", "password": PASSWORD})
    assert ok.status_code == 200 and get_me(api, ok.json()["token"]).status_code == 200
    wrong = api.post("/auth/login", json={"email": "login@example.com", "password": "x" * 12})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "authentication_failed"
    unknown = api.post("/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert unknown.status_code == 401
    nul = api.post("/auth/login", json={"email": "\x00' OR 1=1; --", "password": PASSWORD})
    assert nul.status_code == 422


def test_five_failed_logins_are_throttled_with_retry_after_even_for_the_right_password(
        api: Any) -> None:
    register(api, "throttle@example.com")
    for _ in range(5):
        assert api.post("/auth/login", json={"email": "throttle@example.com",
                                             "password": "wrong password!"}).status_code == 401
    blocked = api.post("/auth/login", json={"email": "throttle@example.com",
                                            "password": PASSWORD})
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 300
    assert blocked.json()["error"]["code"] == "rate_limited"
    # Another email from the same address is unaffected.
    register(api, "other@example.com")
    assert api.post("/auth/login", json={"email": "other@example.com",
                                         "password": PASSWORD}).status_code == 200


def age_rotations(runtime: Runtime, seconds: int) -> None:
    """Pretend every rotation happened `seconds` ago (past the reuse interval)."""
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{runtime.settings.database_schema}".api_refresh_tokens '
                     "SET revoked_at = revoked_at - make_interval(secs => %s) "
                     "WHERE revoked_at IS NOT NULL", (seconds,))


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
        api: Any, runtime: Runtime) -> None:
    user = register(api)
    first = api.post("/auth/refresh", json={"refreshToken": user.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["refreshToken"]
    assert rotated != user.refresh_token and get_me(api, first.json()["token"]).status_code == 200
    age_rotations(runtime, 60)
    reused = api.post("/auth/refresh", json={"refreshToken": user.refresh_token})
    assert reused.status_code == 401
    # The theft response: the newest token of that login is dead too.
    assert api.post("/auth/refresh", json={"refreshToken": rotated}).status_code == 401
    assert api.post("/auth/refresh", json={"refreshToken": "garbage"}).status_code == 401


def test_two_tabs_refreshing_with_the_same_token_at_once_both_keep_the_login(
        api: Any, runtime: Runtime) -> None:
    user = register(api)
    first = api.post("/auth/refresh", json={"refreshToken": user.refresh_token})
    second = api.post("/auth/refresh", json={"refreshToken": user.refresh_token})
    assert first.status_code == second.status_code == 200
    a, b = first.json()["refreshToken"], second.json()["refreshToken"]
    # The replay gets the same successor back, not a new sibling each time (issue 16):
    # a thief replaying within the interval gains nothing the owner does not hold.
    assert a == b
    third = api.post("/auth/refresh", json={"refreshToken": user.refresh_token})
    assert third.json()["refreshToken"] == a
    assert api.post("/auth/refresh", json={"refreshToken": a}).status_code == 200
    # Outside the reuse interval the same replay is a theft: the whole login dies.
    age_rotations(runtime, 60)
    assert api.post("/auth/refresh", json={"refreshToken": user.refresh_token}).status_code == 401
    assert api.post("/auth/refresh", json={"refreshToken": a}).status_code == 401


def test_logout_revokes_the_refresh_token_and_clears_the_cookie(api: Any) -> None:
    user = register(api)
    out = api.post("/auth/logout", json={"refreshToken": user.refresh_token})
    assert out.status_code == 204
    assert 'tl_access=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert api.post("/auth/refresh", json={"refreshToken": user.refresh_token}).status_code == 401
    assert api.post("/auth/logout").status_code == 204


def test_missing_malformed_tampered_and_none_alg_tokens_are_401(api: Any,
                                                                runtime: Runtime) -> None:
    user = register(api)
    api.cookies.clear()
    assert api.get("/api/me").status_code == 401
    assert api.get("/api/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert get_me(api, "not.a.jwt").status_code == 401
    header, payload, signature = user.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = get_me(api, f"{header}.{forged}.{signature}")
    assert tampered.status_code == 401 and tampered.json()["error"]["code"] == "invalid_token"
    assert tampered.headers["WWW-Authenticate"] == "Bearer"
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    assert get_me(api, f"{none_header}.{payload}.").status_code == 401
    unsigned = jwt.encode(claims_for(runtime, sub=user.id), key="", algorithm="none")
    assert get_me(api, unsigned).status_code == 401


def test_expired_wrong_audience_wrong_issuer_wrong_key_and_missing_claims_are_401(
        api: Any, runtime: Runtime) -> None:
    user = register(api)
    secret = runtime.jwt_secret
    sid = jwt.decode(user.token, options={"verify_signature": False})["sid"]

    def status(claims: dict[str, Any], key: str = secret, alg: str = "HS256") -> int:
        return int(get_me(api, jwt.encode(claims, key, algorithm=alg)).status_code)

    assert status(claims_for(runtime, sid=sid, sub=user.id)) == 200  # the control
    expired = get_me(api, jwt.encode(claims_for(runtime, sid=sid, sub=user.id,
                                                exp=int(time.time()) - 60),
                                     secret, algorithm="HS256"))
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "token_expired"
    assert status(claims_for(runtime, sid=sid, sub=user.id, aud="someone-else")) == 401
    assert status(claims_for(runtime, sid=sid, sub=user.id, iss="evil")) == 401
    assert status(claims_for(runtime, sid=sid, sub=user.id), key="x" * 48) == 401
    assert status(claims_for(runtime, sid=sid, sub=user.id), alg="HS512") == 401
    assert status(claims_for(runtime, sid=sid, sub=user.id, jti=None)) == 401
    assert status(claims_for(runtime, sub="not-a-uuid")) == 401
    # A stream token opens streams only.
    stream_token = api.post("/api/stream-token", headers=user.headers).json()["token"]
    assert get_me(api, stream_token).status_code == 401


def test_cookie_authenticates_reads_but_never_writes(api: Any) -> None:
    user = register(api)  # the TestClient keeps the cookie from the registration
    assert api.get("/api/me").status_code == 200
    assert api.post("/api/trading/orders", json=LIMIT_ORDER).status_code == 401
    api.cookies.clear()
    assert api.get("/api/me").status_code == 401
    assert api.get("/api/me", headers=user.headers).status_code == 200
