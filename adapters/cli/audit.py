"""Audit and replay sub-commands: `replay [--projection NAME|all] [--verify]`,
`audit verify`, and `history ID` (an aggregate's events)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import psycopg

from adapters.platform.runtime import command_settings, database_url, open_runtime
from adapters.postgres.audit import verify_audit
from adapters.postgres.readmodels import PROJECTIONS, create_read_models
from adapters.postgres.replay import PAGE_SIZE, replay, resolve_projections
from commands.application import TradingApplication
from domain.envelope import EventEnvelope


def register(subparsers: Any) -> None:
    rep = subparsers.add_parser("replay", help="rebuild read models from the event store")
    rep.add_argument("--projection", default="all",
                     choices=["all", *PROJECTIONS], help="which projection (default: all)")
    rep.add_argument("--verify", action="store_true",
                     help="rebuild into shadow tables and report rows that differ from live")
    rep.add_argument("--force", action="store_true",
                     help="rebuild the audit chain even when it does not verify")
    rep.add_argument("--page-size", type=int, default=PAGE_SIZE)
    rep.set_defaults(func=cmd_replay)

    audit = subparsers.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    ver = audit_sub.add_parser("verify", help="recompute the hash chain from the event store")
    ver.set_defaults(func=cmd_audit_verify)

    history = subparsers.add_parser("history", help="print an order's (or account's) events")
    history.add_argument("aggregate_id", type=uuid.UUID)
    history.set_defaults(func=cmd_history)


def cmd_replay(args: argparse.Namespace) -> int:
    settings = command_settings()
    with open_runtime(settings) as rt:
        result = replay(rt.app, rt.database_url, settings.database_schema,
                        resolve_projections(args.projection), verify=args.verify,
                        progress=sys.stderr, page_size=args.page_size, force=args.force)
    if result.refused:
        print(f"replay refused: {result.refused}", file=sys.stderr)
        return 1
    summary = (f"{result.events:,} events up to notification {result.last_notification_id} in "
               f"{result.seconds:.1f}s ({result.rate:,.0f} events/s); tables: "
               f"{', '.join(result.tables)}")
    if not args.verify:
        print(f"replayed {summary}")
        return 0
    for diff in result.differences:
        print(f"DIFF {diff['table']} {diff['key']}\n  live:    {diff['live']}\n"
              f"  rebuilt: {diff['rebuilt']}")
    if result.differences:
        print(f"verify: {len(result.differences)} rows differ ({summary})")
        return 1
    print(f"verify: live tables match the event store ({summary})")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = command_settings()
    with database_url(settings) as url, psycopg.connect(url) as conn:
        create_read_models(conn, settings.database_schema)
        conn.commit()
        result = verify_audit(conn, settings.database_schema)
    print(result.describe())
    return 0 if result.ok else 1


def print_events(app: TradingApplication, aggregate_id: uuid.UUID) -> int:
    """Print an aggregate's events, one line each (never a password hash); return how many."""
    count = 0
    for event in app.events.get(aggregate_id):
        envelope = EventEnvelope.from_domain_event(event, notification_id=0)
        payload = {k: v for k, v in envelope.payload.items() if k != "password_hash"}
        print(f"  v{envelope.version:<3} {envelope.timestamp}  {envelope.event_type:<22} "
              f"{json.dumps(payload)}")
        count += 1
    return count


def cmd_history(args: argparse.Namespace) -> int:
    settings = command_settings()
    with open_runtime(settings) as rt:
        if print_events(rt.app, args.aggregate_id) == 0:
            print(f"no events for {args.aggregate_id}", file=sys.stderr)
            return 1
    return 0
