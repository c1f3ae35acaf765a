"""A thin synchronous client of Binance's WebSocket API for signed requests of many accounts.

Why not python-binance's own (`AsyncClient.ws_create_order` and friends): 1.0.37 ties its
WS-API connection to one client's keys and to an asyncio loop, while the gateway serves
every account from a pool of threads. Binance lets one connection carry requests signed with
different keys (the signature goes with each request; `session.logon` would bind the
connection to one Ed25519 key), so one connection per gateway carries every account here,
on `websockets`' thread-safe synchronous client:

- a caller's thread writes its request frame itself, then waits on its own future;
- one reader thread reads every answer and hands it to the future of its `id`.

What a caller can tell, which the gateway turns into its error classes:

- `WsApiUnavailable`: no connection, so the request was provably not sent (the gateway
  sends it over REST instead);
- `WsApiNoAnswer`: the request was (or may have been) sent and no answer came (timeout,
  connection dropped mid-request): an unknown outcome, never sent again by anyone here;
- `WsApiError`: the exchange answered an error (status, code, msg, rate limits).

The connection is opened on first use and, when it drops, again in the background (with
backoff); requests made meanwhile get `WsApiUnavailable` at once.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlencode

from websockets.protocol import State

log = logging.getLogger(__name__)

# rateLimits entries -> the REST header that carries the same count (ratelimit.RateBudget
# reads those names, so one budget serves both transports).
_LIMIT_HEADERS: dict[tuple[Any, Any, Any], str] = {
    ("REQUEST_WEIGHT", "MINUTE", 1): "X-MBX-USED-WEIGHT-1M",
    ("ORDERS", "SECOND", 10): "X-MBX-ORDER-COUNT-10S",
    ("ORDERS", "DAY", 1): "X-MBX-ORDER-COUNT-1D",
}


def sign_ws_params(api_key: str, secret_key: str, params: Mapping[str, Any], *,
                   recv_window_ms: int, timestamp_ms: int) -> dict[str, Any]:
    """Return `params` with apiKey, recvWindow, timestamp and their HMAC-SHA256 signature.

    The signature covers every parameter but itself, sorted by name and percent-encoded
    (what Binance's WS-API checks, the Testnet since 2025-12-17).
    """
    signed: dict[str, Any] = {**params, "apiKey": api_key, "recvWindow": recv_window_ms,
                              "timestamp": timestamp_ms}
    payload = urlencode(sorted((k, str(v)) for k, v in signed.items()))
    signed["signature"] = hmac.new(secret_key.encode(), payload.encode(),
                                   hashlib.sha256).hexdigest()
    return signed


def limits_as_headers(rate_limits: Any) -> dict[str, str]:
    """Map a WS-API answer's `rateLimits` to the REST headers that say the same counts."""
    headers: dict[str, str] = {}
    if not isinstance(rate_limits, list):
        return headers
    for item in rate_limits:
        if not isinstance(item, dict):
            continue
        name = _LIMIT_HEADERS.get((item.get("rateLimitType"), item.get("interval"),
                                   item.get("intervalNum")))
        if name is not None and "count" in item:
            headers[name] = str(item["count"])
    return headers


class WsApiUnavailable(Exception):
    """No WS-API connection: the request was not sent."""


class WsApiNoAnswer(Exception):
    """The request may have reached the exchange and no answer came back."""


class WsApiError(Exception):
    """The exchange answered with an error: `status` (HTTP-like), `code`, `msg`."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str]) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers  # the rate-limit counts and Retry-After, as REST's headers


class WsApiClient:
    """One WS-API connection for signed requests of any account, from any thread."""

    def __init__(self, url: str, *, connect_timeout: float = 3.05,
                 max_backoff: float = 10.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self._lock = threading.Lock()
        self._ws: Any = None  # websockets.sync.client.ClientConnection while open
        self._pending: dict[str, Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: threading.Thread | None = None
        self._closed = False
        self._opened = threading.Event()
        self.connections_opened = 0
        self.requests_sent = 0

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, wait: float | None = None) -> bool:
        """Start connecting (once); wait up to `wait` seconds for the connection."""
        with self._lock:
            if self._reader is None and not self._closed:
                self._reader = threading.Thread(target=self._run, name="ws-api-orders",
                                                daemon=True)
                self._reader.start()
        if wait:
            self._opened.wait(wait)
        return self._ws is not None

    @property
    def connected(self) -> bool:
        """Tell whether requests go over the connection now."""
        return self._ws is not None

    def close(self) -> None:
        """Close the connection for good; waiting callers get WsApiNoAnswer."""
        with self._lock:
            self._closed = True
            ws = self._ws
        if ws is not None:
            ws.close()
        if self._reader is not None:
            self._reader.join(2)

    def drop(self) -> None:
        """Close the current connection (it reopens in the background); for tests and ops."""
        ws = self._ws
        if ws is not None:
            ws.close()

    # ---- requests (any thread) -------------------------------------------------------------
    def request(self, method: str, params: Mapping[str, Any], timeout: float) -> tuple[
            Any, dict[str, str]]:
        """Send one request and wait for its answer: (result, rate-limit headers)."""
        ws = self._ws
        if ws is None:
            raise WsApiUnavailable("no WS-API connection")
        if ws.protocol.state is not State.OPEN:
            raise WsApiUnavailable("the WS-API connection is closing")
        request_id = f"o{next(self._ids)}"
        future: Future[dict[str, Any]] = Future()
        self._pending[request_id] = future
        frame = json.dumps({"id": request_id, "method": method, "params": params})
        try:
            try:
                self.requests_sent += 1
                ws.send(frame)
            except Exception as exc:
                # The connection was open a moment ago: part of the frame may have left.
                raise WsApiNoAnswer(f"{method}: connection lost while sending "
                                    f"({type(exc).__name__})") from None
            try:
                answer = future.result(timeout)
            except FutureTimeout:
                raise WsApiNoAnswer(f"{method}: no answer in {timeout:.1f} s") from None
        finally:
            self._pending.pop(request_id, None)
        headers = limits_as_headers(answer.get("rateLimits"))
        status = int(answer.get("status") or 0)
        if status != 200 or "error" in answer:
            error: dict[str, Any] = answer.get("error") or {}
            data: dict[str, Any] = error.get("data") or {}
            retry_at = data.get("retryAfter")
            if isinstance(retry_at, int | float):  # epoch ms, as Binance's WS-API says it
                headers["Retry-After"] = str(max(1.0, (retry_at - time.time() * 1000) / 1000))
            raise WsApiError(status, int(error.get("code") or 0), str(error.get("msg") or ""),
                             headers)
        return answer.get("result"), headers

    # ---- the reader thread ------------------------------------------------------------------
    def _run(self) -> None:
        from websockets.sync.client import connect

        delay = 0.2
        while not self._closed:
            try:
                ws = connect(self.url, open_timeout=self.connect_timeout, compression=None,
                             max_size=2**22)
            except Exception as exc:
                log.warning("WS-API (orders) connection failed (%s: %s); orders go over REST; "
                            "retrying in %.1fs", type(exc).__name__, exc, delay)
                self._opened.set()  # a first caller waits no longer: REST it is
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            with self._lock:
                if self._closed:
                    ws.close()
                    break
                self._ws = ws
            self.connections_opened += 1
            delay = 0.2
            self._opened.set()
            log.info("WS-API connection open for orders")
            try:
                for raw in ws:
                    self._answer(raw)
            except Exception as exc:
                log.warning("WS-API (orders) connection broke (%s: %s)", type(exc).__name__, exc)
            finally:
                self._lost()
            if not self._closed:
                time.sleep(delay)

    def _answer(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("unreadable WS-API frame dropped")
            return
        if not isinstance(message, dict):
            return
        future = self._pending.pop(str(message.get("id")), None)
        if future is not None and not future.done():
            future.set_result(message)

    def _lost(self) -> None:
        with self._lock:
            self._ws = None
        for request_id in list(self._pending):
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(WsApiNoAnswer("the WS-API connection closed"))
