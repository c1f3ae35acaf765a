"""The FastAPI application factory: routers, errors, and the lifespan that connects.

Nothing connects at import time or in create_app; the lifespan opens the read pool,
creates the API's tables, starts the SSE hub and (when given) the market-data feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import ConnectionPool

from adapters.api.audit import UserAudit, full_check_loop
from adapters.api.auth_store import AuthStore
from adapters.api.deps import ApiContext, ReadyCheck
from adapters.api.errors import install_error_handlers
from adapters.api.hub import ChangeHub
from adapters.api.middleware import MAX_BODY_BYTES, BodySizeLimit, RequestId
from adapters.api.ratelimit import RateLimiter
from adapters.api.routes import (
    account,
    alerts,
    auth,
    health,
    order_lists,
    orders,
    positions,
    queries,
    stream,
)
from adapters.api.routes import market as market_routes
from adapters.api.routes import summary as summary_routes
from adapters.api.tokens import TokenService
from adapters.binance.marketdata import MarketData
from adapters.platform.aio import cancel_and_wait
from adapters.platform.bootstrap import Runtime
from adapters.platform.crypto import ConfigurationError
from adapters.postgres.alerts import AlertStore
from adapters.postgres.readmodels import ReadModels, changes_channel, create_read_models

log = logging.getLogger(__name__)

API_VERSION = "1.0"


def create_app(
    runtime: Runtime,
    *,
    market: MarketData | None = None,
    on_account_registered: Callable[[UUID], Any] | None = None,
    keys_checker: Callable[[str, str, str], None] | None = None,
    exchange_info: Any = None,
    ready_checks: Mapping[str, ReadyCheck] | None = None,
    cors_origins: Sequence[str] = (),
    hub_poll_seconds: float = 15.0,
    write_concurrency: int | None = None,
) -> FastAPI:
    """Build the API around a bootstrapped runtime.

    market: candles/ticker source; its optional `start()`/`aclose()` run in the lifespan.
    on_account_registered: called with the new account id after each registration (keys
        given at registration are already connected), e.g. to give paper-exchange keys.
    keys_checker: (apiKey, secretKey, environment) -> None, asks the exchange whether keys
        work before they are stored (adapters.binance.gateway.check_keys); None: not asked.
    exchange_info: the live symbol catalog's refresher (adapters.binance.symbols); its
        `start()`/`stop()` run in the lifespan.
    ready_checks: name -> callable (sync or async) returning truthy when reachable;
        `GET /ready` runs them beside the Postgres check.
    write_concurrency: threads writing commands at once (default min(4, pool size)); more
        only contend for the GIL and the event store's pool (measured: 2-4 beat 8).
    """
    settings = runtime.settings
    if not runtime.jwt_secret:
        raise ConfigurationError("TRADELEDGER_JWT_SECRET must be set for the API")
    if "*" in cors_origins or "null" in cors_origins:
        # With credentials allowed, a wildcard would let every web page act as the user.
        raise ConfigurationError(
            "TRADELEDGER_CORS_ORIGINS must list exact origins: '*' and 'null' are refused "
            "because the API allows credentials")
    ctx = ApiContext(
        runtime=runtime,
        tokens=TokenService(runtime.jwt_secret, settings.jwt_issuer, settings.jwt_audience,
                            settings.access_token_minutes),
        limiter=RateLimiter(settings.order_rate_limit_per_second),
        market=market,
        on_account_registered=on_account_registered,
        keys_checker=keys_checker,
        ready_checks=dict(ready_checks or {}),
        auth_limiter=RateLimiter(settings.auth_requests_per_ip_per_minute / 60.0,
                                 burst=float(settings.auth_requests_per_ip_per_minute)),
        market_limiter=RateLimiter(settings.market_requests_per_ip_per_second,
                                   burst=settings.market_requests_per_ip_per_second * 2),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            ctx.write_limiter = anyio.CapacityLimiter(
                write_concurrency or min(4, settings.database_pool_size))
            pool = ConnectionPool(runtime.database_url, min_size=1,
                                  max_size=settings.database_pool_size, open=False,
                                  check=ConnectionPool.check_connection, name="api-read")
            await anyio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=30))
            stack.callback(pool.close)
            ctx.pool = pool
            ctx.auth_store = AuthStore(
                pool, settings.database_schema, settings.refresh_token_days,
                successor_key=hmac.new(runtime.jwt_secret.encode(), b"refresh-successor",
                                       hashlib.sha256).digest(),
                session_max=timedelta(days=settings.session_max_days))
            await anyio.to_thread.run_sync(ctx.auth_store.create_tables)
            ctx.user_audit = UserAudit(pool, settings.database_schema)
            if settings.audit_check_interval_seconds > 0:
                audit_task = asyncio.create_task(full_check_loop(
                    runtime.database_url, settings.database_schema,
                    settings.audit_check_interval_seconds), name="audit-full-check")
                stack.push_async_callback(cancel_and_wait, [audit_task])
            ctx.read_models = await anyio.to_thread.run_sync(
                _open_read_models, pool, settings.database_schema)
            if ctx.read_models is not None:
                hub = ChangeHub(runtime.database_url, ctx.read_models,
                                channel=changes_channel(settings.database_schema),
                                poll_seconds=hub_poll_seconds)
                await hub.start()
                stack.push_async_callback(hub.stop)
                ctx.hub = hub
            if exchange_info is not None:
                # Loaded before the first order is validated; the table is the fallback.
                await anyio.to_thread.run_sync(exchange_info.start)
                stack.callback(exchange_info.stop)
            alert_store = AlertStore(pool, settings.database_schema)
            await anyio.to_thread.run_sync(alert_store.create_tables)
            ctx.alerts = alert_store
            checker = asyncio.create_task(alerts.run_alert_checks(ctx), name="price-alerts")
            stack.push_async_callback(cancel_and_wait, [checker])
            if market is not None and hasattr(market, "start"):
                await market.start()
            if market is not None and hasattr(market, "aclose"):
                stack.push_async_callback(market.aclose)
            yield
            ctx.hub = None

    app = FastAPI(
        title="TradeLedger API",
        version=API_VERSION,
        description="Commands (orders, keys) and queries (orders, trades, positions, "
        "analytics, audit) of TradeLedger, with per-user SSE. Errors are always "
        '`{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.exchange_info = exchange_info
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(RequestId)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID",
                           "X-Refresh-Cookie"],
            expose_headers=["X-Next-Cursor"],  # the order and trade lists' next page
        )
    for module in (health, auth, account, orders, order_lists, positions, queries,
                   market_routes, stream,
                   alerts):
        app.include_router(module.router)
    app.include_router(summary_routes.router)
    return app


def _open_read_models(pool: ConnectionPool, schema: str) -> ReadModels:
    """Create the read-side tables if missing and return the query object."""
    with pool.connection() as conn, conn.transaction():
        create_read_models(conn, schema)
    return ReadModels(pool, schema)
