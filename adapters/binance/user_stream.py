"""Follow many accounts' user-data streams over ONE WS-API connection.

Binance lets one WS-API connection carry many `userDataStream.subscribe.signature`
subscriptions and limits how many new connections a client may open, so every followed
account shares a single connection here. python-binance 1.0.37 ties its WS-API connection to
one client's keys (it signs with them), so the subscription frames are written here over the
`websockets` library; REST stays on python-binance.

- Every successful (re)subscription calls `on_connected(account, first)`: the worker then
  reconciles the account's open orders, the first time included (a fill between the start-up
  reconcile and the subscription would otherwise wait for the next reconnect).
- `serverShutdown` (the server is about to close the connection) and a dropped connection:
  reconnect and resubscribe every account. `eventStreamTerminated` (one subscription ended):
  resubscribe that account.
- -2014 / -2015 / -1022 on a subscription are final for those keys: `on_keys_rejected` is
  called once and the account is not subscribed again until its keys change (`follow` with
  restart=True).
- Events are dispatched off the event loop: each account has a bounded queue drained by a
  small thread pool, one drain per account at a time (its events stay in order). A full queue
  never blocks the loop or another account: the event is dropped and the account is
  reconciled once its queue has drained, which recovers whatever the dropped events said.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.binance.enums import parse_status
from adapters.binance.errors import BinanceErrorCode
from adapters.binance.ws_api import sign_ws_params
from commands.ports import ExchangeCredentials, ExchangeFill, ExchangeOrderReport
from domain.errors import ExchangeKeysMissing

log = logging.getLogger(__name__)

ReportSink = Callable[[UUID, ExchangeOrderReport], None]
BalanceSink = Callable[[UUID, list[dict[str, Any]]], None]
# Subscription refusals that no retry can cure: the keys themselves are bad.
KEY_REJECTION_CODES = frozenset({
    BinanceErrorCode.BAD_API_KEY_FMT, BinanceErrorCode.REJECTED_MBX_KEY,
    BinanceErrorCode.INVALID_SIGNATURE,
})
TESTNET_WS_API_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"
LIVE_WS_API_URL = "wss://ws-api.binance.com/ws-api/v3"
REQUEST_TIMEOUT = 10.0
RECV_WINDOW_MS = 5000


def report_from_execution(event: dict[str, Any]) -> ExchangeOrderReport:
    """Map an `executionReport` event to our report (the trade, if any, as its one fill)."""
    # For a cancel, `c` names the cancel request and `C` the order it canceled.
    client_order_id = str(event.get("C") or event["c"])
    fills: tuple[ExchangeFill, ...] = ()
    if event.get("x") == "TRADE":
        # Binance sends N = null when no commission was charged (the Testnet's default):
        # that is no asset at all, not an asset named "None".
        asset = event.get("N")
        fills = (ExchangeFill(
            trade_id=str(event["t"]), price=Decimal(str(event["L"])),
            quantity=Decimal(str(event["l"])), commission=Decimal(str(event.get("n") or 0)),
            commission_asset=None if asset is None else str(asset),
            is_maker=bool(event.get("m"))),)
    return ExchangeOrderReport(
        exchange_order_id=str(event["i"]), client_order_id=client_order_id,
        symbol=str(event["s"]), status=parse_status(str(event["X"])),
        cumulative_quantity=Decimal(str(event["z"])),
        cumulative_quote=Decimal(str(event["Z"])), fills=fills,
        working=bool(event.get("w", True)))


def balances_from_position(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Map an `outboundAccountPosition` event to [{asset, free, locked}]."""
    return [{"asset": b["a"], "free": Decimal(str(b["f"])), "locked": Decimal(str(b["l"]))}
            for b in event.get("B", ())]


def signed_subscription(creds: ExchangeCredentials, request_id: str,
                        now_ms: int | None = None) -> dict[str, Any]:
    """Build a `userDataStream.subscribe.signature` request signed with HMAC-SHA256."""
    params = sign_ws_params(
        creds.api_key, creds.secret_key, {}, recv_window_ms=RECV_WINDOW_MS,
        timestamp_ms=int(time.time() * 1000) if now_ms is None else now_ms)
    return {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}


