"""Prometheus metrics, defined once. The API serves them at /metrics; other processes on
TRADELEDGER_METRICS_PORT when it is set."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

ORDERS_BY_STATUS = Gauge(
    "tradeledger_orders", "Orders in the read model by status", ["status"])
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


def serve_metrics(port: int | None) -> None:
    """Expose this process's metrics on `port` (no-op when None)."""
    if port:
        start_http_server(port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
