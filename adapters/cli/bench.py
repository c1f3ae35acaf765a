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
import json
import os
import sys
import time
import uuid
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
        async with session.post(f"{api_url}/api/trading/orders", json=body,
                                headers=user.headers) as response:
            status = response.status
            answer = await response.json() if status == 202 else None
        post_latencies.append(time.perf_counter() - sent)
        if answer is None:
            refused += 1
            return
        accepted += 1
        order_id = answer["orderId"]
        if limit:
            user.canceled.add(order_id)
            async with session.delete(f"{api_url}/api/trading/orders/{order_id}",
                                      headers=user.headers) as response:
                await response.read()
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


def process_usage() -> list[tuple[str, float, float]]:
    """CPU seconds and RSS (MiB) of every TradeLedger process on this machine."""
    import psutil

    rows = []
    for proc in psutil.process_iter(["cmdline", "cpu_times", "memory_info", "name"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if ("adapters.cli" in cmd or "adapters.paper_exchange" in cmd or "tansu" in cmd
                or proc.info["name"] == "postgres"):
            args = proc.info["cmdline"] or ["?"]
            if "adapters.cli" in args:
                name = args[args.index("adapters.cli") + 1]
                if name == "bench":
                    continue  # the load generator itself
                name = "supervisor" if name == "up" else name
            elif "adapters.paper_exchange" in args:  # started on its own (scripts, tests)
                name = "paper-exchange"
            else:
                name = "broker" if "tansu" in cmd else "postgres"
            cpu = proc.info["cpu_times"]
            rows.append((name, cpu.user + cpu.system, proc.info["memory_info"].rss / 2**20))
    merged: dict[str, tuple[float, float]] = {}
    for name, cpu_s, rss in rows:
        old = merged.get(name, (0.0, 0.0))
        merged[name] = (old[0] + cpu_s, old[1] + rss)
    return sorted((n, c, r) for n, (c, r) in merged.items())


async def run_load(api_url: str, users: int, rate: float, duration: float,
                   limit_share: float) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        runs = [await register_user(session, api_url, i) for i in range(users)]
        await asyncio.sleep(1.0)  # let the worker provision paper keys
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in runs]
        streams = [asyncio.create_task(follow_stream(session, api_url, u, r, stop))
                   for u, r in zip(runs, readies, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        cpu_before = {n: c for n, c, _ in process_usage()}
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
        usage = process_usage()
        stop.set()
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    latencies = [u.filled[o] - u.posted[o] for u in runs for o in u.posted if o in u.filled]
    last_fill = max((u.filled[o] for u in runs for o in u.posted if o in u.filled),
                    default=started)
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
        "processes": [{"name": n, "cpu_s": round(c - cpu_before.get(n, 0.0), 2),
                       "cpu_pct": round(100 * (c - cpu_before.get(n, 0.0)) / elapsed, 1),
                       "rss_mib": round(r, 1)} for n, c, r in usage],
    }


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


def render(result: dict[str, Any], baselines: dict[str, float]) -> str:
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
        "", f"{'process':<16}{'CPU s':>8}{'CPU %':>8}{'RSS MiB':>10}",
    ]
    for row in result["processes"]:
        lines.append(f"{row['name']:<16}{row['cpu_s']:>8}{row['cpu_pct']:>8}{row['rss_mib']:>10}")
    if baselines:
        lines += ["", "bare baselines measured in this run:"]
        lines += [f"  {name:<34}{value:>10,.0f}/s" for name, value in baselines.items()]
    return "\n".join(lines)


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
    bench.add_argument("--no-baselines", action="store_true")
    bench.add_argument("--json", action="store_true", help="print the raw result as JSON")
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
        system = start_system(Path(tempfile.mkdtemp(prefix="tl-bench-")), with_dashboard=False)
        api_url = system.api_url
    try:
        print(f"load: {args.users} users, {args.rate:.0f} orders/s for {args.duration:.0f} s "
              f"against {api_url}", file=sys.stderr)
        result = asyncio.run(run_load(api_url, args.users, args.rate, args.duration,
                                      args.limit_share))
        baselines: dict[str, float] = {}
        if not args.no_baselines:
            print("measuring bare baselines...", file=sys.stderr)
            baselines["FastAPI POST (bare, 1 worker)"] = baseline_fastapi()
            db = os.environ.get("TRADELEDGER_DATABASE_URL") or _system_env(system, "DATABASE_URL")
            if db:
                baselines["Postgres single-row insert+commit"] = baseline_postgres(db)
            broker = (os.environ.get("TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS")
                      or _system_env(system, "KAFKA_BOOTSTRAP_SERVERS"))
            if broker:
                baselines["Kafka produce (acks=all)"] = baseline_kafka(broker)
        print(json.dumps({"result": result, "baselines": baselines}, indent=2) if args.json
              else render(result, baselines))
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
