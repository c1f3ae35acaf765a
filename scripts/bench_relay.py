"""Benchmark the event bus: relay throughput and end-to-end lag (append -> effect committed),
with a one-row effect per event and with the real projector (issue 5's live projector lag).

    PYTHONPATH=. python scripts/bench_relay.py [--events 20000] [--rate 500] [--duration 10]

Uses TRADELEDGER_DATABASE_URL (default: the machine's Postgres at 127.0.0.1:5432/test) in a
throw-away schema, and TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS or an embedded Tansu broker.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.kafka.consumer import ConsumerRunner  # noqa: E402
from adapters.kafka.embedded import start_embedded_broker  # noqa: E402
from adapters.kafka.relay import Relay  # noqa: E402
from adapters.kafka.topics import ensure_topic  # noqa: E402
from adapters.platform.bootstrap import Runtime, bootstrap  # noqa: E402
from adapters.platform.settings import Settings, settings_env  # noqa: E402
from adapters.postgres.projector import Projector  # noqa: E402
from adapters.postgres.readmodels import EVENTS_TABLE, changes_channel  # noqa: E402
from domain.envelope import EventEnvelope  # noqa: E402
from domain.order import Order  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def new_order(account_id: uuid.UUID, index: int) -> Order:
    return Order(account_id=account_id, client_order_id=f"b{index}", symbol="BTCUSDT",
                 side="BUY", order_type="LIMIT", quantity=Decimal("1"), price=Decimal("100"),
                 time_in_force="GTC", actor="bench")


def append_bulk(runtime: Runtime, events: int) -> None:
    """Append `events` events: orders with 4 events each, 100 orders per save."""
    account_id = uuid.uuid4()
    orders = [new_order(account_id, i) for i in range(events // 4)]
    for start in range(0, len(orders), 100):
        chunk = orders[start:start + 100]
        for order in chunk:
            order.submit("bench")
            order.accept(f"x{order.id}", "bench")
            order.fill(trade_id=f"t{order.id}", price=Decimal("100"), quantity=Decimal("0.5"),
                       commission=Decimal("0"), commission_asset="USDT", actor="bench")
        runtime.app.save(*chunk)


class LagHandler:
    """Writes one effect row per event and notes when its transaction committed."""

    name = "bench-lag"

    def __init__(self) -> None:
        self.committed_at: dict[str, float] = {}

    def handle(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None:
        conn.execute("INSERT INTO bench_effects (event_id) VALUES (%s)", (envelope.event_id,))

    def after_commit(self, envelopes: list[EventEnvelope]) -> None:
        now = time.perf_counter()
        for envelope in envelopes:
            self.committed_at[envelope.event_id] = now


class ProjectorLag:
    """Watch a `tradeledger projector` process the way the API's SSE hub does (LISTEN, then
    read view_changes), noting when each order event's ORDER_UPDATE became visible."""

    def __init__(self, database_url: str, schema: str) -> None:
        self.database_url, self.schema = database_url, schema
        self.committed_at: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        q = f'"{self.schema}"'
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f'LISTEN "{changes_channel(self.schema)}"')
            last = 0
            while not stop.is_set():
                try:
                    rows = conn.execute(
                        f"SELECT seq, entity_id, data->>'version' FROM {q}.view_changes "  # noqa: S608
                        "WHERE seq > %s AND kind = 'ORDER_UPDATE' ORDER BY seq", (last,)
                    ).fetchall()
                except psycopg.errors.UndefinedTable:
                    rows = []  # the projector has not created its tables yet
                now = time.perf_counter()
                for seq, order_id, version in rows:
                    last = seq
                    self.committed_at.setdefault(f"{order_id}:{version}", now)
                for _ in conn.notifies(timeout=0.2, stop_after=1):
                    pass


