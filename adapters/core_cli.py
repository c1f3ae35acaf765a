"""Write-side sub-commands: place an order from the shell, show an order's event history,
rotate the master key."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from adapters.runtime import configure_logging, open_runtime
from adapters.settings import get_settings
from commands.messages import PlaceOrder, ReencryptExchangeKeys, RegisterAccount
from domain.account import account_id_for
from domain.envelope import EventEnvelope
from domain.errors import DomainError, EmailAlreadyRegistered


def register(subparsers: Any) -> None:
    place = subparsers.add_parser("place-order", help="place an order and print its events")
    place.add_argument("--email", default="demo@tradeledger.local")
    place.add_argument("--password", default=None,
                       help="password for a new account (default: a random one)")
    place.add_argument("--symbol", default="BTCUSDT")
    place.add_argument("--side", default="BUY", choices=["BUY", "SELL", "buy", "sell"])
    place.add_argument("--type", default="LIMIT", choices=["MARKET", "LIMIT", "market", "limit"])
    place.add_argument("--quantity", default="0.001")
    place.add_argument("--price", default="90000.00")
    place.add_argument("--client-order-id", default=None)
    place.set_defaults(func=cmd_place_order)

    history = subparsers.add_parser("history", help="print an order's (or account's) events")
    history.add_argument("aggregate_id", type=uuid.UUID)
    history.set_defaults(func=cmd_history)

    keys = subparsers.add_parser("keys", help="manage the master keys of exchange secrets")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    rotate = keys_sub.add_parser(
        "rotate", help="re-encrypt every stored exchange secret under the current master key "
        "(put the new key first in TRADELEDGER_MASTER_KEYS, keep the old one after it)")
    rotate.set_defaults(func=cmd_keys_rotate)


def _print_events(app: Any, aggregate_id: uuid.UUID) -> int:
    count = 0
    for event in app.events.get(aggregate_id):
        envelope = EventEnvelope.from_domain_event(event, notification_id=0)
        payload = {k: v for k, v in envelope.payload.items() if k != "password_hash"}
        print(f"  v{envelope.version:<3} {envelope.timestamp}  {envelope.event_type:<22} "
              f"{json.dumps(payload)}")
        count += 1
    return count


def cmd_place_order(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings)
    with open_runtime(settings) as rt:
        app = rt.app
        try:
            account_id = app.handle(RegisterAccount(
                email=args.email, password=args.password or uuid.uuid4().hex))
            print(f"registered {args.email} as account {account_id}")
        except EmailAlreadyRegistered:
            account_id = account_id_for(args.email)
        try:
            order_id = app.handle(PlaceOrder(
                account_id=account_id,
                client_order_id=args.client_order_id or f"cli-{uuid.uuid4().hex[:12]}",
                symbol=args.symbol, side=args.side, order_type=args.type,
                quantity=args.quantity,
                price=args.price if args.type.upper() == "LIMIT" else None,
            ))
        except DomainError as exc:
            print(f"order refused: {exc.message}", file=sys.stderr)
            return 1
        order = app.get_order(order_id)
        print(f"order {order_id} is {order.status.value}; its events:")
        _print_events(app, order_id)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings)
    with open_runtime(settings) as rt:
        if _print_events(rt.app, args.aggregate_id) == 0:
            print(f"no events for {args.aggregate_id}", file=sys.stderr)
            return 1
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings)
    with open_runtime(settings) as rt:
        app = rt.app
        accounts = {
            n.originator_id
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
