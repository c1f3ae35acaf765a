"""Ways to run the paper exchange: blocking, in a background thread, as a subprocess, and
from a command line (`python -m adapters.paper_exchange`; `tradeledger paper-exchange`
registers the same options)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from adapters.paper_exchange.limits import LimitSettings
from adapters.paper_exchange.server import ADMIN_TOKEN_HEADER, PaperExchange

DEFAULT_PORT = 9900
ENV = "TRADELEDGER_PAPER_"  # prefix of the settings read from the environment
READY_RE = re.compile(r"paper exchange listening on (http://\S+)")


@dataclass(frozen=True)
class ApiKeys:
    """An API key pair issued by the paper exchange."""

    api_key: str
    secret_key: str


def run_paper_exchange(host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                       state_dir: str | Path = ".tradeledger/paper-exchange", seed: int = 7,
                       tick_ms: int = 250, history_days: int = 30, *,
                       limits: LimitSettings | None = None,
                       commission_rate: Decimal = Decimal(0),
                       admin_token: str | None = None) -> None:
    """Serve the paper exchange until interrupted (SIGINT/SIGTERM); blocks."""
    async def serve() -> None:
        exchange = PaperExchange(Path(state_dir), seed, tick_ms, history_days,
                                 limits=limits, commission_rate=commission_rate,
                                 admin_token=admin_token)
        await exchange.start(host, port)
        print(f"paper exchange listening on http://{host}:{exchange.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await exchange.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


class BackgroundPaperExchange:
    """The paper exchange on its own event loop in a daemon thread (for tests and tools)."""

    def __init__(self, state_dir: str | Path, host: str = "127.0.0.1", port: int = 0,
                 seed: int = 7, tick_ms: int = 250, history_days: int = 30, *,
                 limits: LimitSettings | None = None,
                 commission_rate: Decimal = Decimal(0),
                 admin_token: str | None = None) -> None:
        self.exchange = PaperExchange(Path(state_dir), seed, tick_ms, history_days,
                                      limits=limits, commission_rate=commission_rate,
                                      admin_token=admin_token)
        self.host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the HTTP base URL (no trailing slash)."""
        return f"http://{self.host}:{self.exchange.port}"

    @property
    def ws_url(self) -> str:
        """Return the websocket base URL (no trailing slash)."""
        return f"ws://{self.host}:{self.exchange.port}"

    def start(self, timeout: float = 30.0) -> BackgroundPaperExchange:
        """Start serving and wait until the port is open."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.exchange.start(self.host, self._port))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.exchange.stop())
            loop.close()

        self._thread = threading.Thread(target=main, name="paper-exchange", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("paper exchange did not start")
        if failure:
            raise RuntimeError("paper exchange failed to start") from failure[0]
        return self

    def stop(self) -> None:
        """Stop serving, persist the state and join the thread."""
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> BackgroundPaperExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_subprocess(state_dir: str | Path, port: int = 0, seed: int = 7, tick_ms: int = 250,
                     history_days: int = 30, timeout: float = 30.0,
                     extra_args: Sequence[str] = ()) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m adapters.paper_exchange` and return the process and its base URL.

    `extra_args` are more serve options, e.g. `["--orders-per-10s", "1000000"]`.
    """
    cmd = [sys.executable, "-m", "adapters.paper_exchange", "--port", str(port),
           "--state-dir", str(state_dir), "--seed", str(seed), "--tick-ms", str(tick_ms),
           "--history-days", str(history_days), *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()  # type: ignore[union-attr]
                                                          ), daemon=True)
    reader.start()
    reader.join(timeout)
    match = READY_RE.search(result[0]) if result else None
    if match is None:
        proc.kill()
        raise RuntimeError("paper exchange subprocess did not start")
    return proc, match.group(1)


def request_keys(url: str, balances: dict[str, Decimal | str] | None = None) -> ApiKeys:
    """Ask a running paper exchange (at base `url`) for a funded API key pair."""
    body: dict[str, Any] = {}
    if balances is not None:
        body["balances"] = {a: str(v) for a, v in balances.items()}
    data = admin_post(url, "/admin/keys", body)
    return ApiKeys(data["apiKey"], data["secretKey"])


