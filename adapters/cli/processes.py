"""Sub-commands that run a process: `up` (everything, supervised), `api`, `relay`, `worker`,
`projector` and `paper-exchange` (one each, as docker-compose runs them)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up", help="run everything on this machine (embedded Postgres, broker, paper exchange)")
    up.add_argument("--data-dir", type=Path, default=None, help="default: ~/.tradeledger")
    up.add_argument("--api-port", type=int, default=None, help="default 8000; 0 = any free port")
    up.add_argument("--dashboard-port", type=int, default=None,
                    help="default 8050; 0 = any free port")
    up.add_argument("--no-dashboard", action="store_true")
    up.set_defaults(func=cmd_up)

    api = subparsers.add_parser("api", help="run the HTTP API (commands, queries, SSE)")
    api.add_argument("--host", default=None, help="bind address (default: settings.api_host)")
    api.add_argument("--port", type=int, default=None,
                     help="port (default: settings.api_port)")
    api.add_argument("--exchange-url", default=None,
                     help="Binance-compatible base URL for market data (default: "
                     "settings.paper_exchange_url on the paper exchange; python-binance's "
                     "own hosts otherwise)")
    api.add_argument("--no-market-data", action="store_true",
                     help="serve no candles or ticker (market routes answer 503)")
    api.add_argument("--workers", type=int, default=1,
                     help="worker processes (each builds its own runtime; default 1)")
    api.add_argument("--cors-origin", action="append", default=[],
                     help="allow this browser origin (repeatable)")
    api.set_defaults(func=cmd_api)

    relay = subparsers.add_parser(
        "relay", help="publish the event store to Kafka (starts an embedded broker when "
        "TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS is unset)")
    relay.set_defaults(func=cmd_relay)

    proj = subparsers.add_parser("projector", help="run the projector (read models, audit chain)")
    _add_instance_options(proj, "share the partitions")
    proj.add_argument("--batch-size", type=int, default=500)
    proj.add_argument("--no-audit", action="store_true", help="do not extend the audit chain")
    proj.set_defaults(func=cmd_projector)

    worker = subparsers.add_parser(
        "worker", help="run the execution worker (orders to the exchange, reports back)")
    _add_instance_options(worker, "share the work")
    worker.add_argument("--lanes", type=int, default=16,  # processes.worker.DEFAULT_LANES
                        help="orders driven in parallel (threads; default 16)")
    worker.set_defaults(func=cmd_worker)

    serve = subparsers.add_parser(
        "paper-exchange", help="serve the Binance-compatible paper exchange (REST + websockets)")
    from adapters.paper_exchange.runner import add_serve_options, cmd_serve

    add_serve_options(serve)
    serve.set_defaults(func=cmd_serve)


def _add_instance_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--instance", type=int, default=None,
                        help="this replica's index (default: TRADELEDGER_INSTANCE, or claim a "
                        "free slot)")
    parser.add_argument("--instances", type=int, default=None,
                        help=f"how many replicas {what} (default: TRADELEDGER_INSTANCES)")


def cmd_up(args: argparse.Namespace) -> int:
    from adapters.platform.net import free_port, port_in_use
    from adapters.platform.settings import get_settings
    from adapters.processes.supervisor import Supervisor

    if args.data_dir is not None:
        os.environ["TRADELEDGER_DATA_DIR"] = str(args.data_dir.expanduser().resolve())
    get_settings.cache_clear()
    settings = get_settings()
    api_port = settings.api_port if args.api_port is None else args.api_port
    dashboard_port = settings.dashboard_port if args.dashboard_port is None else args.dashboard_port
    api_port = api_port or free_port()
    dashboard_port = dashboard_port or free_port()
    for name, port in (("API", api_port), ("dashboard", dashboard_port)):
        if port_in_use(port):
            print(f"tradeledger: port {port} for the {name} is already in use; "
                  f"pass --{name.lower()}-port N (or 0 for any free port)", file=sys.stderr)
            return 2
    from adapters.platform.bootstrap import resolve_secrets
    from adapters.platform.crypto import check_jwt_secret, parse_key_ring

    # Refuse a placeholder or weak secret before anything starts, naming the setting.
    master_keys, jwt_secret = resolve_secrets(settings)
    check_jwt_secret(jwt_secret)
    parse_key_ring(master_keys)
    supervisor = Supervisor(settings=settings, api_port=api_port, dashboard_port=dashboard_port,
                            with_dashboard=not args.no_dashboard)

    def on_signal(signum: int, _frame: Any) -> None:
        supervisor.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return supervisor.run()


def cmd_api(args: argparse.Namespace) -> int:
    from adapters.platform.settings import get_settings
    from adapters.processes.api import run_api

    settings = get_settings()
    return run_api(settings, args.host or settings.api_host,
                   args.port if args.port is not None else settings.api_port,
                   workers=args.workers, exchange_url=args.exchange_url,
                   market_data=not args.no_market_data, cors_origins=args.cors_origin)


def cmd_relay(args: argparse.Namespace) -> int:
    from adapters.processes.relay import run_relay

    return run_relay()


def cmd_projector(args: argparse.Namespace) -> int:
    from adapters.processes.projector import run_projector

    return run_projector(args.instance, args.instances, args.batch_size, audit=not args.no_audit)


def cmd_worker(args: argparse.Namespace) -> int:
    from adapters.processes.worker import run_worker

    return run_worker(args.instance, args.instances, lanes=args.lanes)
