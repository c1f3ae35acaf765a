"""Operator sub-commands: `dead-letters list|retry`, `reconcile`, `keys rotate`,
`paper-exchange-keys`."""

from __future__ import annotations

import argparse
import json
from typing import Any
from uuid import UUID

import psycopg

from adapters.platform.runtime import command_settings, database_url, open_runtime
from commands.messages import ReencryptExchangeKeys


def register(subparsers: Any) -> None:
    dead = subparsers.add_parser("dead-letters", help="list or retry events consumers gave up on")
    actions = dead.add_subparsers(dest="dead_letters_command", metavar="ACTION")
    listing = actions.add_parser("list", help="list open dead letters")
    listing.add_argument("--consumer", default=None, help="only this consumer's")
    listing.add_argument("--all", action="store_true", help="include resolved ones")
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    listing.set_defaults(func=cmd_dead_letters_list)
    retry = actions.add_parser(
        "retry", help="queue open dead letters for retry; their running consumer applies them")
    retry.add_argument("--consumer", default=None, help="only this consumer's")
    retry.add_argument("--id", dest="ids", type=int, action="append", default=None,
                       help="only this dead letter (repeatable)")
    retry.set_defaults(func=cmd_dead_letters_retry)
    dead.set_defaults(func=lambda args: (dead.print_help(), 2)[1])

    reconcile = subparsers.add_parser(
        "reconcile", help="ask the exchange about every open order once and record the truth")
    reconcile.set_defaults(func=cmd_reconcile)

    keys = subparsers.add_parser("keys", help="manage the master keys of exchange secrets")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    rotate = keys_sub.add_parser(
        "rotate", help="re-encrypt every stored exchange secret under the current master key "
        "(put the new key first in TRADELEDGER_MASTER_KEYS, keep the old one after it)")
    rotate.set_defaults(func=cmd_keys_rotate)

    pe_keys = subparsers.add_parser(
        "paper-exchange-keys", help="issue a funded API key pair from a running paper exchange")
    from adapters.paper_exchange.runner import add_keys_options, cmd_keys

    add_keys_options(pe_keys)
    pe_keys.set_defaults(func=cmd_keys)


def _connect_and(action: Any) -> Any:
    settings = command_settings()
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        return action(conn, settings.database_schema)


def cmd_dead_letters_list(args: argparse.Namespace) -> int:
    from adapters.kafka.dead_letters import list_dead_letters

    letters = _connect_and(lambda conn, schema: list_dead_letters(
        conn, schema, consumer=args.consumer, include_resolved=args.all))
    for letter in letters:
        if args.json:
            print(json.dumps({**letter.__dict__, "created_at": letter.created_at.isoformat(),
                              "resolved_at": letter.resolved_at and letter.resolved_at.isoformat(),
                              "envelope": json.loads(letter.envelope)
                              if letter.envelope.startswith("{") else letter.envelope}))
            continue
        state = ("resolved" if letter.resolved_at else
                 "retry queued" if letter.retry_requested else "open")
        print(f"#{letter.id} {letter.consumer} {letter.topic}[{letter.partition}]@"
              f"{letter.kafka_offset} notification {letter.notification_id} "
              f"attempts {letter.attempts} {state} {letter.created_at:%Y-%m-%d %H:%M:%S}\n"
              f"    error: {letter.error}")
    if not args.json:
        print(f"{len(letters)} dead letter(s)")
    return 0


def cmd_dead_letters_retry(args: argparse.Namespace) -> int:
    from adapters.kafka.dead_letters import request_retry

    count = _connect_and(lambda conn, schema: request_retry(
        conn, schema, consumer=args.consumer, ids=args.ids))
    print(f"{count} dead letter(s) queued for retry; the owning consumer applies them "
          "within a second while it runs")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from adapters.binance.gateway import BinanceGateway
    from adapters.processes.worker import ExecutionWorker

    settings = command_settings()
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


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    settings = command_settings()
    with open_runtime(settings) as rt:
        app = rt.app
        accounts = {
            UUID(str(n.originator_id))
            for n in app.recorder.select_notifications(
                start=1, limit=10**9, topics=["domain.account:Account.AccountRegistered"])
        }
        changed = 0
        for index, account_id in enumerate(sorted(accounts, key=str), 1):
            if app.handle(ReencryptExchangeKeys(account_id=account_id)):
                changed += 1
            print(f"\rchecked {index}/{len(accounts)} accounts, re-encrypted {changed}",
                  end="", flush=True)
        print(f"\nall exchange secrets are now under master key {rt.cipher.current_key_id!r}")
    return 0
