"""The exchange port implemented with python-binance's synchronous `Client`.

One gateway serves every account: it builds a `Client` per account key (and per thread,
since a `Client` keeps its last response on itself) from credentials decrypted just in time,
keeps it for a short while, and never logs the keys. Where it points:

- paper (default): the bundled paper exchange at settings.paper_exchange_url;
- testnet: Binance Spot Testnet (python-binance's own testnet URLs);
- live: api.binance.com, only when settings.allow_live_trading is also true.

Safe calls (queries, cancels, open orders, balances) are retried on timeouts and 5xx with
backoff. An order submission is never retried here: its unknown outcome goes back to the
execution manager, which asks the exchange before anything is sent again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import requests
from binance import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from adapters.binance.enums import parse_status
from adapters.binance.errors import RATE_LIMIT_STATUSES, BinanceErrorCode, map_api_error
from adapters.binance.loopback import LoopbackSession
from adapters.binance.ratelimit import (
    LOW_PRIORITY,
    WEIGHTS,
    Limits,
    RateBudget,
    SharedBackoff,
    Throttled,
)
from adapters.binance.ws_api import (
    WsApiClient,
    WsApiError,
    WsApiNoAnswer,
    WsApiUnavailable,
    sign_ws_params,
)
from adapters.platform.crypto import ConfigurationError
from adapters.platform.settings import Settings
from commands.ports import (
    ExchangeCredentials,
    ExchangeFill,
    ExchangeOrderHistory,
    ExchangeOrderListRequest,
    ExchangeOrderReport,
    ExchangeOrderRequest,
)
from domain.errors import (
    ExchangeError,
    ExchangeKeysRejected,
    ExchangeRejected,
    ExchangeThrottled,
    ExchangeUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds
DEFAULT_RECV_WINDOW_MS = 5000
# Binance's REST gateway waits about this long for the matching engine before answering
# 5xx / -1007 "execution status unknown"; the engine may still execute after that.
EXCHANGE_BACKEND_TIMEOUT = 10.0
# Pages of 1000 read at most when listing a symbol's orders or trades as evidence.
HISTORY_PAGES = 5
# Orders placed before a history's start time that traded after it, looked up one by one
# (query order, weight 4 each) before the history counts as lagging.
HISTORY_LOOKUPS = 10
TESTNET_WS_API_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"
LIVE_WS_API_URL = "wss://ws-api.binance.com/ws-api/v3"


def resolve_endpoints(settings: Settings) -> tuple[str, str | None, str | None]:
    """Return (environment, REST API_URL override, WS-API URL override) for the settings.

    Refuses live Binance unless it is asked for twice (exchange=live and allow_live_trading).
    """
    if settings.exchange == "live":
        if not settings.allow_live_trading:
            raise ConfigurationError(
                "TRADELEDGER_EXCHANGE=live trades real money on Binance; it also needs "
                "TRADELEDGER_ALLOW_LIVE_TRADING=true. Use TRADELEDGER_EXCHANGE=testnet or the "
                "default paper exchange otherwise.")
        return "live", None, None
    if settings.exchange == "testnet":
        return "testnet", None, None
    if not settings.paper_exchange_url:
        raise ConfigurationError(
            "the paper exchange's URL is unknown: set TRADELEDGER_PAPER_EXCHANGE_URL (for "
            "example http://127.0.0.1:9900) or start everything with `tradeledger up`")
    base = settings.paper_exchange_url.rstrip("/")
    ws_base = "ws" + base[4:] if base.startswith("http") else base
    return "paper", base + "/api", ws_base + "/ws-api/v3"


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _plain(value: Decimal) -> str:
    """Format a Decimal as Binance wants it: plain digits, never an exponent."""
    return format(value, "f")


class BinanceGateway:
    """ExchangeGateway over python-binance, for paper, testnet or (opted-in) live Binance."""

    def __init__(
        self,
        environment: str = "paper",
        api_url: str | None = None,
        ws_api_url: str | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
        retries: int = 2,
        backoff: float = 0.2,
        client_ttl: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        budget: RateBudget | None = None,
        shared_backoff: SharedBackoff | None = None,
        limits_refresh: float = 60.0,
        order_transport: str = "ws",
    ) -> None:
        if environment not in ("paper", "testnet", "live"):
            raise ConfigurationError(f"unknown exchange environment {environment!r}")
        if environment == "paper" and not api_url:
            raise ConfigurationError("the paper exchange needs its API URL")
        if order_transport not in ("ws", "rest"):
            raise ConfigurationError(f"unknown order transport {order_transport!r}")
        self.environment = environment
        self.api_url = api_url
        self.ws_api_url = ws_api_url
        self.timeout = timeout
        self.recv_window_ms = recv_window_ms
        self.retries = retries
        self.backoff = backoff
        self.client_ttl = client_ttl
        self._sleep = sleep
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._timestamp_offset = 0
        # One budget for everything this gateway sends (one IP), per account inside it.
        self.budget = budget or RateBudget(scope=environment, shared=shared_backoff)
        # When the limits were last read (monotonic), None: read them before the next order.
        # Read again every `limits_refresh` seconds: the exchange may raise them as well as
        # lower them, and a limit read during a squeeze must not pace us for ever.
        self.limits_refresh = limits_refresh
        self._limits_read_at: float | None = None
        # Orders (place, cancel, status) over one WS-API connection for every account,
        # opened on the first order; REST when it is down or order_transport is "rest".
        self.order_transport = order_transport
        self._ws_api: WsApiClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> BinanceGateway:
        """Build the gateway the settings ask for (ConfigurationError if they do not add up)."""
        environment, api_url, ws_api_url = resolve_endpoints(settings)
        kwargs.setdefault("order_transport", settings.order_transport)
        return cls(environment, api_url, ws_api_url, **kwargs)

    @property
    def request_validity_seconds(self) -> float:
        """A request reaching Binance later than recvWindow after its timestamp is refused."""
        return self.recv_window_ms / 1000

    @property
    def unknown_outcome_window_seconds(self) -> float:
        """How long after leaving a request whose answer was lost may still execute.

        It may arrive up to recvWindow after its timestamp (our read timeout bounds how long
        we waited for it), and Binance's gateway gives up on the engine after about 10 s
        while the engine may still execute it: all of them added up.
        """
        return self.recv_window_ms / 1000 + self.timeout[1] + EXCHANGE_BACKEND_TIMEOUT

    # ---- clients -------------------------------------------------------------------
    def client(self, credentials: ExchangeCredentials) -> Client:
        """Return this thread's Client for these keys, built just now or a few seconds ago."""
        cache: dict[str, tuple[Client, float]] = self._local.__dict__.setdefault("clients", {})
        # Keyed by a digest, so the cache never holds the keys as dictionary keys.
        key = hashlib.sha256(
            f"{credentials.api_key}\0{credentials.secret_key}".encode()).hexdigest()
        now = time.monotonic()
        for stale in [k for k, (_, born) in cache.items() if now - born > self.client_ttl]:
            self._discard(cache.pop(stale)[0])
        entry = cache.get(key)
        if entry is not None:
            return entry[0]
        client = Client(
            credentials.api_key, credentials.secret_key,
            requests_params={"timeout": self.timeout},
            testnet=self.environment == "testnet", ping=False,
        )
        if self.api_url:
            client.API_URL = self.api_url  # per instance: other clients stay untouched
        if self.environment == "paper":
            # The paper exchange is local: no proxy, .netrc, cookie or redirect applies, and
            # requests' per-call handling of them was 0.3 of the ~1 ms of CPU a call took.
            session = LoopbackSession()
            session.headers.update(client.session.headers)  # the API key, Accept, User-Agent
            client.session.close()
            client.session = session
        client.REQUEST_RECVWINDOW = self.recv_window_ms
        client.timestamp_offset = self._timestamp_offset
        client.tl_account = key[:16]  # the budget's name for the account (never the key)
        cache[key] = (client, now)
        with self._clients_lock:
            self._clients.append(client)
        return client

    def _discard(self, client: Client) -> None:
        with self._clients_lock:
            if client in self._clients:
                self._clients.remove(client)
        client.close_connection()

    def close(self) -> None:
        """Close every HTTP session and the WS-API connection the gateway opened."""
        with self._clients_lock:
            clients, self._clients = self._clients, []
            ws_api, self._ws_api = self._ws_api, None
        for client in clients:
            client.close_connection()
        if ws_api is not None:
            ws_api.close()

    def ws_api(self) -> WsApiClient | None:
        """Return the orders' WS-API connection (opened and waited for on first use), or
        None when orders go over REST only."""
        url = self.ws_api_url or {"testnet": TESTNET_WS_API_URL,
                                  "live": LIVE_WS_API_URL}.get(self.environment)
        if self.order_transport != "ws" or url is None:
            return None  # (a paper exchange whose WS-API URL is not known: REST)
        ws_api = self._ws_api
        if ws_api is None:
            with self._clients_lock:
                if self._ws_api is None:
                    self._ws_api = WsApiClient(url, connect_timeout=self.timeout[0])
                ws_api = self._ws_api
            ws_api.start(wait=self.timeout[0])
        return ws_api

    def sync_clock(self, client: Client) -> None:
        """Measure the offset between our clock and the exchange's (for -1021)."""
        before = time.time()
        server = int(client.get_server_time()["serverTime"])
        self._timestamp_offset = int(server - (before + time.time()) * 500)
        client.timestamp_offset = self._timestamp_offset

    # ---- calls -----------------------------------------------------------------------
    def _call(self, client: Client, what: str, fn: Callable[[], T], *, safe: bool,
              ws: tuple[str, dict[str, Any]] | None = None) -> T:
        """Make one exchange call under the rate budget, mapping every failure to our errors.

        `ws` = (WS-API method, params) sends it over the WS-API connection when there is one
        (`fn`, the REST call, otherwise); both answer the same body.
        """
        from adapters.platform.metrics import EXCHANGE_ERRORS, EXCHANGE_LATENCY

        account = str(getattr(client, "tl_account", "public"))
        attempts = self.retries + 1 if safe else 1
        ws_api = self.ws_api() if ws is not None else None
        for attempt in range(attempts):
            error: ExchangeError
            try:
                # No request at all while a 429/418 is waited out or the weight is spent.
                self.budget.acquire(account, WEIGHTS.get(what, 1), LOW_PRIORITY.get(what, 1.0))
            except Throttled as exc:
                raise ExchangeThrottled(-1003, f"{what}: {exc.reason}",
                                        retry_after=exc.wait) from None
            started = time.perf_counter()
            client.response = None
            try:
                if ws is not None and ws_api is not None:
                    try:
                        result, headers = ws_api.request(
                            ws[0], self._ws_signed(client, ws[1]), self.timeout[1])
                    except WsApiUnavailable:
                        pass  # provably not sent: over REST below
                    else:
                        EXCHANGE_LATENCY.labels(what).observe(time.perf_counter() - started)
                        self.budget.observe(account, headers)
                        return result  # type: ignore[no-any-return]
                result = fn()
                EXCHANGE_LATENCY.labels(what).observe(time.perf_counter() - started)
                self._observe(account, client.response)
                return result
            except BinanceAPIException as exc:
                error = self._refusal(account, int(exc.status_code), int(exc.code),
                                      str(exc.message), _headers(exc.response))
            except WsApiError as exc:
                error = self._refusal(account, exc.status, exc.code, exc.msg, exc.headers)
            except WsApiNoAnswer as exc:  # sent, or maybe sent: an unknown outcome
                error = ExchangeUnavailable(f"{what}: {exc}"[:300])
            except BinanceRequestException as exc:
                error = ExchangeUnavailable(f"{what}: unreadable answer: {exc.message}"[:300])
            except requests.ConnectTimeout:
                error = ExchangeUnavailable(f"{what}: connect timeout", maybe_sent=False)
            except requests.ConnectionError as exc:
                error = ExchangeUnavailable(f"{what}: {type(exc).__name__}",
                                            maybe_sent=not _never_connected(exc))
            except requests.RequestException as exc:  # read timeout and the like
                error = ExchangeUnavailable(f"{what}: {type(exc).__name__}")
            EXCHANGE_ERRORS.labels(what, str(error.details.get("exchangeCode", error.code))).inc()
            if (isinstance(error, ExchangeRejected)
                    and error.exchange_code == BinanceErrorCode.INVALID_TIMESTAMP):
                try:
                    self.sync_clock(client)
                except Exception:  # the refusal is what the caller needs to hear about
                    log.debug("clock sync failed", exc_info=True)
            if isinstance(error, ExchangeUnavailable) and attempt + 1 < attempts:
                log.debug("%s: %s; retrying", what, error.message)
                self._sleep(self.backoff * 2 ** attempt)
                continue
            raise error
        raise AssertionError("unreachable")

    def _refusal(self, account: str, status: int, code: int, message: str,
                 headers: Mapping[str, str]) -> ExchangeError:
        """Map an error answer (REST or WS-API alike); a 429/418 starts the back-off."""
        self.budget.observe(account, headers)
        if status in RATE_LIMIT_STATUSES or code in (
                BinanceErrorCode.TOO_MANY_REQUESTS, BinanceErrorCode.TOO_MANY_ORDERS):
            wait = self.budget.back_off(account, status, code, headers)
            if code == BinanceErrorCode.TOO_MANY_ORDERS or status == 429:
                self._load_limits_soon()
            return ExchangeThrottled(code, message, retry_after=wait, httpStatus=status)
        return map_api_error(status, code, message)

    def _ws_signed(self, client: Client, params: dict[str, Any]) -> dict[str, Any]:
        """Sign WS-API params with the client's keys and clock offset (never logged)."""
        return sign_ws_params(
            str(client.API_KEY), str(client.API_SECRET), params,
            recv_window_ms=self.recv_window_ms,
            timestamp_ms=int(time.time() * 1000 + client.timestamp_offset))

    def _observe(self, account: str, response: Any) -> None:
        headers = _headers(response)
        if headers:
            self.budget.observe(account, headers)

    # ---- rate limits ---------------------------------------------------------------------
    def order_delay(self, credentials: ExchangeCredentials) -> float:
        """Seconds until a new order of these keys may go (0 takes its slot now)."""
        read_at = self._limits_read_at
        if read_at is None or time.monotonic() - read_at >= self.limits_refresh:
            self.load_limits()
        client = self.client(credentials)
        return self.budget.order_delay(str(client.tl_account))

    def load_limits(self) -> Limits | None:
        """Read the exchange's rate limits from exchangeInfo (Binance's defaults otherwise)."""
        self._limits_read_at = time.monotonic()
        client = self._public_client()
        try:
            info = self._call(client, "exchange info", client.get_exchange_info, safe=True)
        except ExchangeThrottled:
            self._limits_read_at = None  # backing off: read them once it is over
            return None
        except ExchangeError as exc:
            log.info("rate limits not read from exchangeInfo (%s); using Binance's defaults",
                     exc.message)
            return None
        limits = Limits.from_exchange_info(list(info.get("rateLimits") or ()))
        self.budget.set_limits(limits)
        return limits

    def _load_limits_soon(self) -> None:
        # A 429 says our idea of the limits may be wrong: read them again before the next
        # order (after the back-off, since exchangeInfo is a request too).
        self._limits_read_at = None

    def _public_client(self) -> Client:
        client: Client | None = getattr(self._local, "public", None)
        if client is None:
            client = Client(None, None, requests_params={"timeout": self.timeout},
                            testnet=self.environment == "testnet", ping=False)
            if self.api_url:
                client.API_URL = self.api_url
            client.tl_account = "public"
            self._local.public = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def submit_order(self, credentials: ExchangeCredentials,
                     request: ExchangeOrderRequest) -> ExchangeOrderReport:
        """Send a new order (FULL response, with its fills); never retried here."""
        client = self.client(credentials)
        params: dict[str, Any] = {
            "symbol": request.symbol, "side": request.side, "type": request.order_type,
            "newClientOrderId": request.client_order_id, "newOrderRespType": "FULL",
        }
        # Exactly one of them: Binance refuses both (-1128) and neither (-1102).
        if request.quote_order_qty is not None:
            params["quoteOrderQty"] = _plain(request.quote_order_qty)
        else:
            params["quantity"] = _plain(request.quantity)
        if request.order_type != "MARKET":
            assert request.price is not None
            params["price"] = _plain(request.price)
            params["timeInForce"] = request.time_in_force or "GTC"
        if request.stop_price is not None:
            params["stopPrice"] = _plain(request.stop_price)
        data = self._call(client, "submit order",
                          lambda: client.create_order(**params), safe=False,
                          ws=("order.place", params))
        fills = tuple(
            ExchangeFill(trade_id=str(f["tradeId"]), price=_decimal(f["price"]),
                         quantity=_decimal(f["qty"]), commission=_decimal(f["commission"]),
                         commission_asset=str(f["commissionAsset"]), is_maker=False)
            for f in data.get("fills") or ())
        return self._report(data, fills)

    def submit_order_list(self, credentials: ExchangeCredentials,
                          request: ExchangeOrderListRequest) -> list[ExchangeOrderReport]:
        """Send an OCO order list (POST /api/v3/orderList/oco, python-binance's
        create_oco_order); never retried here. A SELL takes profit above the market and stops
        out below it, a BUY the other way round."""
        client = self.client(credentials)
        stop, take_profit = request.legs
        above, below = (take_profit, stop) if request.side == "SELL" else (stop, take_profit)
        params: dict[str, Any] = {
            "symbol": request.symbol, "side": request.side,
            "quantity": _plain(request.quantity),
            "listClientOrderId": request.list_client_order_id, "newOrderRespType": "FULL",
        }
        for prefix, leg in (("above", above), ("below", below)):
            params[prefix + "Type"] = leg.order_type
            params[prefix + "ClientOrderId"] = leg.client_order_id
            if leg.price is not None:
                params[prefix + "Price"] = _plain(leg.price)
            if leg.stop_price is not None:
                params[prefix + "StopPrice"] = _plain(leg.stop_price)
            if leg.time_in_force is not None and leg.order_type != "LIMIT_MAKER":
                params[prefix + "TimeInForce"] = leg.time_in_force
        data = self._call(client, "submit order list",
                          lambda: client.create_oco_order(**params), safe=False)
        return [self._report(r, ()) for r in data.get("orderReports") or ()]

    def cancel_order(self, credentials: ExchangeCredentials, symbol: str,
                     client_order_id: str) -> ExchangeOrderReport:
        """Cancel an open order by its clientOrderId (repeatable: a second one is -2011)."""
        client = self.client(credentials)
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        data = self._call(client, "cancel order", lambda: client.cancel_order(**params),
                          safe=True, ws=("order.cancel", params))
        return self._report(data, ())

    def query_order(self, credentials: ExchangeCredentials, symbol: str,
                    client_order_id: str) -> ExchangeOrderReport | None:
        """Return the order with all its trades, or None when the exchange has no such order."""
        client = self.client(credentials)
        try:
            params = {"symbol": symbol, "origClientOrderId": client_order_id}
            data = self._call(client, "query order", lambda: client.get_order(**params),
                              safe=True, ws=("order.status", params))
        except ExchangeRejected as exc:
            if exc.exchange_code == BinanceErrorCode.NO_SUCH_ORDER:
                return None
            raise
        fills: tuple[ExchangeFill, ...] = ()
        if _decimal(data["executedQty"]) > 0:
            trades = self._call(client, "order trades", lambda: client.get_my_trades(
                symbol=symbol, orderId=data["orderId"], limit=1000), safe=True)
            fills = tuple(
                ExchangeFill(trade_id=str(t["id"]), price=_decimal(t["price"]),
                             quantity=_decimal(t["qty"]), commission=_decimal(t["commission"]),
                             commission_asset=str(t["commissionAsset"]),
                             is_maker=bool(t["isMaker"]))
                for t in trades if int(t["orderId"]) == int(data["orderId"]))
        return self._report(data, fills)

    def open_orders(self, credentials: ExchangeCredentials) -> list[ExchangeOrderReport]:
        """Return the account's open orders (without their trades)."""
        client = self.client(credentials)
        data = self._call(client, "open orders", client.get_open_orders, safe=True)
        return [self._report(o, ()) for o in data]

    def account_balances(self, credentials: ExchangeCredentials) -> list[dict[str, Any]]:
        """Return the account's non-zero balances as [{asset, free, locked}]."""
        return self.account_snapshot(credentials)[0]

    def account_snapshot(self, credentials: ExchangeCredentials
                         ) -> tuple[list[dict[str, Any]], dict[str, Decimal] | None]:
        """Return the account's non-zero balances and its commission rates ({maker, taker}
        as fractions, from `commissionRates`; None when the exchange sends none): one
        GET /api/v3/account, as python-binance's `get_account`."""
        client = self.client(credentials)
        data = self._call(client, "account", lambda: client.get_account(
            omitZeroBalances="true"), safe=True)
        balances = [{"asset": b["asset"], "free": _decimal(b["free"]),
                     "locked": _decimal(b["locked"])} for b in data.get("balances", ())]
        rates = data.get("commissionRates")
        commission = None
        if isinstance(rates, dict) and "maker" in rates and "taker" in rates:
            commission = {"maker": _decimal(rates["maker"]), "taker": _decimal(rates["taker"])}
        return balances, commission

    def all_orders(self, credentials: ExchangeCredentials, symbol: str) -> list[dict[str, Any]]:
        """Return the exchange's raw order list for one symbol (diagnostics and tests)."""
        client = self.client(credentials)
        result: list[dict[str, Any]] = self._call(
            client, "all orders", lambda: client.get_all_orders(symbol=symbol), safe=True)
        return result

    def order_history(self, credentials: ExchangeCredentials, symbol: str, *,
                      since: float | None = None,
                      from_order_id: str | None = None) -> ExchangeOrderHistory:
        """List the symbol's orders (allOrders) and trades (myTrades) from a time or an order
        id on, a few pages at most; `complete` says whether the listing reached its end."""
        client = self.client(credentials)
        start: dict[str, Any] = {}
        if from_order_id is not None:
            start["orderId"] = int(from_order_id)
        elif since is not None:
            start["startTime"] = int(since * 1000)
        orders, complete = self._pages(client, "all orders", client.get_all_orders, symbol,
                                       start, "orderId")
        trades, trades_complete = self._pages(client, "my trades", client.get_my_trades,
                                              symbol, start, "id")
        # From an order id on, allOrders lists that order and later ones, and myTrades that
        # order's trades: a trade of an order that is not listed shows a lagging list.
        order_ids = frozenset(str(o["orderId"]) for o in orders)
        trade_order_ids = frozenset(str(t["orderId"]) for t in trades)
        if "startTime" in start:
            # From a time on, allOrders lists the orders *placed* since and myTrades the
            # trades *made* since: an order placed before that trades after (a resting limit,
            # a stop that triggers) is not listed, and is no sign of lag. Left in, it made
            # every later check "disagree", so an order of unknown outcome was never proven
            # absent (chaos seed 841144: an OCO stuck in CANCEL_REQUESTED).
            trade_order_ids -= self._placed_before(
                client, symbol, trade_order_ids - order_ids, start["startTime"])
        return ExchangeOrderHistory(
            client_order_ids=frozenset(str(o["clientOrderId"]) for o in orders),
            order_ids=order_ids, trade_order_ids=trade_order_ids,
            complete=complete and trades_complete)

    def _placed_before(self, client: Client, symbol: str, order_ids: frozenset[str],
                       start_ms: int) -> frozenset[str]:
        """Of these orders (traded, not listed from `start_ms` on), the ones the exchange
        shows placed before `start_ms`. One query each, a few at most: past that, the rest
        still count as lag and the caller asks again later."""
        earlier = set()
        for order_id in sorted(order_ids)[:HISTORY_LOOKUPS]:
            try:
                data = self._call(client, "query order", functools.partial(
                    client.get_order, symbol=symbol, orderId=int(order_id)), safe=True)
            except ExchangeRejected as exc:
                if exc.exchange_code == BinanceErrorCode.NO_SUCH_ORDER:
                    continue  # traded but not found: the lists lag
                raise
            if int(data.get("time", start_ms)) < start_ms:
                earlier.add(order_id)
        return frozenset(earlier)

    def _pages(self, client: Client, what: str, fn: Callable[..., Any], symbol: str,
               start: dict[str, Any], id_field: str) -> tuple[list[dict[str, Any]], bool]:
        rows: list[dict[str, Any]] = []
        params = dict(start)
        for _ in range(HISTORY_PAGES):
            page: list[dict[str, Any]] = self._call(
                client, what, functools.partial(fn, symbol=symbol, limit=1000, **params),
                safe=True)
            rows.extend(page)
            if len(page) < 1000:
                return rows, True
            # Go on after the last row (by id, which Binance pages by).
            key = "orderId" if id_field == "orderId" else "fromId"
            params = {key: int(page[-1][id_field]) + 1}
        return rows, False

    @staticmethod
    def _report(data: dict[str, Any], fills: tuple[ExchangeFill, ...]) -> ExchangeOrderReport:
        return ExchangeOrderReport(
            exchange_order_id=str(data["orderId"]),
            # A cancel's answer names the cancel itself in clientOrderId.
            client_order_id=str(data.get("origClientOrderId") or data["clientOrderId"]),
            symbol=str(data["symbol"]),
            status=parse_status(str(data["status"])),
            cumulative_quantity=_decimal(data.get("executedQty", "0")),
            cumulative_quote=_decimal(data.get("cummulativeQuoteQty", "0")),
            fills=fills,
            working=_working(data),
        )


