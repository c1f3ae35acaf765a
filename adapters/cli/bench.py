"""`tradeledger bench`: drive simulated traders through HTTP and SSE against a running system.

Each simulated user registers, opens its SSE stream, and places market orders (and some limit
orders it then cancels) at an aggregate target rate. The report gives orders/s accepted and
completed, POST -> FILLED-on-SSE latency percentiles, CPU and memory of each process, and
bare baselines of each layer measured in the same run (FastAPI POST, Postgres insert, Kafka
produce), so the overhead of every stage is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx

if TYPE_CHECKING:
    from adapters.platform.launcher import RunningSystem


@dataclass
class UserRun:
    headers: dict[str, str]
    posted: dict[str, float] = field(default_factory=dict)
    filled: dict[str, float] = field(default_factory=dict)
    canceled: set[str] = field(default_factory=set)
    seen_updates: int = 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def register_user(session: aiohttp.ClientSession, api_url: str, index: int) -> UserRun:
    email = f"bench-{uuid.uuid4().hex[:10]}-{index}@example.com"
    async with session.post(f"{api_url}/auth/register",
                            json={"email": email, "password": "bench-password-123"}) as response:
        response.raise_for_status()
        token = (await response.json())["token"]
    return UserRun(headers={"Authorization": f"Bearer {token}"})


async def follow_stream(session: aiohttp.ClientSession, api_url: str, user: UserRun,
                        ready: asyncio.Event, stop: asyncio.Event) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with session.get(f"{api_url}/api/stream", headers=user.headers,
                           timeout=timeout) as response:
        ready.set()
        event, data = "", ""
        async for raw in response.content:
            if stop.is_set():
                return
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line and data:
                if event == "ORDER_UPDATE" and '"FILLED"' in data:
                    payload = json.loads(data)
                    # The FILLED update can arrive before this client has read the POST's
                    # answer, so keep every one and match them to orders afterwards.
                    if payload.get("status") == "FILLED":
                        user.filled.setdefault(str(payload.get("orderId")), time.perf_counter())
                event, data = "", ""


async def place_orders(session: aiohttp.ClientSession, api_url: str, users: list[UserRun],
                       rate: float, duration: float,
                       limit_share: float) -> tuple[int, int, list[float]]:
    """Place orders at `rate` per second for `duration` seconds; return (accepted, refused)."""
    interval = 1.0 / rate
    total = int(rate * duration)
    accepted = refused = 0
    post_latencies: list[float] = []
    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []

    async def one(n: int) -> None:
        nonlocal accepted, refused
        user = users[n % len(users)]
        # Spread limit orders evenly: every (1 / limit_share)-th order is one.
        limit = int((n + 1) * limit_share) > int(n * limit_share)
        body: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY" if n % 2 else "SELL",
                                "type": "MARKET", "quantity": "0.0002"}
        if limit:
            # Far below the market, so it rests until canceled; 0.01 BTC keeps it above the
            # minimum notional.
            body.update(type="LIMIT", price="1000.00", side="BUY", timeInForce="GTC",
                        quantity="0.01")
        sent = time.perf_counter()
        try:
            async with session.post(f"{api_url}/api/trading/orders", json=body,
                                    headers=user.headers) as response:
                status = response.status
                answer = await response.json() if status == 202 else None
        except aiohttp.ClientError:
            answer = None  # a dropped connection counts as refused, like an error answer
        post_latencies.append(time.perf_counter() - sent)
        if answer is None:
            refused += 1
            return
        accepted += 1
        order_id = answer["orderId"]
        if limit:
            user.canceled.add(order_id)
            try:
                async with session.delete(f"{api_url}/api/trading/orders/{order_id}",
                                          headers=user.headers) as response:
                    await response.read()
            except aiohttp.ClientError:
                pass  # the order then rests on the exchange; nothing here waits for it
        else:
            user.posted[order_id] = sent

    for n in range(total):
        target = start + n * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return accepted, refused, post_latencies


def _named(proc: Any) -> str | None:
    """The bench's name for a TradeLedger process, or None for any other process."""
    args = proc.info["cmdline"] or []
    cmd = " ".join(args)
    if "adapters.cli" in args:  # `python -m adapters.cli <command>`
        rest = args[args.index("adapters.cli") + 1:]
        name = str(rest[0]) if rest else "?"
        if name == "bench":
            return None  # the load generator itself
        return "supervisor" if name == "up" else name
    if "adapters.cli.bare_pipeline" in args:
        role = args[args.index("adapters.cli.bare_pipeline") + 1]
        return f"bare-{role}"
    if "adapters.paper_exchange" in args:  # started on its own (scripts, tests)
        return "paper-exchange"
    if "tansu" in cmd:
        return "broker"
    if proc.info["name"] == "postgres":
        return "postgres"
    return None


