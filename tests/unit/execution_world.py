"""An in-memory exchange with Binance's habits (late execution, query lag, throttling, a
reset) and a world around the execution manager, for the unit tests (no I/O)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

from commands.application import TradingApplication
from commands.execution import (
    DriveResult,
    ExecutionManager,
    RetryPolicy,
)
from commands.messages import (
    ConnectExchangeKeys,
    PlaceOrder,
    RegisterAccount,
)
from commands.ports import (
    ExchangeCredentials,
    ExchangeFill,
    ExchangeOrderHistory,
    ExchangeOrderListRequest,
    ExchangeOrderReport,
    ExchangeOrderRequest,
    ExchangeOrderStatus,
)
from domain.errors import (
    ExchangeDuplicateOrder,
    ExchangeOrderUnknown,
    ExchangeRejected,
    ExchangeUnavailable,
)
from domain.values import OrderStatus
from tests.unit.fakes import make_app

D = Decimal
S = ExchangeOrderStatus


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeOrder:
    report: ExchangeOrderReport
    request: ExchangeOrderRequest
    fills: list[ExchangeFill] = field(default_factory=list)
    visible_at: float = 0.0  # before this (fake) time, queries and lists do not show it


class FakeExchange:
    """An exchange in memory: MARKET fills at `price`, LIMIT rests; faults on demand.

    Binance's harsh sides: `late_by` (a submit answers -1007 and executes that many seconds
    later), `lag` (a new order is invisible to queries and lists for that long), `wipe()`
    (the Testnet's monthly reset), `order_wait` (the rate budget says wait).
    """

    request_validity_seconds = 5.0
    unknown_outcome_window_seconds = 25.0  # recvWindow 5 + read timeout 10 + backend 10

    def __init__(self, price: str = "50000", clock: Callable[[], float] = time.time) -> None:
        self.price = D(price)
        self.clock = clock
        self.orders: dict[str, FakeOrder] = {}
        self.executed_submits = 0
        self.list_submits = 0
        self.calls: list[str] = []
        self.down_for = 0  # the next N calls fail before reaching the exchange
        self.lose_next_reply = False  # the next submit executes, its reply is lost
        self.reject_next: ExchangeRejected | None = None
        self.reject_cancel: ExchangeRejected | None = None
        self.late_by: float | None = None  # next submits: -1007, executed this much later
        self.lag = 0.0
        self.order_wait = 0.0
        self.stray_trade = False  # myTrades lists a trade of an order allOrders does not
        self._late: list[tuple[float, ExchangeOrderRequest]] = []
        self._ids = itertools.count(1)
        self._trades = itertools.count(100)

    def _gate(self, name: str) -> None:
        self.calls.append(name)
        now = self.clock()
        for due, request in [item for item in self._late if item[0] <= now]:
            self._late.remove((due, request))
            self._execute(request)
        if self.down_for > 0:
            self.down_for -= 1
            raise ExchangeUnavailable("503 Service Unavailable")

    def _visible(self, client_order_id: str) -> FakeOrder | None:
        order = self.orders.get(client_order_id)
        return order if order is not None and order.visible_at <= self.clock() else None

    def order_delay(self, credentials: ExchangeCredentials) -> float:
        return self.order_wait

    def order_history(self, credentials: ExchangeCredentials, symbol: str, *,
                      since: float | None = None,
                      from_order_id: str | None = None) -> ExchangeOrderHistory:
        self._gate("history")
        listed = [o for c, o in self.orders.items() if self._visible(c) is not None]
        trades = {o.report.exchange_order_id for o in listed if o.fills}
        if self.stray_trade:
            trades.add("999999")
        return ExchangeOrderHistory(
            client_order_ids=frozenset(o.report.client_order_id for o in listed),
            order_ids=frozenset(o.report.exchange_order_id for o in listed),
            trade_order_ids=frozenset(trades))

    def wipe(self) -> None:
        """Forget every order, as the Testnet does about once a month."""
        self.orders.clear()

    def _snapshot(self, order: FakeOrder) -> ExchangeOrderReport:
        return replace(order.report, fills=tuple(order.fills))

    def submit_order(self, credentials: ExchangeCredentials,
                     request: ExchangeOrderRequest) -> ExchangeOrderReport:
        assert credentials.api_key == "paper-key"
        self._gate("submit")
        if self.reject_next is not None:
            exc, self.reject_next = self.reject_next, None
            raise exc
        if self.late_by is not None:
            self._late.append((self.clock() + self.late_by, request))
            raise ExchangeUnavailable("Binance 503 -1007: Timeout waiting for response from "
                                      "backend server. Send status unknown; execution "
                                      "status unknown.")
        existing = self.orders.get(request.client_order_id)
        if existing and existing.report.status in (S.NEW, S.PARTIALLY_FILLED):
            raise ExchangeDuplicateOrder(-2010, "Duplicate order sent.")
        order = self._execute(request)
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise ExchangeUnavailable("read timed out")
        return self._snapshot(order)

    def submit_order_list(self, credentials: ExchangeCredentials,
                          request: ExchangeOrderListRequest) -> list[ExchangeOrderReport]:
        """An OCO: both legs in one request, with the faults of a single submit."""
        assert credentials.api_key == "paper-key"
        self._gate("submit_list")
        if self.reject_next is not None:
            exc, self.reject_next = self.reject_next, None
            raise exc
        if self.late_by is not None:
            self._late.extend((self.clock() + self.late_by, leg) for leg in request.legs)
            raise ExchangeUnavailable("Binance 503 -1007: execution status unknown.")
        self.list_submits += 1
        orders = [self._execute(leg) for leg in request.legs]
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise ExchangeUnavailable("read timed out")
        return [self._snapshot(order) for order in orders]

    def _execute(self, request: ExchangeOrderRequest) -> FakeOrder:
        # Binance accepts a clientOrderId again once its order is closed: a second send
        # makes a second order, which is what the manager must never cause.
        self.executed_submits += 1
        order = FakeOrder(ExchangeOrderReport(
            exchange_order_id=str(next(self._ids)), client_order_id=request.client_order_id,
            symbol=request.symbol, status=S.NEW, cumulative_quantity=D(0),
            cumulative_quote=D(0), working=request.stop_price is None), request,
            visible_at=self.clock() + self.lag)
        self.orders[request.client_order_id] = order
        if request.order_type == "MARKET" and request.quote_order_qty is not None:
            # Spend-amount: the exchange works out the quantity (down to the step) and,
            # here, fills it in two trades, so a first partial fill is seen.
            qty = (request.quote_order_qty / self.price).quantize(D("0.00001"), ROUND_DOWN)
            order.request = replace(request, quantity=qty)
            half = (qty / 2).quantize(D("0.00001"), ROUND_DOWN)
            self.fill(request.client_order_id, half, self.price)
            self.fill(request.client_order_id, qty - half, self.price)
        elif request.order_type == "MARKET":
            self.fill(request.client_order_id, request.quantity, self.price)
        return order

    def fill(self, client_order_id: str, quantity: Decimal, price: Decimal) -> ExchangeFill:
        order = self.orders[client_order_id]
        fill = ExchangeFill(str(next(self._trades)), price, quantity,
                            (quantity * D("0.001")).quantize(D("0.00000001")), "BTC")
        order.fills.append(fill)
        cum = order.report.cumulative_quantity + quantity
        order.report = replace(
            order.report, cumulative_quantity=cum,
            cumulative_quote=order.report.cumulative_quote + quantity * price,
            status=S.FILLED if cum == order.request.quantity else S.PARTIALLY_FILLED)
        return fill

    def cancel_order(self, credentials: ExchangeCredentials, symbol: str,
                     client_order_id: str) -> ExchangeOrderReport:
        self._gate("cancel")
        if self.reject_cancel is not None:
            exc, self.reject_cancel = self.reject_cancel, None
            raise exc
        order = self.orders.get(client_order_id)
        if order is None or order.report.status not in (S.NEW, S.PARTIALLY_FILLED):
            raise ExchangeOrderUnknown(-2011, "Unknown order sent.")
        order.report = replace(order.report, status=S.CANCELED)
        return replace(order.report, fills=())  # Binance's cancel reply carries no fills

    def query_order(self, credentials: ExchangeCredentials, symbol: str,
                    client_order_id: str) -> ExchangeOrderReport | None:
        self._gate("query")
        order = self._visible(client_order_id)
        return None if order is None else self._snapshot(order)

    def open_orders(self, credentials: ExchangeCredentials) -> list[ExchangeOrderReport]:
        self._gate("open_orders")
        return [self._snapshot(o) for o in self.orders.values()
                if o.report.status in (S.NEW, S.PARTIALLY_FILLED)]


class AppCredentials:
    def __init__(self, app: TradingApplication) -> None:
        self.app = app

    def credentials_for(self, account_id: UUID) -> ExchangeCredentials:
        return self.app.exchange_credentials(account_id)


@dataclass
class World:
    app: TradingApplication
    exchange: FakeExchange
    time: FakeTime
    manager: ExecutionManager
    account_id: UUID
    filled_accounts: list[UUID]

    def place(self, order_type: str = "MARKET", quantity: str = "0.01",
              price: str | None = None, client_order_id: str = "c1") -> UUID:
        return self.app.handle(PlaceOrder(  # type: ignore[no-any-return]
            account_id=self.account_id, client_order_id=client_order_id, symbol="BTCUSDT",
            side="BUY", order_type=order_type, quantity=quantity, price=price))

    def status(self, order_id: UUID) -> OrderStatus:
        return self.app.get_order(order_id).status

    def event_types(self, order_id: UUID) -> list[str]:
        return [type(e).__name__ for e in self.app.events.get(order_id)]

    def settle(self, result: DriveResult, limit: int = 200) -> DriveResult:
        """Drive the order again whenever it asks to be, as the worker does; return the
        last result (one that asks for nothing more)."""
        for _ in range(limit):
            if result.recheck_after is None:
                return result
            self.time.sleep(result.recheck_after)
            result = self.manager.recheck(result.order_id)
        raise AssertionError(f"order {result.order_id} never settled: {result.note}")


def make_world() -> World:
    """An app with one account on paper keys, the fake exchange and a manager on fake time."""
    app = make_app(BTCUSDT="50000")
    account_id = app.handle(RegisterAccount(email="t@example.com", password="x" * 12))
    app.handle(ConnectExchangeKeys(account_id, "paper-key", "paper-secret"))
    fake_time = FakeTime()
    exchange = FakeExchange(clock=fake_time.clock)
    filled: list[UUID] = []
    manager = ExecutionManager(
        app, exchange, AppCredentials(app), clock=fake_time.clock, sleep=fake_time.sleep,
        policy=RetryPolicy(unknown_outcome_budget=30.0), on_fill=filled.append)
    return World(app, exchange, fake_time, manager, account_id, filled)
