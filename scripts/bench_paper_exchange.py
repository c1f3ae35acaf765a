"""Benchmark: the paper exchange's CPU per MARKET order (the figure that matters on a small
machine, where the exchange shares two cores with everything else).

    PYTHONPATH=. .venv/bin/python scripts/bench_paper_exchange.py [--orders 2000]
                                                                  [--threads 4] [--accounts 8]

Starts the paper exchange as a subprocess (as bench_worker does) on a throw-away state dir,
issues --accounts key pairs, follows each one's user-data stream over the WS-API with
python-binance's AsyncClient (so every order also pays for its executionReport and
outboundAccountPosition pushes), then places --orders MARKET orders (BTCUSDT, 0.0001,
BUY/SELL alternating, newOrderRespType FULL, signed) with python-binance's Client from
--threads threads, the accounts shared out among them. The exchange's CPU is read from
/proc/<pid>/stat (utime+stime) after a warm-up and again once every user-data event has
arrived, so the figure covers REST, matching, SQLite and websocket pushes. CPU per order
is robust to other load on the machine; orders/s is not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from binance import AsyncClient, BinanceSocketManager, Client  # noqa: E402

from adapters.paper_exchange.runner import ApiKeys, request_keys, start_subprocess  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 50
# A MARKET order of 0.0001 BTC fills in one trade: NEW and TRADE reports, one position.
EVENTS_PER_ORDER = 3


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


class UserStreams:
    """Every account's user-data stream on one asyncio loop in a thread; counts events."""

    def __init__(self, url: str, keys: list[ApiKeys]) -> None:
        self.client_class: Any = type("BenchAsyncClient", (AsyncClient,), {
            "API_URL": url + "/api",
            "WS_API_URL": url.replace("http://", "ws://") + "/ws-api/v3"})
        self.keys = keys
        self.events = 0
        self.subscribed = threading.Event()
        self.errors: list[BaseException] = []
        self._stop: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._main(),), daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self.subscribed.wait(30) or self.errors:
            raise RuntimeError("user-data streams did not subscribe") from (
                self.errors[0] if self.errors else None)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        ready = [asyncio.Event() for _ in self.keys]
        tasks = [asyncio.create_task(self._follow(k, r))
                 for k, r in zip(self.keys, ready, strict=True)]
        await asyncio.gather(*(r.wait() for r in ready))
        self.subscribed.set()
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, keys: ApiKeys, ready: asyncio.Event) -> None:
        try:
            client = await self.client_class.create(keys.api_key, keys.secret_key)
        except Exception as exc:
            self.errors.append(exc)
            self.subscribed.set()
            raise
        client.ws_api.TIMEOUT = 1  # closing waits for the WS-API read loop's timeout
        try:
            async with BinanceSocketManager(client).user_socket() as stream:
                ready.set()
                while True:
                    await stream.recv()
                    self.events += 1
        except Exception as exc:
            self.errors.append(exc)
            self.subscribed.set()
            raise
        finally:
            await client.close_connection()


def place(clients: list[Client], count: int, start: int, errors: list[BaseException]) -> None:
    """Place `count` MARKET orders, round robin over `clients`."""
    try:
        for n in range(start, start + count):
            clients[n % len(clients)].create_order(
                symbol="BTCUSDT", side="BUY" if n % 2 == 0 else "SELL", type="MARKET",
                quantity="0.0001", newOrderRespType="FULL", newClientOrderId=f"bench-{n}")
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-paper-") as work:
        # Binance's 100 orders per 10 s per key would throttle the bench: measure the CPU
        # of an order (its rate-limit accounting included), not the limit.
        proc, url = start_subprocess(Path(work) / "paper", tick_ms=250, history_days=2,
                                     extra_args=["--orders-per-10s", "1000000"])
        streams: UserStreams | None = None
        try:
            keys = [request_keys(url) for _ in range(args.accounts)]
            streams = UserStreams(url, keys)
            streams.start()
            clients = []
            for k in keys:
                client = Client(k.api_key, k.secret_key, ping=False)
                client.API_URL = url + "/api"
                client.session.trust_env = False
                clients.append(client)
            errors: list[BaseException] = []
            place(clients, WARMUP, 10_000_000, errors)  # warm-up: connections, caches
            expected = EVENTS_PER_ORDER * WARMUP
            _wait_events(streams, expected)
            per_thread = args.orders // args.threads
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            threads = [threading.Thread(target=place, args=(
                clients[i::args.threads] or clients, per_thread, i * per_thread, errors))
                for i in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            expected += EVENTS_PER_ORDER * per_thread * args.threads
            _wait_events(streams, expected)
            cpu1, t1 = cpu_seconds(proc.pid), time.perf_counter()
            if errors:
                raise RuntimeError("an order failed") from errors[0]
            orders = per_thread * args.threads
            user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
            return {"orders": orders, "seconds": t1 - t0,
                    "cpu_ms_per_order": (user + system) * 1000 / orders,
                    "user_ms_per_order": user * 1000 / orders,
                    "orders_per_s": orders / (t1 - t0)}
        finally:
            if streams is not None:
                streams.stop()
            proc.terminate()
            proc.wait(10)


def _wait_events(streams: UserStreams, expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while streams.events < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {streams.events} of {expected} user-data events arrived")
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1, help="repeat, then print the medians")
    args = parser.parse_args()
    results = []
    for i in range(args.runs):
        r = run(args)
        results.append(r)
        print(f"run {i + 1}: {r['orders']} orders in {r['seconds']:.1f}s, "
              f"{r['orders_per_s']:.0f} orders/s, "
              f"exchange CPU {r['cpu_ms_per_order']:.3f} ms/order "
              f"(user {r['user_ms_per_order']:.3f})", flush=True)
    if args.runs > 1:
        print(f"median: {statistics.median(r['orders_per_s'] for r in results):.0f} orders/s, "
              f"exchange CPU {statistics.median(r['cpu_ms_per_order'] for r in results):.3f} "
              f"ms/order (user {statistics.median(r['user_ms_per_order'] for r in results):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
