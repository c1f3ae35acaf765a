"""Benchmark: CPU per order of the gateway's two order transports, REST and the WS-API.

    PYTHONPATH=. .venv/bin/python scripts/bench_order_transport.py [--orders 1000]
                                                                  [--threads 4] [--rounds 3]

Starts the paper exchange as a subprocess (limits raised out of the way) on a throw-away
state dir, issues --threads key pairs, and then, in alternating rounds, places --orders
MARKET orders (ETHUSDT 0.01, newOrderRespType FULL) through `BinanceGateway.submit_order`
from --threads threads (one account each), once with order_transport="rest" and once with
"ws". It prints, per round and transport, the CPU this process spent per order (the
gateway's side: what the worker pays) and the exchange's (from /proc/<pid>/stat), and the
ratio ws / rest of the same round. CPU per order is robust to other load on the machine;
orders/s is printed for information only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.binance.gateway import BinanceGateway  # noqa: E402
from adapters.binance.ratelimit import Limits  # noqa: E402
from adapters.paper_exchange.runner import request_keys, start_subprocess  # noqa: E402
from commands.ports import ExchangeCredentials, ExchangeOrderRequest  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 20


def exchange_cpu(pid: int) -> float:
    """Return a process's user + system CPU seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def place(gateway: BinanceGateway, accounts: list[ExchangeCredentials], orders: int) -> None:
    """Place `orders` MARKET orders, the accounts' threads sharing them out."""
    per_thread = orders // len(accounts)

    def run(creds: ExchangeCredentials) -> None:
        for _ in range(per_thread):
            gateway.submit_order(creds, ExchangeOrderRequest(
                "ETHUSDT", "BUY", "MARKET", Decimal("0.01"), None, None,
                "tl" + uuid.uuid4().hex))

    threads = [threading.Thread(target=run, args=(c,)) for c in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    state = tempfile.mkdtemp(prefix="bench-transport-")
    proc, url = start_subprocess(state, extra_args=[
        "--orders-per-10s", "1000000", "--weight-per-minute", "100000000"])
    try:
        accounts = [ExchangeCredentials(k.api_key, k.secret_key, "paper")
                    for k in (request_keys(url, {"USDT": "100000000"})
                              for _ in range(args.threads))]
        ws_url = url.replace("http", "ws", 1) + "/ws-api/v3"
        gateways = {t: BinanceGateway("paper", url + "/api", ws_url, order_transport=t)
                    for t in ("rest", "ws")}
        for gateway in gateways.values():
            gateway.budget.set_limits(Limits(100_000_000, 1_000_000, 1_000_000_000))
            place(gateway, accounts, WARMUP * len(accounts))  # connections, caches
        n = args.orders // args.threads * args.threads
        print(f"{n} MARKET orders per round from {args.threads} threads, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'round':<6}{'transport':<10}{'gateway ms/order':>18}{'exchange ms/order':>19}"
              f"{'orders/s':>10}")
        for round_ in range(1, args.rounds + 1):
            figures: dict[str, float] = {}
            for transport, gateway in gateways.items():
                cpu0, ex0, t0 = time.process_time(), exchange_cpu(proc.pid), time.perf_counter()
                place(gateway, accounts, n)
                cpu = (time.process_time() - cpu0) * 1000 / n
                ex = (exchange_cpu(proc.pid) - ex0) * 1000 / n
                rate = n / (time.perf_counter() - t0)
                figures[transport] = cpu
                print(f"{round_:<6}{transport:<10}{cpu:>18.3f}{ex:>19.3f}{rate:>10.0f}")
            print(f"{'':<6}{'ws/rest':<10}{figures['ws'] / figures['rest']:>18.2f}")
        ws_api = gateways["ws"].ws_api()
        assert ws_api is not None and ws_api.requests_sent >= n  # it really used the WS-API
        for gateway in gateways.values():
            gateway.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