def _working(data: dict[str, Any]) -> bool:
    """Tell whether an order is on the book: queries say isWorking; an order's answer
    gives workingTime -1 to a stop order that has not triggered."""
    if "isWorking" in data:
        return bool(data["isWorking"])
    return int(data.get("workingTime", 0)) != -1


def _headers(response: Any) -> Mapping[str, str]:
    """Return an answer's headers, case-insensitive (none when there was no answer)."""
    headers: Mapping[str, str] | None = getattr(response, "headers", None)
    return headers if headers is not None else {}


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Tell whether the request provably never reached the server (connection refused)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    from urllib3.exceptions import NewConnectionError

    return isinstance(reason, NewConnectionError) or "Connection refused" in str(exc)


# ---- key check (the API's one signed read-only call) ------------------------------------


def endpoints_for(settings: Settings, environment: str) -> tuple[str | None, str | None]:
    """Return (REST API_URL override, WS-API URL override) of one exchange environment."""
    if environment == "paper":
        if not settings.paper_exchange_url:
            raise ExchangeUnavailable("the paper exchange's URL is unknown "
                                      "(TRADELEDGER_PAPER_EXCHANGE_URL)", maybe_sent=False)
        base = settings.paper_exchange_url.rstrip("/")
        ws_base = "ws" + base[4:] if base.startswith("http") else base
        return base + "/api", ws_base + "/ws-api/v3"
    return None, None