def admin_headers() -> dict[str, str]:
    """Return the headers of an admin call: the admin token when the environment has one."""
    token = os.environ.get(ENV + "ADMIN_TOKEN")
    return {ADMIN_TOKEN_HEADER: token} if token else {}


def admin_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body to an admin endpoint and return the JSON answer."""
    req = urllib.request.Request(  # noqa: S310 - our own loopback server
        url.rstrip("/") + path, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **admin_headers()}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        result: dict[str, Any] = json.loads(resp.read())
    return result


def admin_get(url: str, path: str) -> Any:
    """GET an admin endpoint (path with its query) and return the JSON answer."""
    req = urllib.request.Request(  # noqa: S310 - our own loopback server
        url.rstrip("/") + path, headers=admin_headers())
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the serving command."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--state-dir", default=".tradeledger/paper-exchange")
    parser.add_argument("--seed", type=int, default=7, help="seed of the price history")
    parser.add_argument("--tick-ms", type=int, default=250, help="price tick period")
    parser.add_argument("--history-days", type=int, default=30,
                        help="days of 1m history generated for a new state dir")
    # Defaults may come from the environment, so a process that starts the exchange for us
    # (`tradeledger up`, benches) can be tuned without new plumbing.
    env = os.environ.get
    parser.add_argument("--commission", default=env(ENV + "COMMISSION", "0"),
                        help="commission rate per fill, e.g. 0.001 (default 0, as the Testnet)"
                             f"; env {ENV}COMMISSION")
    for flag, default, text in (
            ("weight-per-minute", 6000, "REQUEST_WEIGHT per minute per IP (Binance: 6000)"),
            ("orders-per-10s", 100, "ORDERS per 10 seconds per key (Binance: 100)"),
            ("orders-per-day", 200_000, "ORDERS per day per key (Binance: 200000)"),
            ("ban-seconds", 120, "first IP ban for ignoring a 429 (doubles per ban, max 3 "
                                 "days)")):
        name = ENV + flag.upper().replace("-", "_")
        parser.add_argument("--" + flag, type=int, default=env(name, str(default)),
                            help=f"{text}; env {name}")
    parser.add_argument("--admin-token", default=None,
                        help="token the admin controls require (header X-TradeLedger-Admin-"
                             f"Token); default: ${ENV}ADMIN_TOKEN. Without one they "
                             "answer loopback callers only")


def add_keys_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the key-issuing command."""
    parser.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                        help="starting balance (repeatable); default: the standard set")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    try:
        commission = Decimal(args.commission)
    except InvalidOperation:
        commission = Decimal(-1)
    if not commission.is_finite() or not 0 <= commission < 1:
        raise SystemExit(f"--commission must be a fraction from 0 to below 1, got "
                         f"{args.commission!r}")
    for name in ("weight_per_minute", "orders_per_10s", "orders_per_day", "ban_seconds"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    limits = LimitSettings(args.weight_per_minute, args.orders_per_10s, args.orders_per_day,
                           args.ban_seconds)
    token = args.admin_token or os.environ.get(ENV + "ADMIN_TOKEN") or None
    run_paper_exchange(args.host, args.port, args.state_dir, args.seed, args.tick_ms,
                       args.history_days, limits=limits, commission_rate=commission,
                       admin_token=token)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Print a new key pair as JSON."""
    balances: dict[str, Decimal | str] | None = (
        {a.upper(): Decimal(v) for a, v in (b.split("=", 1) for b in args.balance)}
        if args.balance else None)
    keys = request_keys(args.url, balances)
    print(json.dumps({"apiKey": keys.api_key, "secretKey": keys.secret_key}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `[serve options]` or `issue-keys --url URL [--balance A=N]` (python -m entry)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "issue-keys":
        parser = argparse.ArgumentParser(prog="python -m adapters.paper_exchange issue-keys",
                                         description="Issue a funded API key pair.")
        add_keys_options(parser)
        return cmd_keys(parser.parse_args(args[1:]))
    parser = argparse.ArgumentParser(
        prog="python -m adapters.paper_exchange",
        description="Serve a Binance-compatible paper exchange (REST + websockets).")
    add_serve_options(parser)
    return cmd_serve(parser.parse_args(args))