class SubscriptionRefused(Exception):
    """The WS-API answered a request with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class EventDispatcher:
    """Per-account bounded queues drained on a thread pool, in order, one drain at a time."""

    def __init__(self, handle: Callable[[UUID, dict[str, Any]], None],
                 on_overflow: Callable[[UUID], None], *, threads: int = 4,
                 queue_size: int = 1000) -> None:
        self._handle = handle
        self._on_overflow = on_overflow
        self.queue_size = queue_size
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="stream-dispatch")
        self._queues: dict[UUID, deque[dict[str, Any]]] = {}
        self._draining: set[UUID] = set()
        self._overflowed: set[UUID] = set()
        self._lock = threading.Lock()
        self.dropped = 0

    def offer(self, account_id: UUID, message: dict[str, Any]) -> bool:
        """Queue an event without ever blocking; False when the account's queue is full."""
        with self._lock:
            q = self._queues.setdefault(account_id, deque())
            if len(q) >= self.queue_size:
                self._overflowed.add(account_id)
                self.dropped += 1
                accepted = False
            else:
                q.append(message)
                accepted = True
            if account_id in self._draining:
                return accepted
            self._draining.add(account_id)
        self._pool.submit(self._drain, account_id)
        return accepted

    def _drain(self, account_id: UUID) -> None:
        while True:
            with self._lock:
                q = self._queues.get(account_id)
                if not q:
                    self._draining.discard(account_id)
                    overflowed = account_id in self._overflowed
                    self._overflowed.discard(account_id)
                    break
                message = q.popleft()
            try:
                self._handle(account_id, message)
            except Exception:  # one bad event must not end the account's dispatch
                log.exception("account %s: could not handle %s event", account_id,
                              message.get("e"))
        if overflowed:
            log.warning("account %s: events were dropped (queue full); reconciling", account_id)
            try:
                self._on_overflow(account_id)
            except Exception:
                log.exception("account %s: reconcile after dropped events failed", account_id)

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a callback on the dispatch pool (never on the event loop)."""
        self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class UserStreams:
    """One background event loop and one WS-API connection for many accounts' streams."""

    def __init__(
        self,
        credentials: Callable[[UUID], ExchangeCredentials],
        *,
        environment: str,
        api_url: str | None = None,
        ws_api_url: str | None,
        on_report: Callable[[UUID, dict[str, Any]], None],
        on_balances: BalanceSink | None = None,
        on_connected: Callable[[UUID, bool], None] | None = None,
        on_keys_rejected: Callable[[UUID, str, int, str], None] | None = None,
        max_backoff: float = 10.0,
        queue_size: int = 1000,
        dispatch_threads: int = 4,
    ) -> None:
        del api_url  # the stream needs only the WS-API (kept for the callers' symmetry)
        self._credentials = credentials
        self.environment = environment
        self.ws_api_url = ws_api_url or (
            TESTNET_WS_API_URL if environment == "testnet" else LIVE_WS_API_URL)
        self._on_report = on_report
        self._on_balances = on_balances
        self._on_connected = on_connected
        self._on_keys_rejected = on_keys_rejected
        self.max_backoff = max_backoff
        self.dispatcher = EventDispatcher(self._dispatch, self._overflowed,
                                          threads=dispatch_threads, queue_size=queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._main: asyncio.Task[None] | None = None
        self._ws: Any = None
        self._wanted: set[UUID] = set()
        self._subscribed: dict[int, UUID] = {}  # subscriptionId -> account (this connection)
        self._pending: dict[UUID, asyncio.Task[None]] = {}  # subscriptions under way
        self._responses: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._first: set[UUID] = set()  # accounts not subscribed yet since start
        self._wake: asyncio.Event | None = None
        # Observable state (read from other threads; sets of UUIDs, replaced or mutated
        # atomically under the GIL).
        self.connected: set[UUID] = set()
        self.rejected: dict[UUID, str] = {}
        self.refusals: dict[UUID, int] = {}  # key refusals received per account
        self.connections_opened = 0
        self.subscriptions_made = 0

    # ---- lifecycle (any thread) -------------------------------------------------------
    def start(self) -> None:
        """Start the event loop thread and the connection."""
        ready = threading.Event()

        def main() -> None:
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._wake = asyncio.Event()
            self._main = loop.create_task(self._run(), name="user-streams")
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
        self._call(self._unfollow, account_id)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and stop the loop."""
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
        self.dispatcher.close()

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            raise RuntimeError("user streams are not started")
        self._loop.call_soon_threadsafe(fn, *args)

    # ---- on the loop: who is followed ----------------------------------------------------
    def _follow_soon(self, account_id: UUID, restart: bool) -> None:
        if account_id in self._wanted and not restart:
            return
        if restart:
            self._drop(account_id, unsubscribe=True)
            self.rejected.pop(account_id, None)  # new keys deserve a new try
        elif account_id in self.rejected:
            return  # final for these keys: only new keys (restart) subscribe again
        self._wanted.add(account_id)
        self._first.add(account_id)
        self._subscribe_soon(account_id)

    def _unfollow(self, account_id: UUID) -> None:
        self._wanted.discard(account_id)
        self.rejected.pop(account_id, None)
        self._drop(account_id, unsubscribe=True)

    def _drop(self, account_id: UUID, unsubscribe: bool) -> None:
        """Forget an account's subscription on this connection (and end it at the server)."""
        task = self._pending.pop(account_id, None)
        if task is not None:
            task.cancel()
        for sid in [s for s, a in self._subscribed.items() if a == account_id]:
            del self._subscribed[sid]
            if unsubscribe and self._ws is not None:
                frame = {"id": f"u{next(self._ids)}", "method": "userDataStream.unsubscribe",
                         "params": {"subscriptionId": sid}}
                asyncio.get_running_loop().create_task(self._send_quietly(frame))
        self.connected.discard(account_id)

    async def _send_quietly(self, frame: dict[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps(frame))
        except Exception:  # the connection is going anyway
            log.debug("could not send %s", frame.get("method"), exc_info=True)

    def _subscribe_soon(self, account_id: UUID, delay: float = 0.0) -> None:
        if self._ws is None or account_id in self._pending:
            return  # (re)connecting subscribes every wanted account
        self._pending[account_id] = asyncio.get_running_loop().create_task(
            self._subscribe(account_id, delay), name=f"subscribe-{account_id}")

    async def _shutdown(self) -> None:
        if self._main is not None:
            self._main.cancel()
        for task in list(self._pending.values()):
            task.cancel()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=2)

    # ---- on the loop: the connection -----------------------------------------------------
    async def _run(self) -> None:
        from websockets.asyncio.client import connect

        delay = 0.2
        while True:
            try:
                async with connect(self.ws_api_url, max_size=2**22, open_timeout=10,
                                   compression=None) as ws:
                    self._ws = ws
                    self.connections_opened += 1
                    log.info("WS-API connection open for %d accounts' user-data streams",
                             len(self._wanted))
                    delay = 0.2
                    for account_id in list(self._wanted):
                        self._subscribe_soon(account_id)
                    async for raw in ws:
                        if self._handle_frame(raw):
                            log.info("serverShutdown: reconnecting and resubscribing")
                            break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect, resubscribe, reconcile
                log.warning("user-data WS-API connection broke (%s: %s); reconnecting in "
                            "%.1fs", type(exc).__name__, exc, delay)
            finally:
                self._lost_connection()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _lost_connection(self) -> None:
        self._ws = None
        for task in self._pending.values():
            task.cancel()
        self._pending.clear()
        self._subscribed.clear()
        for future in self._responses.values():
            if not future.done():
                future.set_exception(ConnectionError("the WS-API connection closed"))
        self._responses.clear()
        self.connected.clear()

    def _handle_frame(self, raw: str | bytes) -> bool:
        """Route one frame; return True when the server announced its shutdown."""
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("unreadable WS-API frame dropped")
            return False
        if not isinstance(message, dict):
            return False
        event = message.get("event")
        if isinstance(event, dict):
            kind = event.get("e")
            if kind == "serverShutdown":
                return True
            account_id = self._subscribed.get(message.get("subscriptionId", -1))
            if account_id is None:
                return False  # an event of a subscription we dropped
            if kind == "eventStreamTerminated":
                log.info("account %s: event stream terminated; resubscribing", account_id)
                self._drop(account_id, unsubscribe=False)
                self._subscribe_soon(account_id)
                return False
            self.dispatcher.offer(account_id, event)
            return False
        future = self._responses.pop(str(message.get("id")), None)
        if future is not None and not future.done():
            future.set_result(message)
        return False

    async def _request(self, frame: dict[str, Any]) -> Any:
        """Send a request and wait for its answer; SubscriptionRefused on an error answer."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._responses[frame["id"]] = future
        try:
            await self._ws.send(json.dumps(frame))
            answer = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        finally:
            self._responses.pop(frame["id"], None)
        if answer.get("status") != 200 or "error" in answer:
            error = answer.get("error") or {}
            raise SubscriptionRefused(int(error.get("code", 0)), str(error.get("msg", "")))
        return answer.get("result")

    async def _subscribe(self, account_id: UUID, delay: float) -> None:
        loop = asyncio.get_running_loop()
        backoff = max(delay, 0.2)
        if delay:
            await asyncio.sleep(delay)
        while account_id in self._wanted and self._ws is not None:
            digest = ""
            try:
                # Decrypted just in time (a database read: off the loop), never logged.
                creds = await loop.run_in_executor(None, self._credentials, account_id)
                digest = creds.digest
                frame = signed_subscription(creds, f"s{next(self._ids)}")
                del creds
                result = await self._request(frame)
            except asyncio.CancelledError:
                raise
            except ExchangeKeysMissing as exc:
                # No keys, or keys of another environment: nothing to follow until they change.
                log.info("account %s: not following its stream: %s", account_id, exc.message)
                self._wanted.discard(account_id)
                break
            except SubscriptionRefused as exc:
                if exc.code in KEY_REJECTION_CODES:
                    self._keys_rejected(account_id, digest, exc)
                    break
                log.warning("account %s: subscription refused (%s); retrying in %.1fs",
                            account_id, exc, backoff)
            except Exception as exc:
                log.warning("account %s: subscription failed (%s: %s); retrying in %.1fs",
                            account_id, type(exc).__name__, exc, backoff)
                if self._ws is None:
                    break  # the reconnect subscribes again
            else:
                self._subscribed[int(result["subscriptionId"])] = account_id
                self.subscriptions_made += 1
                self.connected.add(account_id)
                first = account_id in self._first
                self._first.discard(account_id)
                log.info("following the user-data stream of account %s", account_id)
                if self._on_connected is not None:
                    self.dispatcher.run(self._on_connected, account_id, first)
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        if self._pending.get(account_id) is asyncio.current_task():
            del self._pending[account_id]

    def _keys_rejected(self, account_id: UUID, digest: str, exc: SubscriptionRefused) -> None:
        log.warning("account %s: the exchange rejected its keys (%d %s); not retrying until "
                    "they change", account_id, exc.code, exc.message)
        self._wanted.discard(account_id)
        self.rejected[account_id] = f"{exc.code} {exc.message}"
        self.refusals[account_id] = self.refusals.get(account_id, 0) + 1
        if self._on_keys_rejected is not None:
            self.dispatcher.run(self._on_keys_rejected, account_id, digest, exc.code,
                                exc.message)

    # ---- off the loop ------------------------------------------------------------------
    def _dispatch(self, account_id: UUID, message: dict[str, Any]) -> None:
        kind = message.get("e")
        if kind == "executionReport":
            self._on_report(account_id, message)
        elif kind == "outboundAccountPosition" and self._on_balances is not None:
            self._on_balances(account_id, balances_from_position(message))

    def _overflowed(self, account_id: UUID) -> None:
        if self._on_connected is not None:
            self._on_connected(account_id, False)
