"""`tradeledger place-order`: place an order from the shell and print its events."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from adapters.cli.audit import print_events
from adapters.platform.runtime import command_settings, open_runtime
from commands.messages import PlaceOrder, RegisterAccount
from domain.account import account_id_for
from domain.errors import DomainError, EmailAlreadyRegistered


def register(subparsers: Any) -> None:
    place = subparsers.add_parser("place-order", help="place an order and print its events")
    place.add_argument("--email", default="demo@tradeledger.local")
    place.add_argument("--password", default=None,
                       help="password for a new account (default: a random one)")
    place.add_argument("--symbol", default="BTCUSDT")
    place.add_argument("--side", default="BUY", choices=["BUY", "SELL", "buy", "sell"])
    place.add_argument("--type", default="LIMIT", choices=["MARKET", "LIMIT", "market", "limit"])
    amount = place.add_mutually_exclusive_group()
    amount.add_argument("--quantity", default=None,
                        help="base-asset quantity (default 0.001)")
    amount.add_argument("--quote-order-qty", default=None, metavar="AMOUNT",
                        help="MARKET only: spend (BUY) or receive (SELL) this much of the "
                             "quote asset, e.g. 100 for 100 USDT")
    place.add_argument("--price", default="90000.00")
    place.add_argument("--client-order-id", default=None)
    place.set_defaults(func=cmd_place_order)


def cmd_place_order(args: argparse.Namespace) -> int:
    settings = command_settings()
    with open_runtime(settings) as rt:
        app = rt.app
        try:
            account_id = app.handle(RegisterAccount(
                email=args.email, password=args.password or uuid.uuid4().hex))
            print(f"registered {args.email} as account {account_id}")
        except EmailAlreadyRegistered:
            account_id = account_id_for(args.email)
        spend = args.quote_order_qty
        if spend is not None and args.type.upper() != "MARKET":
            print("order refused: --quote-order-qty is for MARKET orders", file=sys.stderr)
            return 2
        try:
            order_id = app.handle(PlaceOrder(
                account_id=account_id,
                client_order_id=args.client_order_id or f"cli-{uuid.uuid4().hex[:12]}",
                symbol=args.symbol, side=args.side, order_type=args.type,
                quantity=None if spend is not None else (args.quantity or "0.001"),
                quote_order_qty=spend,
                price=args.price if args.type.upper() == "LIMIT" else None,
            ))
        except DomainError as exc:
            print(f"order refused: {exc.message}", file=sys.stderr)
            return 1
        order = app.get_order(order_id)
        print(f"order {order_id} is {order.status.value}; its events:")
        print_events(app, order_id)
    return 0
