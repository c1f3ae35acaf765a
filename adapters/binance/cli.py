"""Execution sub-commands: `tradeledger worker` and `tradeledger reconcile`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser(
        "worker", help="run the execution worker (orders to the exchange, reports back)")
    worker.add_argument("--instance", type=int, default=None,
                        help="this replica's index (default: TRADELEDGER_INSTANCE, or claim "
                        "a free slot)")
    worker.add_argument("--instances", type=int, default=None,
                        help="how many replicas share the work (default: "
                        "TRADELEDGER_INSTANCES)")
    worker.add_argument("--lanes", type=int, default=16,  # adapters.worker.DEFAULT_LANES
                        help="orders driven in parallel (threads; default 16)")
    worker.set_defaults(func=cmd_worker)

    reconcile = subparsers.add_parser(
        "reconcile", help="ask the exchange about every open order once and record the truth")
    reconcile.set_defaults(func=cmd_reconcile)


def cmd_worker(args: argparse.Namespace) -> int:
    from adapters.runtime import resolve_instance, start_process
    from adapters.settings import get_settings
    from adapters.worker import run_worker

    settings = get_settings()
    stop = start_process(settings)
    if not settings.kafka_bootstrap_servers:
        print("tradeledger worker: no broker configured. Set TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS "
              "to a Kafka (or Tansu) broker, or run everything with `tradeledger up`, which "
              "starts an embedded one.", file=sys.stderr)
        return 2
    instance, instances, slot = resolve_instance("worker", args.instance, args.instances,
                                                 settings)
    try:
        run_worker(settings, instance, instances, stop, lanes=args.lanes)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if slot is not None:
            slot.close()
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from adapters.binance.gateway import BinanceGateway
    from adapters.runtime import configure_logging, open_runtime
    from adapters.settings import get_settings
    from adapters.worker import ExecutionWorker

    settings = get_settings()
    configure_logging(settings)
    gateway = BinanceGateway.from_settings(settings)
    with open_runtime(settings) as rt:
        worker = ExecutionWorker(rt, gateway, follow_streams=False, sweep_interval=0)
        worker.lanes.start()
        try:
            results = worker.reconcile_all(wait=True)
        finally:
            worker.stop()
            gateway.close()
    fixed = [r for r in results if r.changed]
    for r in sorted(results, key=lambda r: str(r.order_id)):
        mark = "fixed" if r.changed else "ok   "
        print(f"{mark} {r.order_id}  {r.before.value:<17} -> {r.after.value:<17} {r.note}")
    print(f"{len(results)} open orders checked, {len(fixed)} brought in line with the exchange")
    return 0
