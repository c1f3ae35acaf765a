"""`tradeledger api`: serve the command/query API and SSE hub with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("api", help="run the HTTP API (commands, queries, SSE)")
    parser.add_argument("--host", default=None, help="bind address (default: settings.api_host)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: settings.api_port)")
    parser.add_argument("--exchange-url", default=None,
                        help="Binance-compatible base URL for market data (default: "
                        "settings.paper_exchange_url on the paper exchange; python-binance's "
                        "own hosts otherwise)")
    parser.add_argument("--no-market-data", action="store_true",
                        help="serve no candles or ticker (market routes answer 503)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (each builds its own runtime; default 1)")
    parser.add_argument("--cors-origin", action="append", default=[],
                        help="allow this browser origin (repeatable)")
    parser.set_defaults(func=cmd_api)


def build_market(settings: Any, symbols: Any, exchange_url: str | None) -> Any:
    """The market-data source for this API process, or None."""
    from adapters.binance.marketdata import BinanceMarketData

    url = exchange_url or (settings.paper_exchange_url if settings.exchange == "paper" else None)
    if url:
        return BinanceMarketData.for_exchange_url(url, symbols)
    if settings.exchange == "paper":
        log.warning("no paper exchange URL configured: market data is off")
        return None
    return BinanceMarketData(symbols, testnet=settings.exchange == "testnet")


def process_wiring(settings: Any, extra_origins: list[str] | None = None) -> dict[str, Any]:
    """What an API process gets from its deployment: CORS origins, readiness checks, and the
    hook that gives a new account paper-exchange keys."""
    from adapters.readiness import ready_checks

    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    wiring: dict[str, Any] = {
        "cors_origins": [*origins, *(extra_origins or [])],
        "ready_checks": ready_checks(settings),
    }
    return wiring


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from adapters.api.app import create_app
    from adapters.runtime import configure_logging, open_runtime
    from adapters.settings import get_settings

    settings = get_settings()
    configure_logging(settings)
    host = args.host or settings.api_host
    port = args.port if args.port is not None else settings.api_port
    if args.workers > 1:
        return _run_workers(settings, host, port, args.workers)
    with open_runtime(settings) as runtime:
        market = None if args.no_market_data else build_market(
            settings, runtime.symbols, args.exchange_url)
        app = create_app(runtime, market=market, **process_wiring(settings, args.cors_origin))
        log.info("TradeLedger API on http://%s:%d (docs at /docs)", host, port)
        # log_config=None: uvicorn's loggers go through our redacting root handler, so a
        # `?token=` in an access-log line is masked. Request bodies are never logged.
        uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True,
                    server_header=False)
    return 0


def _run_workers(settings: Any, host: str, port: int, workers: int) -> int:
    """Serve with several uvicorn worker processes sharing one (maybe embedded) database."""
    import uvicorn

    from adapters.bootstrap import bootstrap, resolve_secrets
    from adapters.runtime import database_url

    with database_url(settings) as url:  # the embedded case exports TRADELEDGER_DATABASE_URL
        # Create the event store's tables once, here: workers starting together on a fresh
        # schema would race on CREATE TABLE.
        bootstrap(settings, url).close()
        # Workers see a configured database, so they need the secrets configured too;
        # in the embedded case these are the generated ones from the data dir.
        master_keys, jwt_secret = resolve_secrets(settings)
        os.environ.setdefault("TRADELEDGER_MASTER_KEYS", master_keys)
        os.environ.setdefault("TRADELEDGER_JWT_SECRET", jwt_secret)
        log.info("TradeLedger API on http://%s:%d with %d workers", host, port, workers)
        uvicorn.run("adapters.api.asgi:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_config=None, proxy_headers=True,
                    server_header=False)
    return 0
