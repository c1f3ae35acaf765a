"""`tradeledger demo`: a demo trader with a few orders, so a newcomer sees a live desk at once."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx

DEMO_EMAIL = "demo@tradeledger.local"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - a published demo account on a local paper desk


def login_or_register(client: httpx.Client, email: str, password: str) -> str:
    response = client.post("/auth/login", json={"email": email, "password": password})
    if response.status_code == 200:
        return str(response.json()["token"])
    response = client.post("/auth/register", json={"email": email, "password": password})
    if response.status_code != 201:
        raise SystemExit(f"could not register {email}: {response.text}")
    return str(response.json()["token"])


def run_demo(api_url: str, email: str, password: str) -> int:
    with httpx.Client(base_url=api_url, timeout=15) as client:
        try:
            client.get("/health").raise_for_status()
        except httpx.HTTPError:
            print(f"no TradeLedger API at {api_url}; start it with `tradeledger up`",
                  file=sys.stderr)
            return 1
        headers = {"Authorization": f"Bearer {login_or_register(client, email, password)}"}
        time.sleep(1.0)  # the worker provisions paper-exchange keys for a new account
        ticker = client.get("/api/market/BTCUSDT/ticker", headers=headers)
        last = float(ticker.json().get("price", 0)) if ticker.status_code == 200 else 0.0
        orders: list[dict[str, Any]] = [
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
            {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.5"},
            {"symbol": "SOLUSDT", "side": "BUY", "type": "MARKET", "quantity": "5"},
            {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.2"},
        ]
        if last:
            orders.append({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                           "quantity": "0.005", "price": f"{last * 0.98:.2f}",
                           "timeInForce": "GTC"})
        for body in orders:
            response = client.post("/api/trading/orders", json=body, headers=headers)
            outcome = response.json().get("orderId") if response.status_code == 202 else (
                response.json().get("error", {}).get("message"))
            print(f"  {body['side']:<4} {body['type']:<6} {body['quantity']:>6} "
                  f"{body['symbol']:<8} -> {response.status_code} {outcome}")
        print(f"\ndemo trader ready: log in as {email} / {password}")
    return 0


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="create a demo trader with a few orders")
    demo.add_argument("--api-url", default=None, help="default: TRADELEDGER_API_URL or :8000")
    demo.add_argument("--email", default=DEMO_EMAIL)
    demo.add_argument("--password", default=DEMO_PASSWORD)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from adapters.platform.settings import get_settings

    settings = get_settings()
    api_url = args.api_url or settings.api_url or f"http://127.0.0.1:{settings.api_port}"
    return run_demo(api_url, args.email, args.password)