class Lifecycles:
    """One event per save, as live trading appends them: each order is placed, submitted,
    accepted and filled in four separate saves (so the projector sees every event type)."""

    def __init__(self, account_id: uuid.UUID) -> None:
        self.account_id = account_id
        self.open: dict[int, Order] = {}

    def next_save(self, writer: int, index: int) -> Order:
        order = self.open.get(writer)
        step = 0 if order is None else order.version
        if order is None or step >= 4:
            order = self.open[writer] = new_order(self.account_id, index)
        elif step == 1:
            order.submit("bench")
        elif step == 2:
            order.accept(f"x{order.id}", "bench")
        else:
            order.fill(trade_id=f"t{order.id}", price=Decimal("100"), quantity=Decimal("1"),
                       commission=Decimal("0.1"), commission_asset="USDT", actor="bench")
        return order


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_throughput(runtime: Runtime, bootstrap_servers: str, events: int) -> dict[str, float]:
    topic = f"bench.throughput.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap_servers, topic, 6)
    started = time.perf_counter()
    append_bulk(runtime, events)
    append_s = time.perf_counter() - started
    relay = Relay(app=runtime.app, database_url=runtime.database_url,
                  bootstrap_servers=bootstrap_servers, topic=topic)
    relay.open()
    started, cpu_started = time.perf_counter(), time.process_time()
    published = relay.publish_pending()
    relay_s = time.perf_counter() - started
    relay_cpu_s = time.process_time() - cpu_started
    relay.close()

    def catch_up(handler: Any, timeout: float) -> tuple[float, float, float]:
        """Consume the whole topic with `handler`; return events applied per second, and
        the CPU microseconds per event of this process and of its Postgres backend."""
        import psutil

        runner = ConsumerRunner(database_url=runtime.database_url,
                                schema=runtime.settings.database_schema,
                                bootstrap_servers=bootstrap_servers, topic=topic,
                                handler=handler)
        runner.open()
        assert runner._conn is not None
        backend = psutil.Process(runner._conn.pgconn.backend_pid)
        backend_before = sum(backend.cpu_times()[:2])
        started, cpu_started = time.perf_counter(), time.process_time()
        applied = runner.run_until_idle(timeout)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        backend_cpu = sum(backend.cpu_times()[:2]) - backend_before
        runner.close()
        return applied / seconds, 1e6 * cpu / applied, 1e6 * backend_cpu / applied

    consumer_per_s, _, _ = catch_up(LagHandler(), 120)
    # The real projector catching up on the same events: its capacity in events/s.
    projector = Projector(runtime.settings.database_schema)
    with psycopg.connect(runtime.database_url) as conn, conn.transaction():
        projector.setup(conn)
    projector_per_s, projector_us, backend_us = catch_up(projector, 300)
    return {"events": published, "append_per_s": events / append_s,
            "relay_per_s": published / relay_s, "consumer_per_s": consumer_per_s,
            "projector_per_s": projector_per_s, "projector_cpu_us": projector_us,
            "projector_pg_cpu_us": backend_us,
            # Events per CPU-second of the relay's process: what one free core would reach
            # if Postgres and the broker had the other core (a machine-load-free estimate).
            "relay_per_cpu_s": published / relay_cpu_s}


def start_process(command: list[str], settings: Settings, bootstrap_servers: str, topic: str,
                  log_path: Path) -> subprocess.Popen[bytes]:
    """Run a TradeLedger process (`relay`, `projector`) on its own, as in production."""
    env = {**os.environ, **settings_env(settings)}
    env.update({
        "PYTHONPATH": str(REPO),
        "TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "TRADELEDGER_KAFKA_TOPIC": topic,
        "TRADELEDGER_LOG_LEVEL": "WARNING",
    })
    return subprocess.Popen([sys.executable, "-m", "adapters.cli", *command], env=env,  # noqa: S603
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))


