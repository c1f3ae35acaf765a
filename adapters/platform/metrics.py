"""Prometheus metrics, defined once, kept as counters while things happen (a scrape reads
memory, never the database). Every process, the API included, serves /metrics, /health
and /ready on TRADELEDGER_METRICS_PORT when it is set, bound to TRADELEDGER_METRICS_HOST
(loopback by default): the public API port serves no metrics."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

log = logging.getLogger(__name__)

PROJECTED_EVENTS = Counter(
    "tradeledger_projected_events_total", "Events the projector applied, by event type",
    ["event"])
HTTP_REFUSED = Counter(
    "tradeledger_http_refused_total", "Requests refused by a limit (throttles, stream caps)",
    ["reason"])
COMMANDS = Counter(
    "tradeledger_commands_total", "Commands handled by the write side", ["command", "outcome"])
RELAY_LAG = Gauge(
    "tradeledger_relay_lag_events", "Stored events not yet acknowledged by the broker")
RELAY_PUBLISHED = Counter(
    "tradeledger_relay_published_total", "Events the relay published to the broker")
CONSUMER_LAG = Gauge(
    "tradeledger_consumer_lag_events", "Messages behind the partition high-water mark",
    ["consumer", "partition"])
CONSUMER_APPLIED = Counter(
    "tradeledger_consumer_applied_total", "Events applied by a consumer", ["consumer"])
DEAD_LETTERS = Counter(
    "tradeledger_dead_letters_total", "Events moved to the dead-letter table", ["consumer"])
EXCHANGE_LATENCY = Histogram(
    "tradeledger_exchange_request_seconds", "Latency of exchange REST calls", ["operation"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
EXCHANGE_ERRORS = Counter(
    "tradeledger_exchange_errors_total", "Exchange calls that failed", ["operation", "code"])
SSE_CLIENTS = Gauge("tradeledger_sse_clients", "Open server-sent-event streams", ["stream"])


Check = Callable[[], bool]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def probe_app(checks: dict[str, Check]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app: /health (alive), /ready (every check passes), anything else: metrics."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        if path == "/ready":
            results = {}
            for name, check in checks.items():
                try:
                    results[name] = bool(check())
                except Exception:  # a failing probe means "not ready", never a crash
                    results[name] = False
            ok = all(results.values())
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json")])
            body = {"status": "ready" if ok else "not_ready", "checks": results}
            return [json.dumps(body).encode()]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def serve_metrics(port: int | None, checks: dict[str, Check] | None = None,
                  host: str = "127.0.0.1") -> None:
    """Serve this process's /metrics, /health and /ready on host:port (no-op when None)."""
    if not port:
        return
    server = make_server(host, port, probe_app(checks or {}), WSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics (and /health, /ready)", host, port)
