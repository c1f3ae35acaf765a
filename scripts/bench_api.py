"""Benchmark: accepted orders per second through HTTP with JWT, and latency p50/p99.

Starts a real uvicorn (N workers, `adapters.processes.api:app_from_environment`) on a fresh
Postgres schema, registers a few users over HTTP, then drives POST /api/trading/orders
with keep-alive connections from a lean asyncio client (raw HTTP/1.1, so the client costs
as little CPU as possible on a small machine). Every order is a new LIMIT order with its
own clientOrderId: each is validated, saved as an event and answered 202.

    PYTHONPATH=. /tmp/venv/bin/python scripts/bench_api.py --workers 2 --seconds 15

The order rate limit is raised for the run (TRADELEDGER_ORDER_RATE_LIMIT_PER_SECOND), since
the point is the pipeline's capacity, not the per-user throttle.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

MACHINE_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU seconds used so far by these processes (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return found


def postgres_backends(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity").fetchall()]


def http_json(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        data: dict[str, object] = json.loads(response.read())
        return data


def start_server(db_url: str, schema: str, port: int, workers: int,
                 data_dir: Path) -> subprocess.Popen[bytes]:
    settings = {
        "TRADELEDGER_DATABASE_URL": db_url,
        "TRADELEDGER_DATABASE_SCHEMA": schema,
        "TRADELEDGER_DATA_DIR": str(data_dir),
        "TRADELEDGER_MASTER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "TRADELEDGER_JWT_SECRET": secrets.token_urlsafe(48),
        "TRADELEDGER_ORDER_RATE_LIMIT_PER_SECOND": "1000000",
        "TRADELEDGER_DATABASE_POOL_SIZE": "8",
        "TRADELEDGER_LOG_LEVEL": "WARNING",
    }
    # Create the event store tables before the workers start (they would race on them).
    sys.path.insert(0, str(ROOT))
    from adapters.platform.bootstrap import bootstrap
    from adapters.platform.settings import Settings

    os.environ.update(settings)
    bootstrap(Settings(), db_url).close()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "uvicorn", "--factory",
               "adapters.processes.api:app_from_environment", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-access-log",
               "--log-level", "warning"]
    for module, flag in (("uvloop", "--loop=uvloop"), ("httptools", "--http=httptools")):
        try:
            __import__(module)
            command.append(flag)
        except ImportError:
            pass
    process = subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the API did not become ready")


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.status: dict[int, int] = {}


async def connection(port: int, tokens: list[str], stop_at: float, measure_from: float,
                     stats: Stats, worker: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < stop_at:
            token = tokens[(worker + n) % len(tokens)]
            body = ('{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001",'
                    f'"price":"90000.00","clientOrderId":"b{worker}-{n}-{uuid.uuid4().hex[:8]}"}}'
                    ).encode()
            request = (f"POST /api/trading/orders HTTP/1.1\r\nHost: bench\r\n"
                       f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            done = time.perf_counter()
            if started >= measure_from:
                stats.latencies.append(done - started)
                stats.status[status] = stats.status.get(status, 0) + 1
            n += 1
    finally:
        writer.close()


async def drive(port: int, tokens: list[str], concurrency: int, seconds: float,
                warmup: float) -> tuple[Stats, float]:
    stats = Stats()
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    await asyncio.gather(*(connection(port, tokens, stop_at, measure_from, stats, i)
                           for i in range(concurrency)))
    return stats, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TRADELEDGER_TEST_DATABASE_URL",
                                                                 MACHINE_URL))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()

    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    from adapters.platform.net import free_port

    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix=schema))
    server = start_server(args.database_url, schema, port, args.workers, data_dir)
    try:
        base = f"http://127.0.0.1:{port}"
        tokens = [str(http_json(f"{base}/auth/register", {
            "email": f"bench{i}-{uuid.uuid4().hex[:6]}@example.com",
            "password": "benchmark password"})["token"]) for i in range(args.users)]
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        pids = tree(server.pid)
        backends = postgres_backends(args.database_url)
        before = (cpu_seconds(pids), cpu_seconds(backends), time.process_time(),
                  time.perf_counter())
        stats, seconds = asyncio.run(drive(port, tokens, args.concurrency, args.seconds,
                                           args.warmup))
        backends = sorted(set(backends) | set(postgres_backends(args.database_url)))
        cpu = (cpu_seconds(pids) - before[0], cpu_seconds(backends) - before[1],
               time.process_time() - before[2], time.perf_counter() - before[3])
    finally:
        server.terminate()
        server.wait(timeout=30)
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            events = conn.execute(
                f'SELECT count(*) FROM "{schema}".tradeledger_events '  # noqa: S608
                "WHERE topic LIKE %s", ("%OrderPlaced%",)).fetchone()
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    accepted = stats.status.get(202, 0)
    lat = sorted(stats.latencies)
    p50 = statistics.median(lat) * 1000 if lat else 0.0
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0
    print(json.dumps({
        "workers": args.workers, "concurrency": args.concurrency, "users": args.users,
        "seconds": seconds, "accepted": accepted, "status": stats.status,
        "accepted_per_second": round(accepted / seconds, 1),
        "latency_ms": {"p50": round(p50, 2), "p99": round(p99, 2),
                       "max": round(max(lat) * 1000, 2) if lat else 0.0},
        "orders_in_event_store": events[0] if events else None,
        # CPU per order over the whole run (warm-up included), to size the machine.
        "cpu_ms_per_order": {
            name: round(used * 1000 / max(1, sum(stats.status.values())
                                          * (args.seconds + args.warmup) / args.seconds), 3)
            for name, used in (("api", cpu[0]), ("postgres", cpu[1]), ("client", cpu[2]))},
        "machine_busy_by_others_hint": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
