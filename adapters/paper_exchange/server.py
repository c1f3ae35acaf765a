"""The paper exchange's HTTP and websocket server (aiohttp): Binance's spot REST API, market
streams, the WS-API user-data stream, and admin endpoints for keys, prices, faults, rate
limits, exchangeInfo changes, resets and WS-API connection events."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

from adapters.paper_exchange import errors as e
from adapters.paper_exchange import filters as symbol_filters
from adapters.paper_exchange import formats
from adapters.paper_exchange.engine import Engine, OcoLeg, OcoRequest, OrderRequest
from adapters.paper_exchange.filters import SymbolState
from adapters.paper_exchange.limits import LimitSettings, RateLimiter
from adapters.paper_exchange.market import INTERVALS, MarketSimulator
from adapters.paper_exchange.markets import DEFAULT_MARKETS, Market
from adapters.paper_exchange.models import Account, fmt
from adapters.paper_exchange.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
R = TypeVar("R")
DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INT_RANGE = r"^[0-9]{1,20}$"
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
STREAM_RE = re.compile(r"^([a-z0-9]+)@(kline_(1m|5m|15m|1h|4h|1d|1w)|ticker)$")
MAX_RECV_WINDOW = 60_000
MAX_LATE_MS = 15_000
MAX_DECIMALS = 8  # baseAssetPrecision / quotePrecision of every symbol served
ADMIN_TOKEN_HEADER = "X-TradeLedger-Admin-Token"  # noqa: S105 - a header name
SHUTDOWN_CLOSE_SECONDS = 1.0
ORDER_COUNTS = web.RequestKey("order_counts", tuple)  # set by POST order for the headers
# Binance's weights (rest-api.md); endpoints whose weight depends on a parameter are below.
WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 20, "klines": 2, "uiKlines": 2,
           "avgPrice": 2, "allOrders": 20, "account": 20, "openOrderList": 6}
WS_WEIGHTS = {"ping": 1, "time": 1, "userDataStream.subscribe.signature": 2,
              "userDataStream.unsubscribe": 2, "session.subscriptions": 2,
              "order.place": 1, "order.cancel": 1, "order.status": 4}
# The WS-API's trading methods, served as REST's /api/v3/order (its faults included).
WS_ORDER_METHODS = frozenset({"order.place", "order.cancel", "order.status"})


def now_ms() -> int:
    """Return the wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


@dataclass
class Fault:
    """A test-injected failure of the order endpoints, active until `until` (monotonic)."""

    mode: str = "none"  # "hang", "error503", "timeout", "late", "query_lag" or "none"
    until: float = 0.0
    execute: bool = False
    endpoints: frozenset[str] = frozenset({"order"})
    delay_ms: int = 0  # late: how long after its 503 an order executes
    lag_ms: int = 0  # query_lag: how long queries miss an order

    @property
    def active(self) -> bool:
        """Tell whether the fault's window is open."""
        return self.mode != "none" and time.monotonic() < self.until

    def applies(self, path: str) -> bool:
        """Tell whether a request to `path` is hit by this fault now."""
        if self.mode == "none" or time.monotonic() >= self.until:
            return False
        return path.removeprefix("/api/v3/") in self.endpoints

    def to_json(self) -> dict[str, Any]:
        """Describe the fault for the admin endpoint."""
        left = max(0.0, self.until - time.monotonic()) if self.mode != "none" else 0.0
        body: dict[str, Any] = {"mode": self.mode if left else "none",
                                "secondsLeft": round(left, 3)}
        if self.mode == "late":
            body["delayMs"] = self.delay_ms
        elif self.mode == "query_lag":
            body["lagMs"] = self.lag_ms
        else:
            body.update(execute=self.execute, endpoints=sorted(self.endpoints))
        return body


@dataclass
class _Subscriber:
    """One websocket client of the market streams."""

    queue: asyncio.Queue[str]
    combined: bool
    streams: set[str] = field(default_factory=set)


@dataclass(eq=False)
class _UserSession:
    """One WS-API connection: its outgoing queue and user-data subscriptions (id -> key)."""

    queue: asyncio.Queue[str]
    ws: web.WebSocketResponse
    ip: str
    subscriptions: dict[int, str] = field(default_factory=dict)
    next_id: int = 0
    # Requests answered later (a fault holds them): cancelled when the connection closes.
    pending: set[asyncio.Task[None]] = field(default_factory=set)