def process_usage(roots: list[int] | None = None,
                  postgres_dir: str | None = None) -> list[tuple[str, float, float]]:
    """CPU seconds and RSS (MiB) of TradeLedger's processes, summed by name.

    With `roots`, only those processes and their descendants count, plus the Postgres server
    whose data directory is `postgres_dir` (its postmaster is not a child of `up`): other
    agents' systems on a shared machine stay out. Without, every such process on the machine.
    """
    import psutil

    procs: list[Any] = []
    if roots is None:
        procs = list(psutil.process_iter(["cmdline", "cpu_times", "memory_info", "name"]))
    else:
        pids: set[int] = set()
        for pid in roots:
            try:
                root = psutil.Process(pid)
                pids.add(pid)
                pids.update(c.pid for c in root.children(recursive=True))
            except psutil.Error:
                continue
        for proc in psutil.process_iter(["cmdline"]):
            if postgres_dir and postgres_dir in " ".join(proc.info["cmdline"] or []):
                try:
                    pids.add(proc.pid)
                    pids.update(c.pid for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                proc.info = proc.as_dict(["cmdline", "cpu_times", "memory_info", "name"])
            except psutil.Error:
                continue
            procs.append(proc)
    merged: dict[str, tuple[float, float]] = {}
    for proc in procs:
        if proc.info.get("cpu_times") is None:
            continue
        name = _named(proc)
        if name is None:
            continue
        cpu = proc.info["cpu_times"]
        old = merged.get(name, (0.0, 0.0))
        merged[name] = (old[0] + cpu.user + cpu.system,
                        old[1] + proc.info["memory_info"].rss / 2**20)
    return sorted((n, c, r) for n, (c, r) in merged.items())


Usage = Callable[[], list[tuple[str, float, float]]]
# Postgres publishes a backend's statistics at most once a second, and a backend that goes
# idle sooner waits for its idle timer (10 s) to publish the rest.
STATS_SETTLE_S = 11.0


class PostgresCounters:
    """The database's committed transactions and rows written so far (pg_stat_database):
    read before and after a load, they say how many of each one order costs.

    It keeps one connection from the first read on: after a load the server may have none
    to spare (the bare pipeline's pools beside TradeLedger's paused ones). A read that
    fails returns {} and the figures are left out; the benchmark goes on."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._conn: Any = None

    def read(self) -> dict[str, int]:
        import psycopg

        try:
            if self._conn is None:
                self._conn = psycopg.connect(self.database_url, autocommit=True)
            row = self._conn.execute(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted"
                " FROM pg_stat_database WHERE datname = current_database()").fetchone()
        except psycopg.Error as exc:
            print(f"Postgres counters left out: {exc}".strip(), file=sys.stderr)
            return {}
        return {"commits": int(row[0]), "rowsWritten": int(row[1])}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def bench_users(session: aiohttp.ClientSession, api_url: str,
                      users: int) -> list[UserRun]:
    """Register `users` TradeLedger accounts and let the worker give them paper keys."""
    runs = [await register_user(session, api_url, i) for i in range(users)]
    await asyncio.sleep(1.0)  # let the worker provision paper keys
    return runs


async def run_load(api_url: str, users: int, rate: float, duration: float,
                   limit_share: float, usage: Usage | None = None,
                   tokens: Callable[[], str] | None = None,
                   counters: PostgresCounters | None = None) -> dict[str, Any]:
    """Drive the load and measure it; `tokens` mints bearer tokens instead of registering;
    `counters` adds Postgres transactions and rows written per order."""
    usage = usage or process_usage
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        if tokens is None:
            runs = await bench_users(session, api_url, users)
        else:
            runs = [UserRun(headers={"Authorization": f"Bearer {tokens()}"})
                    for _ in range(users)]
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in runs]
        streams = [asyncio.create_task(follow_stream(session, api_url, u, r, stop))
                   for u, r in zip(runs, readies, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        cpu_before = {n: c for n, c, _ in usage()}
        counted_before = counters.read() if counters else {}
        started = time.perf_counter()
        accepted, refused, post_latencies = await place_orders(
            session, api_url, runs, rate, duration, limit_share)
        accept_elapsed = time.perf_counter() - started
        expected = sum(len(u.posted) for u in runs)
        deadline = time.perf_counter() + 60

        def completed() -> int:
            return sum(1 for u in runs for order_id in u.posted if order_id in u.filled)

        while time.perf_counter() < deadline and completed() < expected:
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        processes = usage()
        stop.set()
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    latencies = [u.filled[o] - u.posted[o] for u in runs for o in u.posted if o in u.filled]
    last_fill = max((u.filled[o] for u in runs for o in u.posted if o in u.filled),
                    default=started)
    done = max(1, len(latencies))
    postgres: dict[str, float] = {}
    if counters:
        await asyncio.sleep(STATS_SETTLE_S)
        counted = counters.read()
        counters.close()
        if counted and counted_before:
            postgres = {k: round((counted[k] - counted_before[k]) / done, 1) for k in counted}
    spent = {n: c - cpu_before.get(n, 0.0) for n, c, _ in processes}
    rows: list[dict[str, Any]] = [
        {"name": n, "cpu_s": round(spent[n], 3), "cpu_pct": round(100 * spent[n] / elapsed, 1),
         "cpu_ms_per_order": round(1000 * spent[n] / done, 2), "rss_mib": round(r, 1)}
        for n, _, r in processes]
    return {
        "users": users, "target_rate": rate, "duration_s": duration,
        "accepted": accepted, "refused": refused,
        "accepted_per_s": accepted / accept_elapsed,
        "market_orders": expected, "filled_seen_on_sse": len(latencies),
        "completed_per_s": len(latencies) / max(1e-9, last_fill - started),
        "fill_latency_ms": {q: percentile(latencies, p) * 1000 for q, p in
                            (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "post_latency_ms": {q: percentile(post_latencies, p) * 1000 for q, p in
                            (("p50", 0.5), ("p99", 0.99))},
        "elapsed_s": elapsed,
        # All counted processes' CPU over the run (placing to the last fill) per order seen
        # FILLED: limit orders and cancels add to the cost, never to the count.
        "cpu_ms_per_order": round(1000 * sum(spent.values()) / done, 2),
        "processes": rows,
        # Per order seen FILLED, like the CPU (so limit orders and cancels add to it); the
        # counters include the STATS_SETTLE_S of quiet after the load.
        "postgres_per_order": postgres,
    }


def summary(result: dict[str, Any]) -> dict[str, float]:
    """The figures `--json` carries for one pipeline."""
    return {"cpuMsPerOrder": result["cpu_ms_per_order"],
            "p50Ms": round(result["fill_latency_ms"]["p50"], 2),
            "p99Ms": round(result["fill_latency_ms"]["p99"], 2),
            "completedPerSecond": round(result["completed_per_s"], 1)}


SHARED = ("postgres", "broker", "paper-exchange")


def pause_tradeledger(roots: list[int]) -> list[Any]:
    """SIGSTOP TradeLedger's own processes of the `up` tree (not the servers the bare
    pipeline shares), so that their idle work does not count as the bare pipeline's."""
    import psutil

    paused = []
    for pid in roots:
        try:
            tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            continue
        for proc in tree:
            try:
                proc.info = proc.as_dict(["cmdline", "name"])
                name = _named(proc)
                if name is not None and name not in SHARED:
                    proc.suspend()
                    paused.append(proc)
            except psutil.Error:
                continue
    return paused


