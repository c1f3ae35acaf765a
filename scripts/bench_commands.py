#!/usr/bin/env python3
"""Benchmark: PlaceOrder commands per second with N concurrent writers against Postgres.

    python scripts/bench_commands.py [--writers 8] [--orders 8000] [--database-url URL]

Without --database-url it uses the machine's Postgres (127.0.0.1:5432/test) when reachable,
else an embedded Postgres in a temporary directory. Each run uses a fresh schema.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from adapters.platform.bootstrap import bootstrap
from adapters.platform.settings import Settings
from commands.messages import PlaceOrder, RegisterAccount


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--orders", type=int, default=8000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-group-commit", action="store_true",
                        help="save every order in its own transaction (the baseline)")
    args = parser.parse_args()

    server = None
    url = args.database_url or "postgresql://postgres@127.0.0.1:5432/test"
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        from adapters.postgres.embedded import start_embedded_postgres

        url, server = start_embedded_postgres(Path(tempfile.mkdtemp()))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=url, database_schema=schema, data_dir=Path(tempfile.mkdtemp()),
        master_keys="k1:" + base64.b64encode(os.urandom(32)).decode(),
        jwt_secret=secrets.token_urlsafe(48), database_pool_size=args.writers + 2,
    )
    rt = bootstrap(settings, url)
    app = rt.app
    app.group_commit = not args.no_group_commit
    accounts = [app.handle(RegisterAccount(email=f"bench{i}@example.com",
                                           password="benchmark-password"))  # noqa: S106
                for i in range(args.writers)]
    per_writer = args.orders // args.writers
    latencies: list[list[float]] = [[] for _ in range(args.writers)]
    barrier = threading.Barrier(args.writers + 1)

    def writer(index: int) -> None:
        account = accounts[index]
        barrier.wait()
        for n in range(per_writer):
            started = time.perf_counter()
            app.handle(PlaceOrder(account_id=account, client_order_id=f"b{index}-{n}",
                                  symbol="BTCUSDT", side="BUY", order_type="LIMIT",
                                  quantity="0.001", price="90000"))
            latencies[index].append(time.perf_counter() - started)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for lat in latencies for x in lat)
    total = len(flat)
    mode = "one transaction per order" if args.no_group_commit else "group commit"
    print(f"PlaceOrder ({mode}): {total} orders, {args.writers} writers, {elapsed:.2f} s -> "
          f"{total / elapsed:,.0f} orders/s; latency p50 {statistics.median(flat) * 1000:.1f} ms,"
          f" p99 {flat[int(total * 0.99) - 1] * 1000:.1f} ms")
    rt.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if server is not None:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
