"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from adapters.api.deps import ApiContext, Ctx, ReadyCheck

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
