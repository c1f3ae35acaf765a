"""The API process: the command/query API and the SSE hub, served by uvicorn."""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI

from adapters.binance.marketdata import BinanceMarketData
from adapters.binance.symbols import SymbolCatalogAdapter
from adapters.platform.bootstrap import bootstrap, resolve_secrets
from adapters.platform.crypto import ConfigurationError
from adapters.platform.readiness import ready_checks
from adapters.platform.runtime import configure_logging, database_url, open_runtime
from adapters.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)


def build_market(settings: Settings, symbols: SymbolCatalogAdapter,
                 exchange_url: str | None) -> BinanceMarketData | None:
    """The market-data source for this API process, or None."""
    url = exchange_url or (settings.paper_exchange_url if settings.exchange == "paper" else None)
    if url:
        return BinanceMarketData.for_exchange_url(url, symbols)
    if settings.exchange == "paper":
        log.warning("no paper exchange URL configured: market data is off")
        return None
    return BinanceMarketData(symbols, testnet=settings.exchange == "testnet")


def process_wiring(settings: Settings, extra_origins: list[str] | None = None) -> dict[str, Any]:
    """What an API process gets from its deployment: CORS origins and readiness checks."""
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    return {
        "cors_origins": [*origins, *(extra_origins or [])],
        "ready_checks": ready_checks(settings),
        "keys_checker": keys_checker(settings),
    }


def exchange_info(settings: Any, runtime: Any, exchange_url: str | None = None) -> Any:
    """The refresher that keeps the API's symbol rules equal to the exchange's exchangeInfo."""
    from adapters.binance.symbols import (
        ExchangeInfoRefresher,
        RejectionWatch,
        exchange_info_fetcher,
    )

    url = exchange_url or (settings.paper_exchange_url if settings.exchange == "paper" else None)
    if settings.exchange == "paper" and not url:
        log.warning("no paper exchange URL configured: orders are checked against the "
                    "built-in market table")
        return None
    api_url = url.rstrip("/") + "/api" if url else None
    return ExchangeInfoRefresher(
        runtime.symbols, exchange_info_fetcher(api_url, testnet=settings.exchange == "testnet"),
        interval=settings.exchange_info_refresh_seconds,
        stale_signals=[RejectionWatch(runtime.app)])


def keys_checker(settings: Any) -> Any:
    """Check keys against the exchange before storing them (adapters.binance.gateway)."""
    from adapters.binance.gateway import check_keys

    def check(api_key: str, secret_key: str, environment: str) -> None:
        check_keys(settings, api_key, secret_key, environment)

    return check


def run_api(settings: Settings, host: str, port: int, *, workers: int = 1,
            exchange_url: str | None = None, market_data: bool = True,
            cors_origins: list[str] | None = None) -> int:
    """Serve the API until interrupted."""
    import uvicorn

    from adapters.api.app import create_app

    configure_logging(settings)
    if workers > 1:
        return _run_workers(settings, host, port, workers)
    from adapters.platform.metrics import serve_metrics

    # Metrics on their own (loopback) port: the public port serves none.
    serve_metrics(settings.metrics_port, {}, settings.metrics_host)
    with open_runtime(settings, need_jwt=True) as runtime:
        market = build_market(settings, runtime.symbols, exchange_url) if market_data else None
        app = create_app(runtime, market=market,
                         exchange_info=exchange_info(settings, runtime, exchange_url),
                         **process_wiring(settings, cors_origins))
        log.info("TradeLedger API on http://%s:%d (docs at /docs)", host, port)
        # log_config=None: uvicorn's loggers go through our redacting root handler, so a
        # `?token=` in an access-log line is masked. Request bodies are never logged.
        uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True,
                    server_header=False)
    return 0


def _run_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """Serve with several uvicorn worker processes sharing one (maybe embedded) database."""
    import uvicorn

    with database_url(settings) as url:  # the embedded case exports TRADELEDGER_DATABASE_URL
        # Create the event store's tables once, here: workers starting together on a fresh
        # schema would race on CREATE TABLE.
        bootstrap(settings, url, need_jwt=True).close()
        # Workers see a configured database, so they need the secrets configured too;
        # in the embedded case these are the generated ones from the data dir.
        master_keys, jwt_secret = resolve_secrets(settings)
        os.environ.setdefault("TRADELEDGER_MASTER_KEYS", master_keys)
        os.environ.setdefault("TRADELEDGER_JWT_SECRET", jwt_secret)
        log.info("TradeLedger API on http://%s:%d with %d workers", host, port, workers)
        uvicorn.run("adapters.processes.api:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_config=None, proxy_headers=True,
                    server_header=False)
    return 0


def app_from_environment() -> FastAPI:
    """Build the API from TRADELEDGER_* settings, for `uvicorn --factory` (several workers:
    each worker process builds its own runtime); the database must be configured."""
    from adapters.api.app import create_app

    settings = get_settings()
    configure_logging(settings)
    if not settings.database_url:
        raise ConfigurationError(
            "TRADELEDGER_DATABASE_URL must be set to run several API workers "
            "(`tradeledger api --workers N` sets it for the embedded database)")
    runtime = bootstrap(settings, settings.database_url, need_jwt=True)
    market = build_market(settings, runtime.symbols, None)
    return create_app(runtime, market=market, exchange_info=exchange_info(settings, runtime),
                      **process_wiring(settings))
