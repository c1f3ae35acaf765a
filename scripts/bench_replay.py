"""Benchmark replay: generate N events through the real TradingApplication, then rebuild
every read model from the event store and report events/s.

Usage: PYTHONPATH=. python scripts/bench_replay.py [--events 200000] [--url URL] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg

from adapters.platform.bootstrap import bootstrap
from adapters.platform.settings import Settings
from adapters.postgres.replay import replay, resolve_projections
from commands.messages import RegisterAccount
from domain.order import Order

EVENTS_PER_ORDER = 5  # placed, submitted, accepted, two fills


def generate(app: object, events: int, accounts: int = 20, per_save: int = 500) -> int:
    """Append about `events` order events, saving many aggregates per transaction."""
    ids = [app.handle(RegisterAccount(email=f"bench{i}@example.com",  # type: ignore[attr-defined]
                                      password="benchmark-password"))  # noqa: S106
           for i in range(accounts)]
    orders = max(1, (events - accounts) // EVENTS_PER_ORDER)
    batch: list[Order] = []
    for i in range(orders):
        side = "BUY" if i % 3 else "SELL"
        order = Order(account_id=ids[i % accounts], client_order_id=f"o{i}",
                      symbol=("BTCUSDT", "ETHUSDT", "BNBUSDT")[i % 3], side=side,
                      order_type="LIMIT", quantity=Decimal("0.010"),
                      price=Decimal(1000 + i % 97), time_in_force="GTC", actor="bench")
        order.accept(f"x{i}", actor="bench")
        order.fill(f"t{i}a", Decimal(1000 + i % 89), Decimal("0.004"), Decimal("0.000004"),
                   "BTC", actor="bench")
        order.fill(f"t{i}b", Decimal(1000 + i % 83), Decimal("0.006"), Decimal("0.01"),
                   "USDT", actor="bench")
        batch.append(order)
        if len(batch) == per_save:
            app.save(*batch)  # type: ignore[attr-defined]
            batch = []
    if batch:
        app.save(*batch)  # type: ignore[attr-defined]
    return accounts + orders * EVENTS_PER_ORDER


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    settings = Settings(  # type: ignore[call-arg]
        database_url=args.url, database_schema=schema,
        data_dir=Path(tempfile.mkdtemp(prefix="bench-replay-")),
        master_keys="k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        jwt_secret=secrets.token_urlsafe(48))
    rt = bootstrap(settings, args.url)
    try:
        t0 = time.monotonic()
        written = generate(rt.app, args.events)
        gen = time.monotonic() - t0
        print(f"load average before replay: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"generated {written:,} events in {gen:.1f}s ({written / gen:,.0f}/s)")
        results = []
        for label, verify in (("replay", False), ("replay (2nd run)", False),
                              ("replay --verify", True)):
            cpu = time.process_time()
            r = replay(rt.app, args.url, schema, resolve_projections("all"), verify=verify,
                       progress=sys.stderr, page_size=args.page_size, force=True)
            cpu = time.process_time() - cpu
            results.append(r)
            extra = f", {len(r.differences)} differing rows" if verify else ""
            phases = ", ".join(f"{k} {v:.2f}s" for k, v in r.phases.items())
            print(f"{label}: {r.events:,} events in {r.seconds:.2f}s = "
                  f"{r.rate:,.0f} events/s ({phases}; client CPU {cpu:.2f}s = "
                  f"{r.events / cpu:,.0f} events per CPU-second){extra}")
        t1 = time.monotonic()
        n = 0
        while page := rt.app.recorder.select_notifications(n + 1, 10_000):
            n = page[-1].id
        raw = time.monotonic() - t1
        print(f"raw select_notifications read: {n:,} in {raw:.2f}s = {n / raw:,.0f}/s")
    finally:
        rt.close()
        if not args.keep:
            with psycopg.connect(args.url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
