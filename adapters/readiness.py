"""Readiness probes for /ready: can this process reach the broker and the exchange?"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable

from adapters.settings import Settings


def broker_check(bootstrap_servers: str, timeout: float = 1.0) -> Callable[[], bool]:
    """True when a TCP connection to one of the bootstrap servers opens."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]

    def check() -> bool:
        for host in hosts:
            name, _, port = host.rpartition(":")
            try:
                with socket.create_connection((name or host, int(port or 9092)), timeout):
                    return True
            except (OSError, ValueError):
                continue
        return False

    return check


def exchange_check(base_url: str, timeout: float = 2.0) -> Callable[[], bool]:
    """True when the exchange answers GET /api/v3/ping."""
    url = base_url.rstrip("/") + "/api/v3/ping"

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    return check


def postgres_check(url: str, timeout: int = 2) -> Callable[[], bool]:
    """True when Postgres accepts a connection and answers SELECT 1."""

    def check() -> bool:
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=timeout) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    return check


def ready_checks(settings: Settings) -> dict[str, Callable[[], bool]]:
    """The checks this deployment can run (Postgres is checked by the API itself)."""
    checks: dict[str, Callable[[], bool]] = {}
    if settings.kafka_bootstrap_servers:
        checks["broker"] = broker_check(settings.kafka_bootstrap_servers)
    if settings.exchange == "paper" and settings.paper_exchange_url:
        checks["exchange"] = exchange_check(settings.paper_exchange_url)
    elif settings.exchange == "testnet":
        checks["exchange"] = exchange_check("https://testnet.binance.vision")
    elif settings.exchange == "live":
        checks["exchange"] = exchange_check("https://api.binance.com")
    return checks
