"""Process start-up helpers: resolve the database (embedded or configured) and wire the app."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from adapters.bootstrap import Runtime, bootstrap
from adapters.settings import Settings, get_settings

log = logging.getLogger(__name__)


def configure_logging(settings: Settings) -> None:
    """Plain or JSON logs; quiet the libraries that print deprecations on import."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"websockets\..*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"binance\..*")
    from adapters.logs import setup_logging

    setup_logging(settings.log_level, settings.log_json)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the Postgres URL; with none configured, run the embedded Postgres meanwhile."""
    if settings.database_url:
        yield settings.database_url
        return
    from adapters.postgres.embedded import start_embedded_postgres

    url, server = start_embedded_postgres(settings.data_dir)
    # Children started by this process (tradeledger up) use the same server.
    os.environ["TRADELEDGER_DATABASE_URL"] = url
    try:
        yield url
    finally:
        server.cleanup()


@contextmanager
def open_runtime(settings: Settings | None = None) -> Iterator[Runtime]:
    """Bootstrap the application for one process and close it on exit."""
    settings = settings or get_settings()
    with database_url(settings) as url:
        runtime = bootstrap(settings, url)
        try:
            yield runtime
        finally:
            runtime.close()
