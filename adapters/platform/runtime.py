"""Process start-up helpers: resolve the database (embedded or configured) and wire the app."""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.platform.bootstrap import Runtime, bootstrap
from adapters.platform.readiness import postgres_check
from adapters.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)


def configure_logging(settings: Settings) -> None:
    """Plain or JSON logs; quiet the libraries that print deprecations on import."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"websockets\..*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"binance\..*")
    from adapters.platform.logs import setup_logging

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
def open_runtime(settings: Settings | None = None, *, need_jwt: bool = False,
                 need_master: bool = True) -> Iterator[Runtime]:
    """Bootstrap the application for one process and close it on exit (need_*: which
    secrets this process uses; the others may be unset outside the embedded mode)."""
    settings = settings or get_settings()
    with database_url(settings) as url:
        runtime = bootstrap(settings, url, need_jwt=need_jwt, need_master=need_master)
        try:
            yield runtime
        finally:
            runtime.close()


def start_process(settings: Settings) -> threading.Event:
    """Set up a long-running process: logging, metrics port, and a stop flag set by
    SIGTERM or SIGINT so its loop can finish the batch in hand and exit cleanly."""
    from adapters.platform.metrics import serve_metrics
    from adapters.platform.readiness import ready_checks

    configure_logging(settings)
    checks = ready_checks(settings)
    if settings.database_url:
        checks["postgres"] = postgres_check(settings.database_url)
    serve_metrics(settings.metrics_port, checks, settings.metrics_host)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def resolve_instance(name: str, instance: int | None, instances: int | None,
                     settings: Settings) -> tuple[int, int, Any]:
    """Return (index, count, slot connection or None) of this replica of consumer `name`.

    An explicit index (argument or TRADELEDGER_INSTANCE) is used as given; otherwise, with
    several replicas, a free index is claimed with a Postgres advisory lock, held by the
    returned connection for as long as the process runs.
    """
    count = instances or settings.instances
    index = instance if instance is not None else settings.instance
    if index is not None or count == 1:
        return index or 0, count, None
    if not settings.database_url:
        return 0, 1, None
    from adapters.postgres.slots import claim_instance_slot

    claimed, conn = claim_instance_slot(settings.database_url, name, count)
    return claimed, count, conn


@contextmanager
def consumer_process(name: str, instance: int | None, instances: int | None
                     ) -> Iterator[tuple[Settings, threading.Event, int, int]]:
    """Start one replica of a long-running consumer process (worker, projector).

    Logging, the metrics port and the stop flag (`start_process`), then this replica's index
    (`resolve_instance`); yields (settings, stop, index, count) and releases the claimed slot
    when the process ends.
    """
    settings = get_settings()
    stop = start_process(settings)
    index, count, slot = resolve_instance(name, instance, instances, settings)
    try:
        yield settings, stop, index, count
    except KeyboardInterrupt:
        stop.set()
    finally:
        if slot is not None:
            slot.close()


def command_settings() -> Settings:
    """Settings for a one-shot command (replay, reconcile, ...), with logging set up."""
    settings = get_settings()
    configure_logging(settings)
    return settings
