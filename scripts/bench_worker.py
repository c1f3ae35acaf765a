"""Benchmark the execution worker against the paper exchange.

    PYTHONPATH=. python scripts/bench_worker.py [--orders 3000] [--rate 100] [--duration 20]
                                                [--lanes 16] [--accounts 8]
                                                [--processes N [--placers 4]]

Two phases, on a throw-away schema of TRADELEDGER_DATABASE_URL (default: an embedded
Postgres of its own), TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS or an embedded Tansu broker, and a paper
exchange started as a subprocess; the relay runs as a `tradeledger relay` subprocess and the
worker (consumer + lanes + user-data streams) in this process:

1. latency: MARKET orders placed at --rate per second for --duration seconds while everything
   runs; latency = OrderPlaced -> final OrderFilled, both timestamps from the event store
   (so it includes relay -> Kafka -> worker -> exchange -> recording).
2. throughput: --orders MARKET orders placed while the worker's consumer is stopped, then the
   consumer starts and we time until every one of them is FILLED.

With --processes N the worker runs as N `tradeledger worker --instance i --instances N`
processes instead (partitions and orders split between them), as a deployment scales it
out. A subprocess's consumer cannot be paused, so the throughput phase then places --orders
orders from --placers threads as fast as they go while the workers run, and times from the
first placement to the last fill (--processes 1 is the same method with one worker process,
for comparison).

Each phase also prints the CPU each process spent per order (this process, which runs the
worker, and in the latency phase places the orders too; the relay; the paper exchange; the
broker; Postgres; with --processes, each worker process on its own as worker-i): unlike
orders per second, that figure barely moves when other work shares the machine, and it says
which process a gain or a limit belongs to. Only this bench's own processes count: the
children it started and, unless TRADELEDGER_DATABASE_URL names another, the Postgres it
runs for itself (embedded, in the work directory), so other work on a shared machine
(another Postgres client, another TradeLedger) is not counted as the bench's.
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
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.binance.gateway import BinanceGateway  # noqa: E402
from adapters.cli.bench import process_usage  # noqa: E402
from adapters.kafka.consumer import ConsumerRunner  # noqa: E402
from adapters.kafka.embedded import start_embedded_broker  # noqa: E402
from adapters.kafka.topics import ensure_topic  # noqa: E402
from adapters.paper_exchange.runner import start_subprocess  # noqa: E402
from adapters.platform.bootstrap import bootstrap  # noqa: E402
from adapters.platform.settings import Settings  # noqa: E402
from adapters.processes.worker import DEFAULT_LANES, ExecutionWorker  # noqa: E402
from commands.messages import PlaceOrder, RegisterAccount  # noqa: E402
from domain.values import OrderStatus  # noqa: E402

# What cpu_by_process counts: the Postgres data directory the bench started (None: every
# Postgres process on the machine), and the worker processes to report one by one.
COUNTED: dict[str, Any] = {"postgres_dir": None, "workers": []}


def cpu_by_process(own: str = "worker") -> dict[str, float]:
    """CPU seconds used so far by each process of this bench (as `tradeledger bench` counts
    them: relay, worker processes, paper exchange, broker, Postgres), and by this one,
    named `own`; with worker processes, each as worker-i as well as their sum."""
    import psutil

    me = psutil.Process()
    children = [child.pid for child in me.children()]
    postgres_dir = COUNTED["postgres_dir"]
    usage = (process_usage(children, postgres_dir) if postgres_dir
             else [u for u in process_usage() if u[0] == "postgres"]
             + process_usage(children))
    found: dict[str, float] = {}
    for name, cpu, _ in usage:
        found[name] = found.get(name, 0.0) + cpu
    times = me.cpu_times()
    found[own] = found.get(own, 0.0) + times.user + times.system
    for i, pid in enumerate(COUNTED["workers"]):
        try:
            worker = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        found[f"worker-{i}"] = worker.user + worker.system
    return found


def cpu_per_order(before: dict[str, float], orders: int, own: str = "worker") -> str:
    """Describe the CPU per order spent since `before` (cpu_by_process), by process (the
    worker-i figures are shares of `worker`, not added to the total)."""
    after = cpu_by_process(own)
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    parts = [f"{name} {seconds / orders * 1000:.2f}"
             for name, seconds in sorted(spent.items(), key=lambda item: -item[1])
             if seconds > 0]
    total = sum(v for k, v in spent.items() if not k.startswith("worker-")) / orders * 1000
    return f"CPU per order (ms): {', '.join(parts)}; total {total:.2f}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.url = os.environ.get("TRADELEDGER_DATABASE_URL") or ""
        self.schema = f"bench_worker_{uuid.uuid4().hex[:8]}"
        self.topic = f"bench.worker.{uuid.uuid4().hex[:8]}"
        self.cleanups: list[Any] = []
        self.consumer_stop: threading.Event | None = None
        self.own = "worker"  # what this process's CPU is reported as

    def setup(self) -> None:
        if not self.url:
            print("starting Postgres (embedded) ...", flush=True)
            from adapters.postgres.embedded import start_embedded_postgres

            self.url, server = start_embedded_postgres(self.work)
            self.cleanups.append(server.cleanup)
            COUNTED["postgres_dir"] = str(self.work / "postgres")
        print("starting the paper exchange, the broker and the relay ...", flush=True)
        # Binance's ORDERS limit (100 per 10 s per key) would cap 8 accounts near 80
        # orders/s, and the worker paces itself under it: lift it, this measures CPU.
        proc, self.exchange_url = start_subprocess(
            self.work / "paper", tick_ms=250, history_days=1,
            extra_args=["--orders-per-10s", "1000000", "--weight-per-minute", "100000000"])
        self.cleanups.append(lambda: (proc.terminate(), proc.wait(10)))
        bootstrap_servers = os.environ.get("TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap_servers:
            broker = start_embedded_broker(self.work / "kafka")
            self.cleanups.append(broker.stop)
            bootstrap_servers = broker.bootstrap_servers
        self.bootstrap_servers = bootstrap_servers
        ensure_topic(bootstrap_servers, self.topic, 6)
        self.settings = Settings(
            database_url=self.url, database_schema=self.schema, data_dir=self.work,
            master_keys="k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            jwt_secret=secrets.token_urlsafe(48), kafka_bootstrap_servers=bootstrap_servers,
            kafka_topic=self.topic, paper_exchange_url=self.exchange_url,
            database_pool_size=8)
        self.rt = bootstrap(self.settings, self.url)
        self.cleanups.append(self.rt.close)
        self.cleanups.append(self._drop_schema)
        env = {**os.environ, "PYTHONPATH": str(REPO),
               "TRADELEDGER_DATABASE_URL": self.url,
               "TRADELEDGER_DATABASE_SCHEMA": self.schema,
               "TRADELEDGER_MASTER_KEYS": self.settings.master_keys.get_secret_value(),  # type: ignore[union-attr]
               "TRADELEDGER_JWT_SECRET": self.settings.jwt_secret.get_secret_value(),  # type: ignore[union-attr]
               "TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
               "TRADELEDGER_KAFKA_TOPIC": self.topic, "TRADELEDGER_DATA_DIR": str(self.work),
               "TRADELEDGER_LOG_LEVEL": "WARNING"}
        relay = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "relay"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.work / "relay.log", "w"))
        self.cleanups.append(lambda: (relay.terminate(), relay.wait(10)))

        if self.args.processes:
            self.own = "bench"  # this process only places orders and watches
            count = self.args.processes
            for i in range(count):
                worker = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                    [sys.executable, "-m", "adapters.cli", "worker", "--instance", str(i),
                     "--instances", str(count), "--lanes", str(self.args.lanes)],
                    env={**env, "TRADELEDGER_PAPER_EXCHANGE_URL": self.exchange_url},
                    stdout=subprocess.DEVNULL, stderr=open(self.work / f"worker-{i}.log", "w"))
                self.cleanups.append(lambda w=worker: (w.terminate(), w.wait(10)))
                COUNTED["workers"].append(worker.pid)
            return
        self.gateway = BinanceGateway.from_settings(self.settings)
        self.worker = ExecutionWorker(self.rt, self.gateway, lanes=self.args.lanes,
                                      sweep_interval=0)
        self.cleanups.append(self.worker.stop)
        self.worker.start(reconcile=False)
        self.start_consumer()

    def _drop_schema(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def start_consumer(self) -> None:
        stop = threading.Event()
        runner = ConsumerRunner(
            database_url=self.url, schema=self.schema, bootstrap_servers=self.bootstrap_servers,
            topic=self.topic, handler=self.worker, poll_timeout_ms=20)
        self.consumer_thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        self.consumer_thread.start()
        self.consumer_stop = stop

    def stop_consumer(self) -> None:
        assert self.consumer_stop is not None
        self.consumer_stop.set()
        self.consumer_thread.join(10)

    def teardown(self) -> None:
        if self.consumer_stop is not None:
            self.stop_consumer()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:
                print(f"cleanup failed: {exc}", file=sys.stderr)

    # ---- helpers -----------------------------------------------------------------------
    def accounts(self, count: int) -> list[UUID]:
        app = self.rt.app
        ids = [app.handle(RegisterAccount(email=f"bench{i}-{uuid.uuid4().hex[:6]}@example.com",
                                          password="p" * 12)) for i in range(count)]
        deadline = time.monotonic() + 60
        while not all(app.get_account(a).has_exchange_keys for a in ids):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not issue paper keys")
            time.sleep(0.1)
        if self.args.processes:
            time.sleep(3.0)  # the worker processes' user-data streams connect meanwhile
            return ids
        while len(self.worker.streams.connected) < count:  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return ids

    def place(self, account_id: UUID, n: int) -> UUID:
        side = "BUY" if n % 2 == 0 else "SELL"
        order_id: UUID = self.rt.app.handle(PlaceOrder(
            account_id=account_id, client_order_id=f"b{n}-{uuid.uuid4().hex[:12]}",
            symbol="BTCUSDT", side=side, order_type="MARKET", quantity="0.0001"))
        return order_id

    def wait_filled(self, order_ids: list[UUID], timeout: float) -> float:
        """Wait until every order is terminal; return when the last one became so.

        A pass reads the pending orders in the order they were placed and stops at the first
        one still open (the worker drains them in about that order), so the bench does not
        re-read thousands of orders every 50 ms: that load on Postgres and on this process
        (which runs the worker) was the bench's own, not the worker's. The end is the same:
        we return once every order has been seen terminal.
        """
        app = self.rt.app
        pending = list(order_ids)
        deadline = time.monotonic() + timeout
        while pending:
            still_open = next((i for i, o in enumerate(pending) if app.get_order(o).is_open),
                              len(pending))
            pending = pending[still_open:]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} orders still open after {timeout}s")
            time.sleep(0.05)
        return time.monotonic()

    def outcome(self, order_ids: list[UUID], seconds: float) -> dict[str, float]:
        """Orders, seconds, orders per second and how many ended in each status."""
        statuses: dict[str, int] = {}
        for order_id in order_ids:
            status = self.rt.app.get_order(order_id).status.value
            statuses[status] = statuses.get(status, 0) + 1
        n = len(order_ids)
        return {"orders": n, "seconds": seconds, "orders_per_s": n / seconds, **statuses}

    def latencies_ms(self, order_ids: list[UUID]) -> list[float]:
        app = self.rt.app
        out: list[float] = []
        for order_id in order_ids:
            events = list(app.events.get(order_id))
            placed = events[0].timestamp
            filled = [e for e in events if type(e).__name__ == "OrderFilled"
                      and getattr(e, "status", "") == OrderStatus.FILLED.value]
            if filled:
                out.append((filled[-1].timestamp - placed).total_seconds() * 1000)
        return out

    # ---- phases ---------------------------------------------------------------------------
    def latency_phase(self, accounts: list[UUID]) -> dict[str, float]:
        rate, duration = self.args.rate, self.args.duration
        total = int(rate * duration)
        print(f"latency: {total} MARKET orders at {rate}/s ...", flush=True)
        ids: list[UUID] = []
        cpu_before = cpu_by_process(self.own)
        start = time.monotonic()
        for n in range(total):
            target = start + n / rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ids.append(self.place(accounts[n % len(accounts)], n))
        achieved = total / (time.monotonic() - start)
        self.wait_filled(ids, 120)
        print(f"  {cpu_per_order(cpu_before, total, self.own)}", flush=True)
        lat = self.latencies_ms(ids)
        return {"orders": len(lat), "rate": achieved, "p50": percentile(lat, 50),
                "p90": percentile(lat, 90), "p99": percentile(lat, 99), "max": max(lat),
                "mean": statistics.fmean(lat)}

    def sustained_phase(self, accounts: list[UUID]) -> dict[str, float]:
        """Place --orders orders as fast as --placers threads go while the workers run."""
        n, placers = self.args.orders, self.args.placers
        print(f"throughput: {n} MARKET orders from {placers} threads, the workers running ...",
              flush=True)
        ids: list[UUID | None] = [None] * n
        cpu_before = cpu_by_process(self.own)
        started = time.monotonic()

        def place(first: int) -> None:
            for i in range(first, n, placers):
                ids[i] = self.place(accounts[i % len(accounts)], i)

        threads = [threading.Thread(target=place, args=(k,)) for k in range(placers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        placed = time.monotonic() - started
        placed_ids = [i for i in ids if i is not None]
        finished = self.wait_filled(placed_ids, 300)
        print(f"  {cpu_per_order(cpu_before, n, self.own)}")
        print(f"  placed at {n / placed:.0f}/s")
        return self.outcome(placed_ids, finished - started)

    def throughput_phase(self, accounts: list[UUID]) -> dict[str, float]:
        if self.args.processes:
            return self.sustained_phase(accounts)
        n = self.args.orders
        print(f"throughput: placing {n} MARKET orders with the worker's consumer stopped ...",
              flush=True)
        self.stop_consumer()
        ids = [self.place(accounts[i % len(accounts)], i) for i in range(n)]
        time.sleep(2.0)  # let the relay publish them all
        print("throughput: consumer started", flush=True)
        saver = self.worker.saver
        batches, saved, busy = saver.batches, saver.saved, saver.seconds
        cpu_before = cpu_by_process(self.own)
        started = time.monotonic()
        self.start_consumer()
        finished = self.wait_filled(ids, 300)
        print(f"  {cpu_per_order(cpu_before, n, self.own)}")
        seconds = finished - started
        batches, saved = saver.batches - batches, saver.saved - saved
        print(f"  group commit: {saved} saves in {batches} transactions "
              f"({saved / max(batches, 1):.1f} per transaction, "
              f"{(saver.seconds - busy) / max(batches, 1) * 1000:.1f} ms each)")
        return self.outcome(ids, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--processes", type=int, default=0,
                        help="run the worker as this many processes (0: in this process)")
    parser.add_argument("--placers", type=int, default=4,
                        help="threads placing orders in the --processes throughput phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.setup()
            accounts = bench.accounts(args.accounts)
            latency = bench.latency_phase(accounts)
            print(f"  {latency['orders']} orders at {latency['rate']:.0f}/s: OrderPlaced -> "
                  f"OrderFilled p50 {latency['p50']:.1f} ms, p90 {latency['p90']:.1f} ms, "
                  f"p99 {latency['p99']:.1f} ms, max {latency['max']:.1f} ms", flush=True)
            throughput = bench.throughput_phase(accounts)
            print(f"  {throughput['orders']} orders executed in {throughput['seconds']:.1f}s: "
                  f"{throughput['orders_per_s']:.0f} orders/s "
                  f"({', '.join(f'{k} {v}' for k, v in throughput.items() if k.isupper())})",
                  flush=True)
            goals_met = throughput["orders_per_s"] >= 300 and latency["p99"] <= 50
            print(f"goals (>= 300 orders/s, p99 <= 50 ms at 100/s): "
                  f"{'met' if goals_met else 'NOT met'}")
        finally:
            bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
