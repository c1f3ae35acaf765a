"""An app factory that reads everything from the environment, for `uvicorn --factory`
(several workers: each worker process builds its own runtime)."""

from __future__ import annotations

from fastapi import FastAPI

from adapters.api.app import create_app
from adapters.api.cli import build_market, process_wiring
from adapters.bootstrap import bootstrap
from adapters.runtime import configure_logging
from adapters.security import ConfigurationError
from adapters.settings import get_settings


def app_from_environment() -> FastAPI:
    """Build the API from TRADELEDGER_* settings; the database must be configured."""
    settings = get_settings()
    configure_logging(settings)
    if not settings.database_url:
        raise ConfigurationError(
            "TRADELEDGER_DATABASE_URL must be set to run several API workers "
            "(`tradeledger api --workers N` sets it for the embedded database)")
    runtime = bootstrap(settings, settings.database_url)
    market = build_market(settings, runtime.symbols, None)
    return create_app(runtime, market=market, **process_wiring(settings))
