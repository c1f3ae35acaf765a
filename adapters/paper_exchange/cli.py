"""Paper-exchange sub-commands of `tradeledger`: `paper-exchange` and `paper-exchange-keys`."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the paper-exchange sub-commands to the main `tradeledger` parser."""
    serve = subparsers.add_parser(
        "paper-exchange", help="serve the Binance-compatible paper exchange (REST + websockets)")
    add_serve_options(serve)
    serve.set_defaults(func=cmd_serve)
    keys = subparsers.add_parser(
        "paper-exchange-keys", help="issue a funded API key pair from a running paper exchange")
    add_keys_options(keys)
    keys.set_defaults(func=cmd_keys)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the serving command."""
    from adapters.paper_exchange.runner import DEFAULT_PORT

    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--state-dir", default=".tradeledger/paper-exchange")
    parser.add_argument("--seed", type=int, default=7, help="seed of the price history")
    parser.add_argument("--tick-ms", type=int, default=250, help="price tick period")
    parser.add_argument("--history-days", type=int, default=30,
                        help="days of 1m history generated for a new state dir")


def add_keys_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the key-issuing command."""
    from adapters.paper_exchange.runner import DEFAULT_PORT

    parser.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                        help="starting balance (repeatable); default: the standard set")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from adapters.paper_exchange.runner import run_paper_exchange

    run_paper_exchange(args.host, args.port, args.state_dir, args.seed, args.tick_ms,
                       args.history_days)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Print a new key pair as JSON."""
    import json
    from decimal import Decimal

    from adapters.paper_exchange.runner import request_keys

    balances: dict[str, Decimal | str] | None = (
        {a.upper(): Decimal(v) for a, v in (b.split("=", 1) for b in args.balance)}
        if args.balance else None)
    keys = request_keys(args.url, balances)
    print(json.dumps({"apiKey": keys.api_key, "secretKey": keys.secret_key}))
    return 0
