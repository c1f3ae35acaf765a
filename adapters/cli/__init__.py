"""The `tradeledger` command. Each area registers its own sub-commands (see COMMAND_MODULES)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module exposes register(subparsers); a sub-command sets `func(args) -> int`.
COMMAND_MODULES = (
    "adapters.cli.orders",
    "adapters.cli.config_docs",
    "adapters.cli.processes",
    "adapters.cli.operations",
    "adapters.cli.audit",
    "adapters.cli.bench",
    "adapters.cli.demo",
    "dashboard.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeledger",
        description="TradeLedger: an event-sourced crypto trading desk. "
        "Run `tradeledger up` to start everything on the embedded default.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from adapters.platform.crypto import ConfigurationError

    try:
        return int(func(args) or 0)
    except ConfigurationError as exc:
        print(f"tradeledger: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