def check_keys(settings: Settings, api_key: str, secret_key: str, environment: str) -> None:
    """Ask the exchange of `environment` whether these keys work: one signed read-only call.

    GET /api/v3/account, as python-binance's `get_account`. Raises ExchangeKeysRejected with
    the exchange's reason when it refuses them (-2014 format, -2015 key/IP/permissions, -1022
    signature, ...), ExchangeUnavailable when it cannot be asked (down, timeout, rate limit).
    Never sends an order.
    """
    api_url, ws_api_url = endpoints_for(settings, environment)
    gateway = BinanceGateway(environment, api_url, ws_api_url, retries=1, backoff=0.2,
                             timeout=(3.05, 10.0))
    creds = ExchangeCredentials(api_key, secret_key, environment)
    try:
        gateway.account_balances(creds)
    except ExchangeRejected as exc:
        if exc.transient:  # rate limit or clock drift: says nothing about the keys
            raise ExchangeUnavailable(
                f"the {environment} exchange could not check the keys now: "
                f"{exc.exchange_code} {exc.message}", maybe_sent=False) from None
        raise ExchangeKeysRejected(
            f"the {environment} exchange rejected these keys: {exc.message}",
            field="apiKey", exchangeCode=exc.exchange_code, reason=exc.message,
            environment=environment) from None
    except ExchangeUnavailable as exc:
        raise ExchangeUnavailable(
            f"the {environment} exchange cannot be reached to check the keys; nothing was "
            "stored, try again later", maybe_sent=False, environment=environment) from exc
    finally:
        gateway.close()