def resume(paused: list[Any]) -> None:
    """SIGCONT what pause_tradeledger stopped."""
    import psutil

    for proc in paused:
        with contextlib.suppress(psutil.Error):
            proc.resume()


def run_bare(database_url: str, bootstrap: str, paper_url: str, users: int, rate: float,
             duration: float, system_roots: list[int], postgres_dir: str | None
             ) -> dict[str, Any]:
    """Start the bare pipeline, drive the same load through it, stop it.

    TradeLedger's own processes (of `system_roots`) are paused meanwhile: the Postgres,
    broker and paper exchange CPU counted is then the bare pipeline's alone.
    """
    from adapters.cli.bare_pipeline import start_bare

    bare = start_bare(database_url, bootstrap, paper_url, accounts=users)
    print(f"bare pipeline output: {bare.log_path}", file=sys.stderr)
    def usage() -> list[tuple[str, float, float]]:
        # Its own three processes, and the servers it shares with TradeLedger.
        rows = process_usage(system_roots + bare.pids(), postgres_dir)
        return [r for r in rows if r[0].startswith("bare-") or r[0] in SHARED]

    paused = pause_tradeledger(system_roots)
    try:
        result = asyncio.run(run_load(bare.api_url, users, rate, duration, 0.0, usage=usage,
                                      tokens=bare.token,
                                      counters=PostgresCounters(database_url)))
        if any(p.poll() is not None for p in bare.processes):
            print(f"a bare-pipeline process exited during the run: see {bare.log_path}",
                  file=sys.stderr)
        return result
    finally:
        resume(paused)
        bare.stop()


