"""What routes depend on: the per-app context and the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request
from psycopg_pool import ConnectionPool

from adapters.api.auth_store import AuthStore
from adapters.api.errors import ApiError, unauthorized
from adapters.api.hub import ChangeHub
from adapters.api.ratelimit import RateLimiter
from adapters.api.tokens import STREAM_AUDIENCE, Principal, TokenService
from adapters.binance.marketdata import MarketData
from adapters.platform.bootstrap import Runtime
from adapters.postgres.readmodels import ReadModels

ACCESS_COOKIE = "tl_access"
ReadyCheck = Callable[[], "bool | Awaitable[bool]"]


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
    return ctx.tokens.verify(token)


async def stream_user(
    request: Request,
    ctx: Ctx,
    token: Annotated[str | None, Query(max_length=2048,
                                       description="a stream token from POST /api/stream-token")
                     ] = None,
) -> Principal:
    """Authenticate an SSE request: bearer header, the cookie, or `?token=` (stream token)."""
    if token:
        return ctx.tokens.verify(token, audience=STREAM_AUDIENCE)
    return await current_user(request, ctx)


CurrentUser = Annotated[Principal, Depends(current_user)]
StreamUser = Annotated[Principal, Depends(stream_user)]


def client_ip(request: Request) -> str:
    """The caller's address as this server sees it (a proxy should set --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"
