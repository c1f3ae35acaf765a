"""Follow accounts' user-data streams (python-binance AsyncClient + BinanceSocketManager over
the WS-API) on one asyncio loop in a background thread.

Each followed account gets one task that connects, subscribes, hands every event to the
callbacks and, when the connection breaks, reconnects with backoff. After every (re)connect
`on_connected` runs, so the worker can reconcile what it may have missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.binance.enums import parse_status
from commands.ports import ExchangeCredentials, ExchangeFill, ExchangeOrderReport
from domain.errors import ExchangeKeysMissing

log = logging.getLogger(__name__)

ReportSink = Callable[[UUID, ExchangeOrderReport], None]
BalanceSink = Callable[[UUID, list[dict[str, Any]]], None]


def report_from_execution(event: dict[str, Any]) -> ExchangeOrderReport:
    """Map an `executionReport` event to our report (the trade, if any, as its one fill)."""
    # For a cancel, `c` names the cancel request and `C` the order it canceled.
    client_order_id = str(event.get("C") or event["c"])
    fills: tuple[ExchangeFill, ...] = ()
    if event.get("x") == "TRADE":
        fills = (ExchangeFill(
            trade_id=str(event["t"]), price=Decimal(str(event["L"])),
            quantity=Decimal(str(event["l"])), commission=Decimal(str(event["n"])),
            commission_asset=str(event["N"]), is_maker=bool(event.get("m"))),)
    return ExchangeOrderReport(
        exchange_order_id=str(event["i"]), client_order_id=client_order_id,
        symbol=str(event["s"]), status=parse_status(str(event["X"])),
        cumulative_quantity=Decimal(str(event["z"])),
        cumulative_quote=Decimal(str(event["Z"])), fills=fills)


def balances_from_position(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Map an `outboundAccountPosition` event to [{asset, free, locked}]."""
    return [{"asset": b["a"], "free": Decimal(str(b["f"])), "locked": Decimal(str(b["l"]))}
            for b in event.get("B", ())]


class UserStreams:
    """One background event loop following many accounts' user-data streams."""

    def __init__(
        self,
        credentials: Callable[[UUID], ExchangeCredentials],
        *,
        environment: str,
        api_url: str | None,
        ws_api_url: str | None,
        on_report: Callable[[UUID, dict[str, Any]], None],
        on_balances: BalanceSink | None = None,
        on_connected: Callable[[UUID, bool], None] | None = None,
        max_backoff: float = 10.0,
    ) -> None:
        self._credentials = credentials
        self.environment = environment
        self._on_report = on_report
        self._on_balances = on_balances
        self._on_connected = on_connected
        self.max_backoff = max_backoff
        from binance import AsyncClient

        # A subclass per gateway: pointing it elsewhere leaves python-binance's globals alone.
        attrs: dict[str, Any] = {}
        if api_url:
            attrs["API_URL"] = api_url
        if ws_api_url:
            attrs["WS_API_URL"] = ws_api_url
        self._client_class: type[Any] = (
            type("RedirectedAsyncClient", (AsyncClient,), attrs) if attrs else AsyncClient)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: dict[UUID, asyncio.Task[None]] = {}
        self.connected: set[UUID] = set()

    # ---- lifecycle (any thread) -------------------------------------------------------
    def start(self) -> None:
        """Start the event loop thread."""
        ready = threading.Event()

        def main() -> None:
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, name="user-streams", daemon=True)
        self._thread.start()
        ready.wait(5)

    def follow(self, account_id: UUID, restart: bool = False) -> None:
        """Follow an account's stream (restart it, e.g. after its keys changed)."""
        self._call(self._follow_soon, account_id, restart)

    def unfollow(self, account_id: UUID) -> None:
        """Stop following an account."""
        self._call(self._cancel, account_id)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every stream and stop the loop."""
        loop = self._loop
        if loop is None:
            return
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout)
        except Exception:  # stopping anyway
            log.debug("user streams did not shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        self._loop = None

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            raise RuntimeError("user streams are not started")
        self._loop.call_soon_threadsafe(fn, *args)

    # ---- on the loop -------------------------------------------------------------------
    def _follow_soon(self, account_id: UUID, restart: bool) -> None:
        task = self._tasks.get(account_id)
        if task is not None and not task.done():
            if not restart:
                return
            task.cancel()
        self._tasks[account_id] = asyncio.get_running_loop().create_task(
            self._follow(account_id), name=f"user-stream-{account_id}")

    def _cancel(self, account_id: UUID) -> None:
        task = self._tasks.pop(account_id, None)
        if task is not None:
            task.cancel()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=3)
        # python-binance's own read loops and keepalives: end them before the loop closes.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=1)

    async def _follow(self, account_id: UUID) -> None:
        from binance import BinanceSocketManager

        loop = asyncio.get_running_loop()
        delay, first = 0.2, True
        while True:
            client = None
            try:
                # Decrypted just in time (a database read: off the loop), never logged.
                creds = await loop.run_in_executor(None, self._credentials, account_id)
                client = await self._client_class.create(
                    creds.api_key, creds.secret_key, testnet=self.environment == "testnet")
                del creds
                socket = BinanceSocketManager(client).user_socket()
                async with socket as stream:
                    self.connected.add(account_id)
                    log.info("following the user-data stream of account %s", account_id)
                    if self._on_connected is not None:
                        await loop.run_in_executor(None, self._on_connected, account_id, first)
                    first, delay = False, 0.2
                    while True:
                        message = await stream.recv()
                        if message.get("e") == "error":
                            raise ConnectionError(str(message.get("m") or message))
                        self._dispatch(account_id, message)
            except asyncio.CancelledError:
                raise
            except ExchangeKeysMissing:
                log.info("account %s has no exchange keys; not following its stream",
                         account_id)
                return
            except Exception as exc:  # any failure: reconnect, the worker reconciles after
                log.warning("user-data stream of account %s broke (%s: %s); reconnecting in "
                            "%.1fs", account_id, type(exc).__name__, exc, delay)
            finally:
                self.connected.discard(account_id)
                if client is not None:
                    try:
                        await asyncio.wait_for(client.close_connection(), 2)
                    except Exception:
                        log.debug("closing the stream client failed", exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _dispatch(self, account_id: UUID, message: dict[str, Any]) -> None:
        kind = message.get("e")
        try:
            if kind == "executionReport":
                self._on_report(account_id, message)
            elif kind == "outboundAccountPosition" and self._on_balances is not None:
                self._on_balances(account_id, balances_from_position(message))
        except Exception:  # one bad event must not end the stream
            log.exception("account %s: could not handle %s event", account_id, kind)
