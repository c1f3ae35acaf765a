"""What routes depend on: the per-app context and the authenticated caller."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import Depends, Query, Request
from psycopg_pool import ConnectionPool

from adapters.api.audit import UserAudit
from adapters.api.auth_store import AuthStore
from adapters.api.errors import ApiError, unauthorized
from adapters.api.hub import ChangeHub
from adapters.api.ratelimit import RateLimiter
from adapters.api.tokens import STREAM_AUDIENCE, Principal, TokenService
from adapters.binance.marketdata import MarketData
from adapters.platform.bootstrap import Runtime
from adapters.postgres.readmodels import ReadModels

ACCESS_COOKIE = "tl_access"
REFRESH_COOKIE = "tl_refresh"
REFRESH_PATH = "/auth"
COOKIE_MODE_HEADER = "x-refresh-cookie"  # "1": keep the refresh token in a cookie only
ReadyCheck = Callable[[], "bool | Awaitable[bool]"]
SESSION_CHECK_SECONDS = 2.0


class SessionGate:
    """Whether a token's session is still signed in, asked of Postgres at most once per
    session every SESSION_CHECK_SECONDS (beside the verified-token cache).

    Logout in this process takes effect at once (its entry is dropped); in another API
    process within SESSION_CHECK_SECONDS.
    """

    MAX_ENTRIES = 50_000

    def __init__(self, ttl: float = SESSION_CHECK_SECONDS) -> None:
        self.ttl = ttl
        self._live: dict[UUID, tuple[float, UUID, bool]] = {}

    def cached(self, session_id: UUID) -> bool | None:
        hit = self._live.get(session_id)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[2]
        return None

    def remember(self, session_id: UUID, account_id: UUID, live: bool) -> None:
        if len(self._live) >= self.MAX_ENTRIES:
            self._live.clear()
        self._live[session_id] = (time.monotonic(), account_id, live)

    def forget(self, session_id: UUID) -> None:
        self._live.pop(session_id, None)

    def forget_account(self, account_id: UUID) -> None:
        for sid, entry in list(self._live.items()):
            if entry[1] == account_id:
                self._live.pop(sid, None)


@dataclass
class ApiContext:
    """Everything the routes of one app share; built by create_app, filled in by the lifespan."""

    runtime: Runtime
    tokens: TokenService
    limiter: RateLimiter
    market: MarketData | None = None
    on_account_registered: Callable[[UUID], Any] | None = None
    # (apiKey, secretKey, environment) -> None; raises ExchangeKeysRejected / Unavailable.
    keys_checker: Callable[[str, str, str], None] | None = None
    ready_checks: Mapping[str, ReadyCheck] = field(default_factory=dict)
    pool: ConnectionPool | None = None
    auth_store: AuthStore | None = None
    read_models: ReadModels | None = None
    hub: ChangeHub | None = None
    write_limiter: Any = None  # anyio.CapacityLimiter, made in the lifespan (needs a loop)
    sessions: SessionGate = field(default_factory=SessionGate)
    auth_limiter: RateLimiter | None = None  # registrations and refreshes per client IP
    market_limiter: RateLimiter | None = None  # market-data requests per client IP
    user_audit: UserAudit | None = None
    market_cache: Any = None  # routes.market.MarketCache, made on first use
    streams: dict[str, int] = field(default_factory=dict)  # open SSE streams per owner
    alerts: Any = None  # adapters.postgres.alerts.AlertStore, made in the lifespan

    def require_auth_store(self) -> AuthStore:
        if self.auth_store is None:
            raise ApiError(503, "unavailable", "the API is still starting")
        return self.auth_store

    def require_read_models(self) -> ReadModels:
        if self.read_models is None:
            raise ApiError(503, "unavailable", "the read models are not available")
        return self.read_models

    def require_market(self) -> MarketData:
        if self.market is None:
            raise ApiError(503, "market_data_unavailable", "no market data source is configured")
        return self.market


async def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_token")
    return token.strip()


async def current_user(request: Request, ctx: Ctx) -> Principal:
    """Authenticate by bearer token; on safe (GET) requests the HttpOnly cookie also works.

    State-changing requests need the header, so a cookie alone can never place an order
    on a user's behalf (no CSRF).
    """
    token = _bearer(request)
    if token is None and request.method in ("GET", "HEAD"):
        token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise unauthorized()
    return await check_session(ctx, ctx.tokens.verify(token))


async def check_session(ctx: ApiContext, principal: Principal) -> Principal:
    """Refuse a token whose session has ended (logout, password change, lifetime)."""
    live = ctx.sessions.cached(principal.session_id)
    if live is None:
        store = ctx.require_auth_store()
        live = await anyio.to_thread.run_sync(store.session_live, principal.session_id)
        ctx.sessions.remember(principal.session_id, principal.account_id, live)
    if not live:
        raise unauthorized("the session has ended; sign in again", "session_ended")
    return principal


async def stream_user(
    request: Request,
    ctx: Ctx,
    token: Annotated[str | None, Query(max_length=2048,
                                       description="a stream token from POST /api/stream-token")
                     ] = None,
) -> Principal:
    """Authenticate an SSE request: bearer header, the cookie, or `?token=` (a stream
    token, good for one stream: a token seen in a log or a history opens nothing)."""
    if token:
        principal = await check_session(ctx, ctx.tokens.verify(token, audience=STREAM_AUDIENCE))
        store = ctx.require_auth_store()
        if not await anyio.to_thread.run_sync(store.spend_stream_token, principal.token_id,
                                              principal.expires_at):
            raise unauthorized("the stream token was already used", "invalid_token")
        return principal
    return await current_user(request, ctx)


CurrentUser = Annotated[Principal, Depends(current_user)]
StreamUser = Annotated[Principal, Depends(stream_user)]


def client_ip(request: Request) -> str:
    """The caller's address as this server sees it (a proxy should set --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"
