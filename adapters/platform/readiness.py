"""Readiness probes for /ready: can this process reach the broker and the exchange?"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable

from adapters.platform.settings import Settings


def broker_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Tell whether a Kafka-protocol broker answers an ApiVersions request at host:port."""
    # ApiVersions v0: size, api_key=18, version=0, correlation_id=1, client_id="probe".
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += (5).to_bytes(2, "big") + b"probe"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(len(body).to_bytes(4, "big") + body)
            return len(sock.recv(8)) >= 8
    except OSError:
        return False


def broker_check(bootstrap_servers: str, timeout: float = 1.0) -> Callable[[], bool]:
    """True when one of the bootstrap servers answers as a Kafka-protocol broker."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]

    def check() -> bool:
        for host in hosts:
            name, _, port = host.rpartition(":")
            try:
                if broker_answers(int(port or 9092), name or host, timeout):
                    return True
            except ValueError:
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