# ---- bare baselines of each layer -----------------------------------------------------
def baseline_fastapi(requests: int = 3000) -> float:
    """POST with pydantic validation on a bare FastAPI app under uvicorn (requests/s)."""
    import socket
    import subprocess

    code = (
        "from fastapi import FastAPI\nfrom pydantic import BaseModel\nimport uvicorn\n"
        "class O(BaseModel):\n    symbol: str\n    side: str\n    quantity: str\n"
        "app = FastAPI()\n@app.post('/o', status_code=202)\nasync def o(body: O):\n"
        "    return {'ok': True}\nimport sys\n"
        "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)])  # noqa: S603
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.post(url + "/o", json={"symbol": "X", "side": "BUY", "quantity": "1"})
                break
            except httpx.TransportError:
                time.sleep(0.1)

        async def hammer() -> float:
            body = {"symbol": "X", "side": "BUY", "quantity": "1"}
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=64)) as session:
                async def one() -> None:
                    async with session.post(url + "/o", json=body) as response:
                        await response.read()

                started = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(requests)))
                return requests / (time.perf_counter() - started)

        return asyncio.run(hammer())
    finally:
        proc.terminate()
        proc.wait(10)


def baseline_postgres(database_url: str, rows: int = 3000) -> float:
    """Single-row committed inserts per second (one connection)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE bench_bare (id bigserial, body jsonb)")
        started = time.perf_counter()
        for n in range(rows):
            conn.execute("INSERT INTO bench_bare (body) VALUES (%s)", (json.dumps({"n": n}),))
        return rows / (time.perf_counter() - started)


def baseline_kafka(bootstrap: str, messages: int = 20000) -> float:
    """Produce rate of a bare kafka-python-ng producer with acks=all (messages/s)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10,
                             max_in_flight_requests_per_connection=1)
    topic = f"bench-bare-{uuid.uuid4().hex[:6]}"
    payload = b"x" * 400
    started = time.perf_counter()
    for _ in range(messages):
        producer.send(topic, payload)
    producer.flush()
    rate = messages / (time.perf_counter() - started)
    producer.close()
    return rate