def bench_lag(runtime: Runtime, bootstrap_servers: str, rate: float,
              duration: float, projector: bool = False) -> dict[str, float]:
    """Lag from append to the consumer's committed effect: a one-row effect per event, or
    (`projector`) the real projector over whole order lifecycles."""
    topic = f"bench.lag.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap_servers, topic, 6)
    data_dir = runtime.settings.data_dir
    relay = start_process(["relay"], runtime.settings, bootstrap_servers, topic,
                          data_dir / "relay.log")
    stop = threading.Event()
    handler: LagHandler | ProjectorLag
    if projector:
        processes = [relay, start_process(["projector"], runtime.settings, bootstrap_servers,
                                          topic, data_dir / "projector.log")]
        handler = ProjectorLag(runtime.database_url, runtime.settings.database_schema)
        threads = [threading.Thread(target=handler.run, args=(stop,), daemon=True)]
    else:
        processes = [relay]
        handler = LagHandler()
        runner = ConsumerRunner(database_url=runtime.database_url,
                                schema=runtime.settings.database_schema,
                                bootstrap_servers=bootstrap_servers, topic=topic,
                                handler=handler, poll_timeout_ms=100)
        threads = [threading.Thread(target=runner.run, args=(stop,), daemon=True)]
    for thread in threads:
        thread.start()
    # Warm up: one event through the whole path before measuring.
    account_id = uuid.uuid4()
    warm = new_order(account_id, -1)
    runtime.app.save(warm)
    deadline = time.monotonic() + 30
    while f"{warm.id}:1" not in handler.committed_at and time.monotonic() < deadline:
        time.sleep(0.01)
    if projector:
        # A fresh projector starts with the whole log (the earlier phases' events): let it
        # catch up before measuring, or the lag measured would be that backlog.
        q = f'"{runtime.settings.database_schema}"'
        with psycopg.connect(runtime.database_url, autocommit=True) as conn:
            while time.monotonic() < deadline + 120:
                row = conn.execute(
                    f"SELECT (SELECT count(*) FROM {q}.event_log_view), "  # noqa: S608
                    f"(SELECT count(*) FROM {q}.{EVENTS_TABLE})").fetchone()
                if row and row[0] >= row[1]:
                    break
                time.sleep(0.1)

    appended_at: dict[str, float] = {}
    count = int(rate * duration)
    writers = 4  # like several API workers: one save takes a few ms, so one writer is too slow
    lifecycles = Lifecycles(account_id)
    start = time.perf_counter()

    def write(writer: int) -> None:
        interval = writers / rate
        for index in range(writer, count, writers):
            target = start + (index // writers) * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            order = (lifecycles.next_save(writer, index) if projector
                     else new_order(account_id, index))
            runtime.app.save(order)
            appended_at[f"{order.id}:{order.version}"] = time.perf_counter()

    pool = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    achieved_rate = count / (time.perf_counter() - start)
    deadline = time.monotonic() + 30
    while (len(appended_at.keys() & handler.committed_at.keys()) < count
           and time.monotonic() < deadline):
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(10)
    for process in processes:
        process.terminate()
        process.wait(10)
    lags = [(handler.committed_at[k] - t) * 1000 for k, t in appended_at.items()
            if k in handler.committed_at]
    return {"events": len(lags), "missing": count - len(lags), "rate": achieved_rate,
            "p50_ms": percentile(lags, 0.50), "p99_ms": percentile(lags, 0.99),
            "max_ms": max(lags, default=float("nan")),
            "mean_ms": statistics.fmean(lags) if lags else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--no-lag", action="store_true", help="only the throughput phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    url = os.environ.get("TRADELEDGER_DATABASE_URL", DEFAULT_URL)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".bench_effects (event_id text)')
    workdir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    broker = None
    bootstrap_servers = os.environ.get("TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap_servers:
        broker = start_embedded_broker(workdir / "kafka")
        bootstrap_servers = broker.bootstrap_servers
    settings = Settings(
        database_url=url, database_schema=schema, data_dir=workdir,
        master_keys="k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),  # type: ignore[arg-type]
        jwt_secret=secrets.token_urlsafe(48),  # type: ignore[arg-type]
    )
    runtime = bootstrap(settings, url)
    try:
        throughput = bench_throughput(runtime, bootstrap_servers, args.events)
        print(f"relay throughput: {throughput['events']} events in the log -> "
              f"{throughput['relay_per_s']:,.0f} events/s published "
              f"({throughput['relay_per_cpu_s']:,.0f} per CPU-second of the relay) "
              f"(append {throughput['append_per_s']:,.0f}/s, "
              f"consumer {throughput['consumer_per_s']:,.0f}/s, "
              f"projector catching up {throughput['projector_per_s']:,.0f}/s)")
        print(f"projector catching up: {throughput['projector_cpu_us']:.0f} µs of its own CPU "
              f"and {throughput['projector_pg_cpu_us']:.0f} µs of its Postgres backend's "
              "per event")
        for label, projector in (("end-to-end lag", False), ("projector lag", True)):
            if args.no_lag:
                break
            lag = bench_lag(runtime, bootstrap_servers, args.rate, args.duration, projector)
            print(f"{label} at {lag['rate']:.0f} events/s over {lag['events']} events "
                  f"(missing {lag['missing']}): p50 {lag['p50_ms']:.1f} ms, "
                  f"p99 {lag['p99_ms']:.1f} ms, max {lag['max_ms']:.1f} ms, "
                  f"mean {lag['mean_ms']:.1f} ms")
    finally:
        runtime.close()
        if broker is not None:
            broker.stop()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
