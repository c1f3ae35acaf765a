"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from adapters.api.deps import ApiContext, Ctx, ReadyCheck
from domain.values import OrderStatus

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _run(check: ReadyCheck) -> bool:
    async def call() -> bool:
        if inspect.iscoroutinefunction(check):
            return bool(await check())
        result = await anyio.to_thread.run_sync(check)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    try:
        return await asyncio.wait_for(call(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("readiness check failed: %s", type(exc).__name__)
        return False


def _postgres(ctx: ApiContext) -> bool:
    if ctx.pool is None:
        return False
    with ctx.pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as conn:
        conn.execute("SELECT 1")
    return True


@router.get("/ready", responses={503: {"description": "a dependency is not reachable"}})
async def ready(ctx: Ctx) -> Any:
    """Postgres plus every injected check (broker, exchange...) must answer."""
    checks: dict[str, ReadyCheck] = {"postgres": lambda: _postgres(ctx)}
    checks.update(ctx.ready_checks)
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[n]) for n in names))
    outcome = dict(zip(names, results, strict=True))
    ok = all(results)
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": outcome},
                        status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(ctx: Ctx) -> Response:
    """Prometheus metrics of this API process, with orders by status read at scrape time."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from adapters.platform.metrics import ORDERS_BY_STATUS

    if ctx.pool is not None:
        schema = ctx.runtime.settings.database_schema
        try:
            with ctx.pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as conn:
                rows = conn.execute(
                    f'SELECT status, count(*) FROM "{schema}".orders_view GROUP BY status'  # noqa: S608 - schema is validated at start-up
                ).fetchall()
            counts = {str(status): int(n) for status, n in rows}
            for status in OrderStatus:
                ORDERS_BY_STATUS.labels(status=status.value).set(counts.get(status.value, 0))
        except Exception as exc:  # the read model may not exist yet: serve the rest anyway
            log.debug("orders-by-status unavailable: %s", exc)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