def ratios(result: dict[str, Any], bare: dict[str, Any]) -> dict[str, float]:
    """TradeLedger's figures over the bare pipeline's (2.0 = twice the cost)."""
    ours, floor = summary(result), summary(bare)
    return {k: round(ours[k] / floor[k], 2) if floor[k] else float("nan")
            for k in ("cpuMsPerOrder", "p50Ms", "p99Ms")}


def report(result: dict[str, Any], bare: dict[str, Any] | None,
           baselines: dict[str, float]) -> dict[str, Any]:
    """The `--json` document: the headline figures, then the details."""
    doc: dict[str, Any] = {**summary(result)}
    if bare is not None:
        doc["bare"] = summary(bare)
        doc["ratio"] = ratios(result, bare)
    doc["loadAverage"] = [round(x, 2) for x in os.getloadavg()]
    doc["result"] = result
    if bare is not None:
        doc["bareResult"] = bare
    doc["baselines"] = baselines
    return doc


def render(result: dict[str, Any], baselines: dict[str, float],
           bare: dict[str, Any] | None = None) -> str:
    lines = [
        f"users {result['users']}, target {result['target_rate']:.0f} orders/s for "
        f"{result['duration_s']:.0f} s",
        f"accepted  {result['accepted']} ({result['refused']} refused) -> "
        f"{result['accepted_per_s']:.0f} orders/s; POST p50 "
        f"{result['post_latency_ms']['p50']:.1f} ms, p99 {result['post_latency_ms']['p99']:.1f} ms",
        f"completed {result['filled_seen_on_sse']}/{result['market_orders']} market orders "
        f"FILLED on SSE -> {result['completed_per_s']:.0f} orders/s",
        "POST -> FILLED on SSE: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms".format(
            **result["fill_latency_ms"]),
        f"CPU per completed order, all processes: {result['cpu_ms_per_order']:.2f} ms",
        *_postgres_line(result),
        "", f"{'process':<16}{'CPU s':>8}{'CPU %':>8}{'ms/order':>10}{'RSS MiB':>10}",
    ]

    def rows(of: dict[str, Any]) -> list[str]:
        return [f"{r['name']:<16}{r['cpu_s']:>8.2f}{r['cpu_pct']:>8}"
                f"{r.get('cpu_ms_per_order', 0.0):>10.2f}{r['rss_mib']:>10}"
                for r in of["processes"]]

    lines += rows(result)
    if bare is not None:
        ratio = ratios(result, bare)
        lines += [
            "", "bare pipeline, same hops and libraries, no business logic (same run):",
            f"completed {bare['filled_seen_on_sse']}/{bare['market_orders']} -> "
            f"{bare['completed_per_s']:.0f} orders/s; POST -> FILLED on SSE: p50 "
            f"{bare['fill_latency_ms']['p50']:.1f} ms, p99 {bare['fill_latency_ms']['p99']:.1f} ms",
            f"CPU per completed order: {bare['cpu_ms_per_order']:.2f} ms",
            *_postgres_line(bare),
            *rows(bare),
            "", f"{'':<22}{'TradeLedger':>12}{'bare':>10}{'ratio':>8}",
        ]
        ours, floor = summary(result), summary(bare)
        for key, label in (("cpuMsPerOrder", "CPU ms per order"), ("p50Ms", "p50 ms"),
                           ("p99Ms", "p99 ms")):
            lines.append(f"{label:<22}{ours[key]:>12.2f}{floor[key]:>10.2f}{ratio[key]:>8.2f}")
    load = os.getloadavg()
    lines.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if baselines:
        lines += ["", "bare baselines of single layers measured in this run:"]
        lines += [f"  {name:<34}{value:>10,.0f}/s" for name, value in baselines.items()]
    return "\n".join(lines)


def _postgres_line(result: dict[str, Any]) -> list[str]:
    pg = result.get("postgres_per_order") or {}
    if not pg:
        return []
    return [f"Postgres per completed order: {pg['commits']:.1f} transactions, "
            f"{pg['rowsWritten']:.1f} rows written"]


