"""Event-bus sub-commands: `tradeledger relay` and `tradeledger dead-letters list|retry`."""

from __future__ import annotations

import argparse
import json
from typing import Any

import psycopg


def register(subparsers: Any) -> None:
    relay = subparsers.add_parser(
        "relay", help="publish the event store to Kafka (starts an embedded broker when "
        "TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS is unset)")
    relay.set_defaults(func=cmd_relay)

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


def cmd_relay(args: argparse.Namespace) -> int:
    from adapters.kafka.relay import run_relay_process

    return run_relay_process()


def _connect_and(action: Any) -> Any:
    from adapters.runtime import configure_logging, database_url
    from adapters.settings import get_settings

    settings = get_settings()
    configure_logging(settings)
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