class PaperExchange:
    """The server: one aiohttp app on one port for REST, streams, WS-API and admin."""

    def __init__(self, state_dir: Path, seed: int = 7, tick_ms: int = 250,
                 history_days: int = 30, markets: dict[str, Market] | None = None,
                 limits: LimitSettings | None = None,
                 commission_rate: Decimal = Decimal(0),
                 admin_token: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.seed = seed
        self.tick_ms = tick_ms
        self.history_days = history_days
        # A copy: admin changes to filters must not leak into the shared default table.
        self.markets = dict(markets or DEFAULT_MARKETS)
        self.states = {symbol: SymbolState() for symbol in self.markets}
        self.limiter = RateLimiter(limits)
        self.commission_rate = commission_rate
        self.admin_token = admin_token or None
        self.fault = Fault()
        self.late = Fault()
        self.query_lag = Fault()
        self._late_orders: set[asyncio.TimerHandle] = set()
        self._sessions: set[_UserSession] = set()
        self._subscribers: list[_Subscriber] = []
        # WS-API connections by the API keys they follow: an event goes only to those.
        self._followers: dict[str, list[_UserSession]] = {}
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._store: Store | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Load or create the state, then listen on host:port (0 picks a free port)."""
        self._store = Store(self.state_dir)
        saved_seed = self._store.get_meta("seed")
        if saved_seed is not None:
            self.seed = int(saved_seed)  # a state dir keeps the market it was born with
        with self._store.transaction():
            self._store.set_meta("seed", str(self.seed))
        self.market = MarketSimulator(self._store, self.markets, self.seed, self.history_days,
                                      now_ms())
        self.engine = Engine(self._store, self.market, self.markets, now_ms, self.states,
                             self.commission_rate)
        self.engine.sinks.append(self._user_event)
        if host not in ("127.0.0.1", "::1", "localhost") and not self.admin_token:
            log.warning("paper exchange bound to %s without an admin token: admin controls "
                        "answer loopback callers only (set TRADELEDGER_PAPER_ADMIN_TOKEN)", host)
        app = web.Application(middlewares=[self._serve, self._faults])
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        """Stop ticking, close connections and persist the open candles."""
        for handle in self._late_orders:
            handle.cancel()
        self._late_orders.clear()
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner:
            await self._runner.cleanup()
        if self._store:
            self.market.roll(now_ms())
            self.market.save_open_candles()
            self._store.close()
            self._store = None

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000)
            try:
                now = now_ms()
                for symbol in self.market.step(now, self.tick_ms):
                    self.engine.match(symbol)
                self._publish(now)
            except Exception:
                log.exception("paper exchange tick failed")

    def _routes(self, app: web.Application) -> None:
        r = app.router
        api = "/api/v3/"
        r.add_get(api + "ping", self.ping)
        r.add_get(api + "time", self.server_time)
        r.add_get(api + "exchangeInfo", self.exchange_info)
        r.add_get(api + "klines", self.klines)
        r.add_get(api + "uiKlines", self.klines)
        r.add_get(api + "ticker/price", self.ticker_price)
        r.add_get(api + "ticker/24hr", self.ticker_24h)
        r.add_get(api + "avgPrice", self.avg_price)
        r.add_post(api + "order", self.new_order)
        r.add_get(api + "order", self.query_order)
        r.add_delete(api + "order", self.cancel_order)
        r.add_get(api + "openOrders", self.open_orders)
        r.add_post(api + "orderList/oco", self.new_oco)
        r.add_get(api + "orderList", self.query_order_list)
        r.add_delete(api + "orderList", self.cancel_order_list)
        r.add_get(api + "openOrderList", self.open_order_lists)
        r.add_get(api + "allOrders", self.all_orders)
        r.add_get(api + "myTrades", self.my_trades)
        r.add_get(api + "account", self.account)
        r.add_get("/ws", self.market_ws)
        r.add_get("/ws/{streams}", self.market_ws)
        r.add_get("/stream", self.market_ws)
        r.add_get("/ws-api/v3", self.ws_api)
        r.add_post("/admin/keys", self.admin_keys)
        r.add_post("/admin/price", self.admin_price)
        r.add_post("/admin/faults", self.admin_faults)
        r.add_get("/admin/faults", self.admin_faults)
        r.add_post("/admin/limits", self.admin_limits)
        r.add_get("/admin/limits", self.admin_limits)
        r.add_post("/admin/exchange-info", self.admin_exchange_info)
        r.add_post("/admin/commission", self.admin_commission)
        r.add_get("/admin/commission", self.admin_commission)
        r.add_post("/admin/reset", self.admin_reset)
        r.add_post("/admin/ws", self.admin_ws)
        r.add_get("/admin/orders", self.admin_orders)

    # -- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Guard admin calls, count rate limits and answer errors as Binance does.

        One middleware rather than three: each layer costs a coroutine per request, and the
        exchange's CPU per order is what the bench watches.
        """
        path = request.path
        if not path.startswith("/api/"):
            if path.startswith("/admin/"):
                refusal = self._admin_refusal(request)
                if refusal is not None:
                    return web.json_response({"code": -2015, "msg": refusal}, status=403)
            return await self._answer(request, handler)
        try:
            used = self.limiter.weight(request.remote or "", _weight(request))
        except e.BinanceError as err:
            return _error_response(err)
        response = await self._answer(request, handler)
        headers = response.headers
        headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        counts = request.get(ORDER_COUNTS)
        if counts is not None:
            headers["X-MBX-ORDER-COUNT-10S"] = str(counts[0])
            headers["X-MBX-ORDER-COUNT-1D"] = str(counts[1])
        return response

    @staticmethod
    async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except e.BinanceError as err:
            return _error_response(err)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("paper exchange request failed: %s %s", request.method, request.path)
            return web.json_response(
                {"code": -1000, "msg": "An unknown error occurred while processing the request."},
                status=500)

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.fault.applies(request.path):
            return await handler(request)

        async def run() -> web.StreamResponse:
            try:
                return await handler(request)
            except e.BinanceError as err:
                return web.json_response(err.body(), status=err.status)

        return await self._faulted(
            run, lambda err: web.json_response(err.body(), status=err.status))

    async def _faulted(self, run: Callable[[], Awaitable[R]],
                          fail: Callable[[e.BinanceError], R]) -> R:
        """Answer a request hit by the fault in force, the same for REST and the WS-API.

        `run` executes the request (when the fault says it executes) and returns its answer;
        `fail` turns the fault's error into an answer.
        """
        fault = self.fault
        response: R | None = None
        if fault.execute:
            response = await run()
        if fault.mode == "hang":
            await asyncio.sleep(max(0.0, fault.until - time.monotonic()))
            if response is not None:
                return response
            return fail(e.error(e.BACKEND_TIMEOUT, 503))
        if fault.mode == "timeout":
            return fail(e.error(e.BACKEND_TIMEOUT, 408))
        return fail(e.error(e.SERVICE_UNAVAILABLE, 503))

    def _admin_refusal(self, request: web.Request) -> str | None:
        """Say why an admin request is refused, or None to let it through.

        With a token configured (needed once the exchange is bound beyond loopback) every
        caller must send it; without one, only loopback callers get in.
        """
        if self.admin_token is not None:
            sent = request.headers.get(ADMIN_TOKEN_HEADER, "")
            if hmac.compare_digest(sent.encode(), self.admin_token.encode()):
                return None
            return f"Admin needs the {ADMIN_TOKEN_HEADER} header."
        if request.remote in LOOPBACK:
            return None
        return "Admin is loopback only (set an admin token to reach it from elsewhere)."

    # -- parameters and auth --------------------------------------------------------------

    @staticmethod
    async def _params(request: web.Request) -> dict[str, str]:
        params = dict(parse_qsl(request.query_string, keep_blank_values=True))
        if request.method != "GET" and request.body_exists:
            params.update(parse_qsl(await request.text(), keep_blank_values=True))
        return params

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        """Authenticate a signed request: API key, HMAC-SHA256 signature, recvWindow."""
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise e.error(e.BAD_KEY_FORMAT, 401)
        account = self.engine.accounts.get(key)
        if account is None:
            raise e.error(e.BAD_KEY, 401)
        query = request.query_string
        body = await request.text() if request.method != "GET" and request.body_exists else ""
        params = await self._params(request)
        signature = params.pop("signature", "")
        timestamp = _int(params, "timestamp", required=True)
        recv_window = _int(params, "recvWindow") or 5000
        if recv_window > MAX_RECV_WINDOW:
            raise e.error(e.RECV_WINDOW_TOO_LARGE)
        if not signature:
            raise e.mandatory("signature")
        # Binance signs the query string followed by the body, exactly as sent (so
        # percent-encoded), minus the signature: the one form the Testnet accepts since
        # 2025-12-17.
        payload = _strip_signature(query) + _strip_signature(body)
        if not _signature_ok(account.secret, signature, payload):
            raise e.error(e.BAD_SIGNATURE)
        now = now_ms()
        assert timestamp is not None
        if timestamp > now + 1000:
            raise e.error(e.AHEAD_OF_SERVER)
        if now - timestamp > recv_window:
            raise e.error(e.OUTSIDE_RECV_WINDOW)
        return account, params

    def _symbol(self, params: dict[str, str], required: bool = True) -> str | None:
        symbol = params.get("symbol", "")
        if not symbol:
            if required:
                raise e.mandatory("symbol")
            return None
        if symbol.upper() not in self.markets:
            raise e.error(e.INVALID_SYMBOL)
        return symbol.upper()

    def _symbols(self, params: dict[str, str]) -> list[str]:
        """Return the symbols a market-data request asks for (`symbol`, `symbols` or all)."""
        if "symbols" in params:
            try:
                wanted = json.loads(params["symbols"])
            except ValueError:
                raise e.illegal("symbols", '["BTCUSDT","ETHUSDT"]') from None
            if not isinstance(wanted, list):
                raise e.illegal("symbols", '["BTCUSDT","ETHUSDT"]')
            for s in wanted:
                if str(s).upper() not in self.markets:
                    raise e.error(e.INVALID_SYMBOL)
            return [str(s).upper() for s in wanted]
        symbol = self._symbol(params, required=False)
        return [symbol] if symbol else list(self.markets)

    # -- market data ----------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        """GET /api/v3/ping."""
        return web.json_response({})

    async def server_time(self, request: web.Request) -> web.Response:
        """GET /api/v3/time."""
        return web.json_response({"serverTime": now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        """GET /api/v3/exchangeInfo."""
        params = await self._params(request)
        symbols = self._symbols(params)
        markets = {s: self.markets[s] for s in symbols}
        return web.json_response(formats.exchange_info(
            markets, self.states, self.limiter.settings.rate_limits(), now_ms()))

    async def klines(self, request: web.Request) -> web.Response:
        """GET /api/v3/klines: 12-element arrays, strings for decimals."""
        params = await self._params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        name = params.get("interval", "")
        if not name:
            raise e.mandatory("interval")
        if name not in INTERVALS:
            raise e.error(e.INVALID_INTERVAL)
        limit = min(_int(params, "limit") or 500, 1000)
        interval = INTERVALS[name]
        rows = self.market.klines(symbol, interval, _int(params, "startTime"),
                                  _int(params, "endTime"), limit)
        return web.json_response([self.market.kline_array(symbol, r, interval) for r in rows])

    async def ticker_price(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/price."""
        params = await self._params(request)
        bodies = [{"symbol": s, "price": fmt(self.market.price(s))} for s in self._symbols(params)]
        return web.json_response(bodies[0] if "symbol" in params else bodies)

    async def ticker_24h(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/24hr."""
        params = await self._params(request)
        now = now_ms()
        bodies = [self.market.ticker_24h(s, now) for s in self._symbols(params)]
        return web.json_response(bodies[0] if "symbol" in params else bodies)

    async def avg_price(self, request: web.Request) -> web.Response:
        """GET /api/v3/avgPrice."""
        params = await self._params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        return web.json_response({"mins": 5, "price": fmt(self.market.avg_price(symbol)),
                                  "closeTime": now_ms()})

    # -- trading --------------------------------------------------------------------------

    async def new_order(self, request: web.Request) -> web.Response:
        """POST /api/v3/order: MARKET, LIMIT, LIMIT_MAKER, STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT."""
        account, params = await self._signed(request)
        req, resp_type = self._order_request(params)
        request[ORDER_COUNTS] = self.limiter.order(request.remote or "", account.api_key)
        return web.json_response(self._new_order(account, req, resp_type))

    def _order_request(self, params: dict[str, str]) -> tuple[OrderRequest, str]:
        """Read a new order's parameters (REST and WS-API alike) and its response type."""
        symbol = self._symbol(params)
        assert symbol is not None
        for name in ("side", "type"):
            if not params.get(name):
                raise e.mandatory(name)
        resp_type = params.get("newOrderRespType") or "FULL"
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise e.illegal("newOrderRespType", "ACK, RESULT, FULL")
        return OrderRequest(
            symbol=symbol, side=params["side"].upper(), type=params["type"].upper(),
            time_in_force=params.get("timeInForce") or None,
            quantity=_decimal(params, "quantity"),
            quote_order_qty=_decimal(params, "quoteOrderQty"),
            price=_decimal(params, "price"),
            client_order_id=params.get("newClientOrderId") or None,
            stop_price=_decimal(params, "stopPrice"),
        ), resp_type

    def _new_order(self, account: Account, req: OrderRequest, resp_type: str) -> Any:
        """Execute a counted new order and return its answer (503 -1007 while `late`)."""
        if self.late.active:
            self._place_late(account, req, self.late.delay_ms / 1000)
            raise e.error(e.BACKEND_TIMEOUT, 503)
        order, fills = self._place(account, req)
        if resp_type == "ACK":
            return formats.order_ack(order)
        if resp_type == "RESULT":
            return formats.order_result(order)
        return formats.order_full(order, fills)

    async def new_oco(self, request: web.Request) -> web.Response:
        """POST /api/v3/orderList/oco: a LIMIT_MAKER or TAKE_PROFIT_LIMIT leg and a
        STOP_LOSS_LIMIT leg, one above and one below the market; counts as two orders."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        assert symbol is not None
        for name in ("side", "aboveType", "belowType"):
            if not params.get(name):
                raise e.mandatory(name)

        def leg(prefix: str) -> OcoLeg:
            return OcoLeg(type=params[prefix + "Type"].upper(),
                          price=_decimal(params, prefix + "Price"),
                          stop_price=_decimal(params, prefix + "StopPrice"),
                          time_in_force=params.get(prefix + "TimeInForce") or None,
                          client_order_id=params.get(prefix + "ClientOrderId") or None)

        req = OcoRequest(symbol=symbol, side=params["side"].upper(),
                         quantity=_decimal(params, "quantity"), above=leg("above"),
                         below=leg("below"),
                         list_client_order_id=params.get("listClientOrderId") or None)
        for _ in range(2):
            request[ORDER_COUNTS] = self.limiter.order(request.remote or "", account.api_key)
        if self.late.active:
            self._run_late(lambda: self.engine.place_oco(account, req),
                           self.late.delay_ms / 1000)
            return _error_response(e.error(e.BACKEND_TIMEOUT, 503))
        legs = self.engine.place_oco(account, req)
        if self.query_lag.active:
            for order in legs:
                self.engine.hide(order.order_id, self.query_lag.lag_ms / 1000)
        return web.json_response({**formats.order_list(legs, now_ms()),
                                  "orderReports": [formats.order_result(o) for o in legs]})

    def _list_ref(self, params: dict[str, str]) -> tuple[int | None, str | None]:
        list_id = _int(params, "orderListId")
        client_id = params.get("origClientOrderId") or params.get("listClientOrderId") or None
        if list_id is None and client_id is None:
            raise e.BinanceError(-1102, "Param 'origClientOrderId' or 'orderListId' must be "
                                 "sent, but both were empty/null!")
        return list_id, client_id

    async def query_order_list(self, request: web.Request) -> web.Response:
        """GET /api/v3/orderList by orderListId or origClientOrderId."""
        account, params = await self._signed(request)
        list_id = self.engine.get_list(account, *self._list_ref(params))
        return web.json_response(formats.order_list(self.engine.list_legs(list_id), now_ms()))

    async def cancel_order_list(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/orderList by orderListId or listClientOrderId: both legs."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        assert symbol is not None
        list_id = self.engine.cancel_list(account, symbol, *self._list_ref(params))
        legs = self.engine.list_legs(list_id)
        now = now_ms()
        return web.json_response({**formats.order_list(legs, now), "orderReports": [
            formats.order_canceled(o, o.client_order_id, o.client_order_id, now)
            for o in legs]})

    async def open_order_lists(self, request: web.Request) -> web.Response:
        """GET /api/v3/openOrderList."""
        account, _ = await self._signed(request)
        now = now_ms()
        return web.json_response([formats.order_list(self.engine.list_legs(i), now)
                                  for i in self.engine.open_lists(account)])

    def _place(self, account: Account, req: OrderRequest) -> tuple[Any, Any]:
        """Place an order; during query_lag, queries miss it for a while."""
        order, fills = self.engine.place_order(account, req)
        if self.query_lag.active:
            self.engine.hide(order.order_id, self.query_lag.lag_ms / 1000)
        return order, fills

    def _place_late(self, account: Account, req: OrderRequest, delay: float) -> None:
        """Execute an order `delay` seconds from now (its answer was a 503 -1007)."""
        self._run_late(lambda: self._place(account, req), delay)

    def _run_late(self, place: Callable[[], Any], delay: float) -> None:
        """Place an order (or list) `delay` seconds from now (its answer was a 503 -1007)."""
        def execute() -> None:
            self._late_orders.discard(handle)
            try:
                place()
            except e.BinanceError as err:  # the engine refused it: it never exists
                log.info("late order refused by the engine: %s", err.msg)
            except Exception:
                log.exception("late order failed")

        handle = asyncio.get_running_loop().call_later(delay, execute)
        self._late_orders.add(handle)

    def _order_ref(self, params: dict[str, str]) -> tuple[str, int | None, str | None]:
        symbol = self._symbol(params)
        assert symbol is not None
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise e.BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                 "but both were empty/null!")
        return symbol, order_id, client_id

    async def query_order(self, request: web.Request) -> web.Response:
        """GET /api/v3/order by orderId or origClientOrderId."""
        account, params = await self._signed(request)
        return web.json_response(self._query_order(account, params))

    def _query_order(self, account: Account, params: dict[str, str]) -> Any:
        symbol, order_id, client_id = self._order_ref(params)
        return formats.order_status(self.engine.get_order(account, symbol, order_id, client_id))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/order by orderId or origClientOrderId."""
        account, params = await self._signed(request)
        return web.json_response(self._cancel_order(account, params))

    def _cancel_order(self, account: Account, params: dict[str, str]) -> Any:
        symbol, order_id, client_id = self._order_ref(params)
        cancel_id = params.get("newClientOrderId") or None
        order = self.engine.cancel_order(account, symbol, order_id, client_id, cancel_id)
        return formats.order_canceled(
            order, order.client_order_id, cancel_id or order.client_order_id, now_ms())

    async def open_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/openOrders."""
        account, params = await self._signed(request)
        orders = self.engine.open_orders(account, self._symbol(params, required=False))
        return web.json_response([formats.order_status(o) for o in orders])

    async def all_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/allOrders."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        assert symbol is not None
        orders = self.engine.all_orders(
            account, symbol, _int(params, "orderId"), _int(params, "startTime"),
            _int(params, "endTime"), min(_int(params, "limit") or 500, 1000))
        return web.json_response([formats.order_status(o) for o in orders])

    async def my_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/myTrades."""
        account, params = await self._signed(request)
        symbol = self._symbol(params)
        assert symbol is not None
        trades = self.engine.my_trades(
            account, symbol, _int(params, "orderId"), _int(params, "fromId"),
            _int(params, "startTime"), _int(params, "endTime"),
            min(_int(params, "limit") or 500, 1000))
        lists = {t.order_id: self.engine.orders[t.order_id].order_list_id
                 for t in trades if t.order_id in self.engine.orders}
        return web.json_response([formats.my_trade(t, lists.get(t.order_id, -1))
                                  for t in trades])

    async def account(self, request: web.Request) -> web.Response:
        """GET /api/v3/account."""
        account, params = await self._signed(request)
        omit = params.get("omitZeroBalances", "false").lower() == "true"
        return web.json_response(formats.account_info(account, now_ms(), omit,
                                                      self.engine.commission_rate))

    # -- market streams -------------------------------------------------------------------

    async def market_ws(self, request: web.Request) -> web.StreamResponse:
        """Serve /ws/<stream>[/<stream>...], /stream?streams=a/b and /ws with SUBSCRIBE."""
        combined = request.path == "/stream"
        raw = request.query.get("streams", "") if combined else request.match_info.get(
            "streams", "")
        streams = {s for s in raw.split("/") if s}
        if any(not self._valid_stream(s) for s in streams):
            raise web.HTTPBadRequest(text=json.dumps({"code": -1121, "msg": "Invalid symbol."}))
        ws = web.WebSocketResponse(heartbeat=30, compress=False)  # see ws_api
        await ws.prepare(request)
        sub = _Subscriber(asyncio.Queue(maxsize=1000), combined, streams)
        self._subscribers.append(sub)
        writer = asyncio.create_task(_drain(sub.queue, ws))
        self._publish(now_ms(), only=sub)  # the first update at once, not after a tick
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._control(sub, msg.data)
        finally:
            self._subscribers.remove(sub)
            writer.cancel()
        return ws

    def _valid_stream(self, name: str) -> bool:
        m = STREAM_RE.match(name)
        return bool(m) and m is not None and m.group(1).upper() in self.markets

    def _control(self, sub: _Subscriber, data: str) -> None:
        """Answer SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market stream."""
        try:
            msg = json.loads(data)
            method, params, req_id = msg["method"], msg.get("params", []), msg.get("id")
        except (ValueError, KeyError, TypeError):
            _put(sub.queue, json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        result: Any = None
        if method == "SUBSCRIBE":
            valid = [s for s in params if isinstance(s, str) and self._valid_stream(s)]
            sub.streams.update(valid)
        elif method == "UNSUBSCRIBE":
            sub.streams.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(sub.streams)
        else:
            _put(sub.queue, json.dumps({"error": {"code": 2, "msg": "Invalid request"},
                                        "id": req_id}))
            return
        _put(sub.queue, json.dumps({"result": result, "id": req_id}))

    def _publish(self, now: int, only: _Subscriber | None = None) -> None:
        subs = [only] if only else self._subscribers
        payloads: dict[str, str] = {}
        for sub in subs:
            for name in sorted(sub.streams):
                if name not in payloads:
                    payloads[name] = json.dumps(self._stream_payload(name, now))
                data = payloads[name]
                if sub.combined:
                    data = f'{{"stream":{json.dumps(name)},"data":{data}}}'
                _put(sub.queue, data)

    def _stream_payload(self, name: str, now: int) -> dict[str, Any]:
        symbol, kind = name.split("@", 1)
        if kind == "ticker":
            return self.market.ticker_event(symbol.upper(), now)
        return self.market.kline_event(symbol.upper(), kind.removeprefix("kline_"), now)

    # -- WS-API (user-data stream and trading) --------------------------------------------

    async def ws_api(self, request: web.Request) -> web.StreamResponse:
        """Serve the WS-API's user-data stream methods and order.place / cancel / status."""
        # No permessage-deflate: on a local socket compressing every event costs both ends
        # CPU for nothing (Binance may offer it; clients must work either way).
        ws = web.WebSocketResponse(heartbeat=30, compress=False)
        await ws.prepare(request)
        session = _UserSession(asyncio.Queue(maxsize=10_000), ws, request.remote or "")
        self._sessions.add(session)
        writer = asyncio.create_task(_drain(session.queue, ws))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                followed = set(session.subscriptions.values())
                answer = self._ws_api_call(msg.data, session)
                if answer is not None:  # None: a fault answers it later
                    _put(session.queue, json.dumps(answer))
                self._refollow(session, followed)
        finally:
            for task in list(session.pending):
                task.cancel()
            self._sessions.discard(session)
            followed = set(session.subscriptions.values())
            session.subscriptions.clear()
            self._refollow(session, followed)
            writer.cancel()
        return ws

    def _refollow(self, session: _UserSession, followed: set[str]) -> None:
        """Update `_followers` after the keys a session follows may have changed."""
        now = set(session.subscriptions.values())
        for key in followed - now:
            sessions = self._followers[key]
            sessions.remove(session)
            if not sessions:
                del self._followers[key]
        for key in now - followed:
            self._followers.setdefault(key, []).append(session)

    def _user_event(self, api_key: str, event: dict[str, Any]) -> None:
        """The engine's sink: queue a user-data event for the sessions following its key.

        The event is serialized once, whatever the number of subscriptions.
        """
        sessions = self._followers.get(api_key)
        if not sessions:
            return
        data = json.dumps(event)
        for session in sessions:
            for sid, key in session.subscriptions.items():
                if key == api_key:  # as json.dumps({"subscriptionId": sid, "event": event})
                    _put(session.queue, f'{{"subscriptionId": {sid}, "event": {data}}}')

    def _ws_api_call(self, data: str, session: _UserSession) -> dict[str, Any] | None:
        try:
            msg = json.loads(data)
            req_id, method = msg.get("id"), msg["method"]
            params = msg.get("params") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return _ws_error(None, e.BinanceError(-1000, "Malformed request."))
        if not isinstance(params, dict):
            return _ws_error(req_id, e.illegal("params", "a JSON object"))
        try:
            used = self.limiter.weight(session.ip, WS_WEIGHTS.get(str(method), 1))
        except e.BinanceError as err:
            return _ws_error(req_id, err, self.limiter.used_weight(session.ip))
        if method in WS_ORDER_METHODS:
            if self.fault.applies("/api/v3/order"):
                self._ws_order_faulted(req_id, str(method), params, session, used)
                return None
            return self._ws_order(req_id, str(method), params, session, used)
        try:
            if method == "ping":
                result: Any = {}
            elif method == "time":
                result = {"serverTime": now_ms()}
            elif method == "userDataStream.subscribe.signature":
                account, _ = self._ws_signed(params)
                sid = session.next_id
                session.next_id += 1
                session.subscriptions[sid] = account.api_key
                result = {"subscriptionId": sid}
            elif method == "userDataStream.unsubscribe":
                if "subscriptionId" in params:
                    sid_text = str(params["subscriptionId"])
                    if not re.fullmatch(INT_RANGE, sid_text):
                        raise e.illegal("subscriptionId", INT_RANGE)
                    session.subscriptions.pop(int(sid_text), None)
                else:
                    session.subscriptions.clear()
                result = {}
            elif method == "session.subscriptions":
                result = [{"subscriptionId": sid} for sid in session.subscriptions]
            else:
                raise e.BinanceError(-1100, f"Illegal characters found in parameter 'method'; "
                                     f"legal range is 'known method'. Got '{method}'.")
        except e.BinanceError as err:
            return _ws_error(req_id, err, used, self.limiter.settings.weight_per_minute)
        return {"id": req_id, "status": 200, "result": result,
                "rateLimits": _ws_rate_limits(used, self.limiter.settings.weight_per_minute)}

    def _ws_order(self, req_id: Any, method: str, params: dict[str, Any],
                  session: _UserSession, used: int) -> dict[str, Any]:
        """Answer order.place / order.cancel / order.status as REST's /api/v3/order.

        The same checks, engine calls and errors; `rateLimits` carries the request weight
        and, for order.place, the account's ORDERS counts (REST's X-MBX-* headers).
        """
        settings = self.limiter.settings
        counts: tuple[int, int] | None = None
        try:
            account, fields = self._ws_signed(params)
            if method == "order.place":
                req, resp_type = self._order_request(fields)
                counts = self.limiter.order(session.ip, account.api_key)
                result = self._new_order(account, req, resp_type)
            elif method == "order.cancel":
                result = self._cancel_order(account, fields)
            else:
                result = self._query_order(account, fields)
        except e.BinanceError as err:
            answer = _ws_error(req_id, err, used, settings.weight_per_minute)
            if counts is not None:
                answer["rateLimits"] = _ws_rate_limits(used, settings.weight_per_minute,
                                                       counts, settings)
            return answer
        return {"id": req_id, "status": 200, "result": result,
                "rateLimits": _ws_rate_limits(used, settings.weight_per_minute, counts,
                                              settings)}

    def _ws_order_faulted(self, req_id: Any, method: str, params: dict[str, Any],
                          session: _UserSession, used: int) -> None:
        """Answer an order method hit by a fault as REST would (later, for a hang)."""
        limit = self.limiter.settings.weight_per_minute

        async def run() -> dict[str, Any]:
            return self._ws_order(req_id, method, params, session, used)

        async def answer() -> None:
            reply = await self._faulted(run, lambda err: _ws_error(req_id, err, used, limit))
            _put(session.queue, json.dumps(reply))

        task = asyncio.get_running_loop().create_task(answer())
        session.pending.add(task)
        task.add_done_callback(session.pending.discard)

    def _ws_signed(self, params: dict[str, Any]) -> tuple[Account, dict[str, str]]:
        """Check a WS-API signature (HMAC over the other params sorted by name); return the
        account and the params as strings."""
        key = str(params.get("apiKey", ""))
        account = self.engine.accounts.get(key)
        if account is None:
            raise e.error(e.BAD_KEY if key else e.BAD_KEY_FORMAT, 401)
        signature = str(params.get("signature", ""))
        if not signature:
            raise e.mandatory("signature")
        signed = sorted((k, str(v)) for k, v in params.items() if k != "signature")
        if not _signature_ok(account.secret, signature, urlencode(signed)):
            raise e.error(e.BAD_SIGNATURE)
        fields = {k: str(v) for k, v in params.items()}
        timestamp = _int(fields, "timestamp", required=True)
        recv_window = _int(fields, "recvWindow") or 5000
        if recv_window > MAX_RECV_WINDOW:
            raise e.error(e.RECV_WINDOW_TOO_LARGE)
        assert timestamp is not None
        now = now_ms()
        if timestamp > now + 1000:
            raise e.error(e.AHEAD_OF_SERVER)
        if now - timestamp > recv_window:
            raise e.error(e.OUTSIDE_RECV_WINDOW)
        return account, fields

    # -- admin ----------------------------------------------------------------------------

    async def admin_keys(self, request: web.Request) -> web.Response:
        """POST /admin/keys: issue an API key pair; body `{"balances": {"USDT": "1000"}}`."""
        body = await _json_body(request)
        balances = body.get("balances")
        amounts = None
        if balances is not None:
            amounts = {str(a).upper(): _admin_decimal(v, "balances") for a, v in balances.items()}
        account = self.engine.issue_keys(amounts)
        return web.json_response({
            "apiKey": account.api_key, "secretKey": account.secret,
            "balances": {a: fmt(b.free) for a, b in sorted(account.balances.items())},
        })

    async def admin_price(self, request: web.Request) -> web.Response:
        """POST /admin/price: `{"symbol", "price", "freeze"?, "liquidity"?}`; fills crossings."""
        body = await _json_body(request)
        symbol = str(body.get("symbol", "")).upper()
        if symbol not in self.markets:
            raise e.error(e.INVALID_SYMBOL)
        price = _admin_decimal(body.get("price"), "price")
        liquidity = body.get("liquidity")
        freeze = body.get("freeze")
        self.market.set_price(symbol, price, now_ms(),
                              None if freeze is None else bool(freeze),
                              None if liquidity is None else _admin_decimal(liquidity,
                                                                            "liquidity"))
        self.engine.match(symbol)
        self._publish(now_ms())
        st = self.market.symbols[symbol]
        return web.json_response({"symbol": symbol, "price": fmt(st.price), "frozen": st.frozen,
                                  "liquidity": None if st.liquidity is None
                                  else fmt(st.liquidity)})

    async def admin_faults(self, request: web.Request) -> web.Response:
        """POST /admin/faults `{"mode", "seconds", ...}`; GET shows the faults in force.

        hang / error503 / timeout (`execute`?, `endpoints`?) replace one another; `late`
        (`delayMs`) and `query_lag` (`lagMs`) run beside them; `none` clears all.
        """
        if request.method == "POST":
            body = await _json_body(request)
            mode = str(body.get("mode", "none"))
            modes = ("hang", "error503", "timeout", "late", "query_lag", "none")
            if mode not in modes:
                raise e.illegal("mode", ", ".join(modes))
            seconds = float(_admin_decimal(body.get("seconds", 0), "seconds"))
            until = time.monotonic() + seconds
            if mode == "late":
                delay = _admin_int(body, "delayMs", 0, MAX_LATE_MS)
                self.late = Fault(mode, until, delay_ms=delay)
                return web.json_response(self.late.to_json())
            if mode == "query_lag":
                lag = _admin_int(body, "lagMs", 0, 600_000)
                self.query_lag = Fault(mode, until, lag_ms=lag)
                return web.json_response(self.query_lag.to_json())
            if mode == "none":
                self.late = Fault()
                self.query_lag = Fault()
            endpoints = body.get("endpoints") or ["order"]
            if not isinstance(endpoints, list):
                raise e.illegal("endpoints", "a list of paths under /api/v3/")
            self.fault = Fault(mode, until, bool(body.get("execute")),
                               frozenset(str(p) for p in endpoints))
        return web.json_response({**self.fault.to_json(), "late": self.late.to_json(),
                                  "queryLag": self.query_lag.to_json()})

    async def admin_limits(self, request: web.Request) -> web.Response:
        """POST /admin/limits `{"ordersPer10s"?, "weightPerMinute"?, "banSeconds"?, ...}`.

        Sets the limits (the others keep their values) and restarts every counter; GET
        shows the limits, the counters and `bans`, the bans issued so far.
        """
        if request.method == "POST":
            body = await _json_body(request)
            old = self.limiter.settings
            names = {"weightPerMinute": "weight_per_minute", "ordersPer10s": "orders_per_10s",
                     "ordersPerDay": "orders_per_day", "banSeconds": "ban_seconds",
                     "backoffTolerance": "backoff_tolerance"}
            unknown = set(body) - set(names)
            if unknown:
                raise e.illegal(sorted(unknown)[0], ", ".join(names))
            values = {attr: _admin_int(body, name, 0 if name == "backoffTolerance" else 1,
                                       10**9, getattr(old, attr))
                      for name, attr in names.items()}
            self.limiter.configure(LimitSettings(**values))
        return web.json_response(self.limiter.snapshot())

    async def admin_exchange_info(self, request: web.Request) -> web.Response:
        """POST /admin/exchange-info `{"symbol", "filters"?, "status"?}`: change a symbol."""
        body = await _json_body(request)
        symbol = str(body.get("symbol", "")).upper()
        if symbol not in self.markets:
            raise e.error(e.INVALID_SYMBOL)
        if "filters" not in body and "status" not in body:
            raise e.mandatory("filters' or 'status")
        market, state = symbol_filters.apply(self.markets[symbol], self.states[symbol],
                                             body.get("filters"), body.get("status"))
        self.markets[symbol] = market
        self.states[symbol] = state
        return web.json_response(formats.exchange_info(
            {symbol: market}, self.states, self.limiter.settings.rate_limits(),
            now_ms())["symbols"][0])

    async def admin_commission(self, request: web.Request) -> web.Response:
        """POST /admin/commission `{"rate": "0.001"}` sets the commission; GET shows it."""
        if request.method == "POST":
            body = await _json_body(request)
            rate = _admin_decimal(body.get("rate"), "rate")
            if rate >= 1:
                raise e.illegal("rate", "a fraction below 1, e.g. 0.001")
            self.engine.commission_rate = rate
        return web.json_response({"rate": str(self.engine.commission_rate)})

    async def admin_reset(self, request: web.Request) -> web.Response:
        """POST /admin/reset: the Testnet's monthly reset (orders, trades, balances, streams)."""
        for handle in self._late_orders:
            handle.cancel()
        self._late_orders.clear()
        removed = self.engine.reset()
        closed = len(self._sessions)
        for session in list(self._sessions):
            await session.ws.close()
        return web.json_response({"ordersRemoved": removed, "connectionsClosed": closed})

    async def admin_ws(self, request: web.Request) -> web.Response:
        """POST /admin/ws `{"event": "serverShutdown" | "eventStreamTerminated"}`.

        serverShutdown goes to every WS-API connection, closed `closeAfterMs` later (default
        1000); eventStreamTerminated ends every user-data subscription (or those of
        `apiKey`), the connections stay open.
        """
        body = await _json_body(request)
        event = body.get("event")
        now = now_ms()
        if event == "serverShutdown":
            delay = _admin_int(body, "closeAfterMs", 0, 60_000,
                               int(SHUTDOWN_CLOSE_SECONDS * 1000)) / 1000
            data = json.dumps({"event": {"e": "serverShutdown", "E": now}})
            sessions = list(self._sessions)
            for session in sessions:
                _put(session.queue, data)
            asyncio.get_running_loop().call_later(
                delay, lambda: [asyncio.ensure_future(s.ws.close()) for s in sessions])
            return web.json_response({"event": event, "connections": len(sessions)})
        if event == "eventStreamTerminated":
            only = body.get("apiKey")
            ended = 0
            data = json.dumps({"e": "eventStreamTerminated", "E": now})
            for session in list(self._sessions):
                followed = set(session.subscriptions.values())
                for sid, key in list(session.subscriptions.items()):
                    if only is None or key == only:
                        _put(session.queue, f'{{"subscriptionId": {sid}, "event": {data}}}')
                        del session.subscriptions[sid]
                        ended += 1
                self._refollow(session, followed)
            return web.json_response({"event": event, "subscriptions": ended})
        raise e.illegal("event", "serverShutdown, eventStreamTerminated")

    async def admin_orders(self, request: web.Request) -> web.Response:
        """GET /admin/orders?clientOrderId=X: every order whose clientOrderId contains X."""
        wanted = request.query.get("clientOrderId", "").lower()
        if not wanted:
            raise e.mandatory("clientOrderId")
        return web.json_response([
            {**formats.order_status(o), "apiKey": o.api_key}
            for o in self.engine.orders.values() if wanted in o.client_order_id.lower()])


# -- helpers ------------------------------------------------------------------------------


def _put(queue: asyncio.Queue[str], data: str) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses updates, not us
        queue.put_nowait(data)


async def _drain(queue: asyncio.Queue[str], ws: web.WebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while not ws.closed:
            await ws.send_str(await queue.get())


def _ws_rate_limits(used: int, limit: int, counts: tuple[int, int] | None = None,
                    settings: LimitSettings | None = None) -> list[dict[str, Any]]:
    """Return a WS-API answer's `rateLimits`: the weight, and the ORDERS counts if given."""
    limits: list[dict[str, Any]] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": limit, "count": used}]
    if counts is not None and settings is not None:
        limits.append({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                       "limit": settings.orders_per_10s, "count": counts[0]})
        limits.append({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                       "limit": settings.orders_per_day, "count": counts[1]})
    return limits


def _ws_error(req_id: Any, err: e.BinanceError, used: int = 0,
              limit: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = err.body()
    if err.retry_after is not None:  # as Binance's WS-API: when to retry, in ms
        body["data"] = {"serverTime": now_ms(), "retryAfter": now_ms() + err.retry_after * 1000}
    answer: dict[str, Any] = {"id": req_id, "status": err.status, "error": body}
    if limit:
        answer["rateLimits"] = _ws_rate_limits(used, limit)
    return answer


def _error_response(err: e.BinanceError) -> web.Response:
    """Answer a Binance error, with Retry-After and the used weight for 429/418."""
    headers: dict[str, str] = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    if err.used_weight is not None:
        headers["X-MBX-USED-WEIGHT-1M"] = str(err.used_weight)
    return web.json_response(err.body(), status=err.status, headers=headers)


def _weight(request: web.Request) -> int:
    """Return Binance's request weight of a REST call."""
    name = request.path.removeprefix("/api/v3/")
    weight = WEIGHTS.get(name)
    if weight is not None:
        return weight
    if name in ("order", "orderList"):
        return 4 if request.method == "GET" else 1
    query = request.query
    if name == "openOrders":
        return 6 if query.get("symbol") else 80
    if name == "myTrades":
        return 5 if query.get("orderId") else 20
    if name in ("ticker/price", "ticker/24hr"):
        if query.get("symbol"):
            return 2
        return 4 if name == "ticker/price" else 80
    return 1


def _strip_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def _signature_ok(secret: str, signature: str, payload: str) -> bool:
    """Compare against the HMAC of the payload exactly as sent (the one canonical form)."""
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest, signature.lower())


def _int(params: dict[str, str], name: str, required: bool = False) -> int | None:
    value = params.get(name, "")
    if value == "":
        if required:
            raise e.mandatory(name)
        return None
    if not re.fullmatch(INT_RANGE, value):
        raise e.illegal(name, INT_RANGE)
    return int(value)


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    value = params.get(name, "")
    if value == "":
        return None
    if not re.fullmatch(DECIMAL_RANGE, value):
        raise e.illegal(name, DECIMAL_RANGE)
    point = value.find(".")
    if point >= 0 and len(value[point + 1:].rstrip("0")) > MAX_DECIMALS:
        raise e.too_precise(name)
    return Decimal(value)


def _admin_decimal(value: object, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise e.illegal(name, "a decimal string") from None
    if not result.is_finite() or result < 0:
        raise e.illegal(name, "a non-negative decimal string")
    return result


def _admin_int(body: dict[str, Any], name: str, low: int, high: int,
               default: int | None = None) -> int:
    value = body.get(name)
    if value is None:
        if default is None:
            raise e.mandatory(name)
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise e.illegal(name, f"an integer from {low} to {high}")
    try:
        number = float(value)
    except ValueError:
        raise e.illegal(name, f"an integer from {low} to {high}") from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise e.illegal(name, f"an integer from {low} to {high}")
    return int(number)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise e.illegal("body", "a JSON object") from None
    if not isinstance(body, dict):
        raise e.illegal("body", "a JSON object")
    return body