def register(subparsers: Any) -> None:
    bench = subparsers.add_parser(
        "bench", help="end-to-end load test against a running system (see docs/benchmarks.md)")
    bench.add_argument("--api-url", default=None,
                       help="a running API; default: start the system with `up` in a temp dir")
    bench.add_argument("--users", type=int, default=20)
    bench.add_argument("--rate", type=float, default=200.0, help="orders per second offered")
    bench.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    bench.add_argument("--limit-share", type=float, default=0.1,
                       help="share of orders that are limit orders, canceled right away")
    bench.add_argument("--no-baselines", action="store_true",
                       help="skip the single-layer baselines (the bare pipeline still runs)")
    bench.add_argument("--no-bare", action="store_true",
                       help="skip the bare pipeline run")
    bench.add_argument("--json", action="store_true", help="print the raw result as JSON")
    bench.add_argument("--order-transport", choices=("ws", "rest"), default=None,
                       help="the started system's TRADELEDGER_ORDER_TRANSPORT (default: its "
                            "default, ws)")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    system = None
    api_url = args.api_url
    if api_url is None:
        import tempfile
        from pathlib import Path

        from adapters.platform.launcher import start_system

        print("starting a fresh system with `tradeledger up` in a temporary directory...",
              file=sys.stderr)
        settings = ({"ORDER_TRANSPORT": args.order_transport} if args.order_transport
                    else None)
        system = start_system(Path(tempfile.mkdtemp(prefix="tl-bench-")), with_dashboard=False,
                              settings=settings)
        api_url = system.api_url
    roots = [system.process.pid] if system is not None else None
    postgres_dir = str(system.data_dir / "postgres") if system is not None else None
    try:
        print(f"load: {args.users} users, {args.rate:.0f} orders/s for {args.duration:.0f} s "
              f"against {api_url}", file=sys.stderr)
        db = os.environ.get("TRADELEDGER_DATABASE_URL") or _system_env(system, "DATABASE_URL")
        result = asyncio.run(run_load(
            api_url, args.users, args.rate, args.duration, args.limit_share,
            usage=lambda: process_usage(roots, postgres_dir),
            counters=PostgresCounters(db) if db else None))
        broker = (os.environ.get("TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS")
                  or _system_env(system, "KAFKA_BOOTSTRAP_SERVERS"))
        paper = (os.environ.get("TRADELEDGER_PAPER_EXCHANGE_URL")
                 or _system_env(system, "PAPER_EXCHANGE_URL"))
        bare = None
        if not args.no_bare:
            if db and broker and paper:
                print("running the bare pipeline with the same load...", file=sys.stderr)
                bare = run_bare(db, broker, paper, args.users, args.rate, args.duration,
                                roots or [], postgres_dir)
            else:
                print("bare pipeline skipped: set TRADELEDGER_DATABASE_URL, "
                      "TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS and TRADELEDGER_PAPER_EXCHANGE_URL "
                      "with --api-url", file=sys.stderr)
        baselines: dict[str, float] = {}
        if not args.no_baselines:
            print("measuring bare baselines...", file=sys.stderr)
            baselines["FastAPI POST (bare, 1 worker)"] = baseline_fastapi()
            if db:
                baselines["Postgres single-row insert+commit"] = baseline_postgres(db)
            if broker:
                baselines["Kafka produce (acks=all)"] = baseline_kafka(broker)
        if args.json:
            raw = report(result, bare, baselines)
            if system is not None:
                raw["orderTransport"] = args.order_transport or "ws"
            print(json.dumps(raw, indent=2))
        else:
            print(render(result, baselines, bare))
        return 0
    finally:
        if system is not None:
            from adapters.platform.launcher import stop_system

            stop_system(system)


def _system_env(system: RunningSystem | None, name: str) -> str | None:
    """Read a child's configuration from the `up` process tree (for the baselines)."""
    if system is None:
        return None
    import psutil

    for child in psutil.Process(system.process.pid).children(recursive=True):
        try:
            value: str | None = child.environ().get(f"TRADELEDGER_{name}")
        except psutil.Error:
            continue
        if value:
            return value
    return None
