"""The execution process manager against an in-memory exchange of our own (no I/O)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from uuid import UUID

import pytest

from commands.application import TradingApplication
from commands.execution import (
    NO_KEYS_CODE,
    ExecutionManager,
    RetryPolicy,
    exchange_client_order_id,
    order_id_from_client_order_id,
)
from commands.messages import (
    ConnectExchangeKeys,
    PlaceOrder,
    RecordSubmission,
    RegisterAccount,
    RequestCancel,
)
from commands.ports import (
    ExchangeCredentials,
    ExchangeFill,
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


class FakeExchange:
    """An exchange in memory: MARKET fills at `price`, LIMIT rests; faults on demand."""

    request_validity_seconds = 5.0

    def __init__(self, price: str = "50000") -> None:
        self.price = D(price)
        self.orders: dict[str, FakeOrder] = {}
        self.executed_submits = 0
        self.calls: list[str] = []
        self.down_for = 0  # the next N calls fail before reaching the exchange
        self.lose_next_reply = False  # the next submit executes, its reply is lost
        self.reject_next: ExchangeRejected | None = None
        self.reject_cancel: ExchangeRejected | None = None
        self._ids = itertools.count(1)
        self._trades = itertools.count(100)

    def _gate(self, name: str) -> None:
        self.calls.append(name)
        if self.down_for > 0:
            self.down_for -= 1
            raise ExchangeUnavailable("503 Service Unavailable")

    def _snapshot(self, order: FakeOrder) -> ExchangeOrderReport:
        return replace(order.report, fills=tuple(order.fills))

    def submit_order(self, credentials: ExchangeCredentials,
                     request: ExchangeOrderRequest) -> ExchangeOrderReport:
        assert credentials.api_key == "paper-key"
        self._gate("submit")
        if self.reject_next is not None:
            exc, self.reject_next = self.reject_next, None
            raise exc
        existing = self.orders.get(request.client_order_id)
        if existing and existing.report.status in (S.NEW, S.PARTIALLY_FILLED):
            raise ExchangeDuplicateOrder(-2010, "Duplicate order sent.")
        self.executed_submits += 1
        order = FakeOrder(ExchangeOrderReport(
            exchange_order_id=str(next(self._ids)), client_order_id=request.client_order_id,
            symbol=request.symbol, status=S.NEW, cumulative_quantity=D(0),
            cumulative_quote=D(0)), request)
        self.orders[request.client_order_id] = order
        if request.order_type == "MARKET":
            self.fill(request.client_order_id, request.quantity, self.price)
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise ExchangeUnavailable("read timed out")
        return self._snapshot(order)

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
        order = self.orders.get(client_order_id)
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


@pytest.fixture
def world() -> World:
    app = make_app(BTCUSDT="50000")
    account_id = app.handle(RegisterAccount(email="t@example.com", password="x" * 12))
    app.handle(ConnectExchangeKeys(account_id, "paper-key", "paper-secret"))
    exchange = FakeExchange()
    fake_time = FakeTime()
    filled: list[UUID] = []
    manager = ExecutionManager(
        app, exchange, AppCredentials(app), clock=fake_time.clock, sleep=fake_time.sleep,
        policy=RetryPolicy(unknown_outcome_budget=30.0), on_fill=filled.append)
    return World(app, exchange, fake_time, manager, account_id, filled)


def test_client_order_id_is_derived_from_the_order_id_and_fits_binance() -> None:
    order_id = UUID("12345678-1234-5678-1234-567812345678")
    coid = exchange_client_order_id(order_id)
    assert len(coid) <= 36 and coid.isalnum()
    assert order_id_from_client_order_id(coid) == order_id
    assert order_id_from_client_order_id("web_abc") is None


def test_market_order_is_submitted_accepted_and_filled(world: World) -> None:
    order_id = world.place()
    result = world.manager.drive(order_id)
    assert (result.before, result.after) == (OrderStatus.PENDING, OrderStatus.FILLED)
    assert world.event_types(order_id) == [
        "OrderPlaced", "OrderSubmitted", "OrderAccepted", "OrderFilled"]
    order = world.app.get_order(order_id)
    assert order.average_price == D("50000")
    assert order.commissions == {"BTC": D("0.00001")}
    assert world.exchange.executed_submits == 1
    assert world.filled_accounts == [world.account_id]


def test_driving_a_filled_order_again_does_nothing(world: World) -> None:
    order_id = world.place()
    world.manager.drive(order_id)
    calls = list(world.exchange.calls)
    assert not world.manager.drive(order_id).changed
    assert world.exchange.calls == calls


def test_rejection_by_the_exchange_is_recorded_with_its_code(world: World) -> None:
    world.exchange.reject_next = ExchangeRejected(
        -2010, "Account has insufficient balance for requested action.")
    order_id = world.place()
    world.manager.drive(order_id)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_code == "-2010"
    assert "insufficient balance" in (order.reject_reason or "")


def test_transient_refusal_is_sent_again_after_a_pause(world: World) -> None:
    world.exchange.reject_next = ExchangeRejected(-1003, "Too many requests.", transient=True)
    order_id = world.place()
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.FILLED
    assert world.exchange.calls == ["submit", "submit"]
    assert world.time.slept


def test_order_of_an_account_without_keys_is_rejected_with_no_keys(world: World) -> None:
    other = world.app.handle(RegisterAccount(email="nokeys@example.com", password="y" * 12))
    order_id = world.app.handle(PlaceOrder(
        account_id=other, client_order_id="k", symbol="BTCUSDT", side="BUY",
        order_type="MARKET", quantity="0.01"))
    world.manager.drive(order_id)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_code == NO_KEYS_CODE
    assert "connect keys" in (order.reject_reason or "")
    assert world.exchange.calls == []


def test_lost_reply_is_resolved_by_a_query_never_by_a_second_submit(world: World) -> None:
    world.exchange.lose_next_reply = True
    order_id = world.place()
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.FILLED
    assert world.exchange.executed_submits == 1
    assert world.exchange.calls == ["submit", "query"]


def test_exchange_down_then_order_unknown_is_sent_again_only_after_the_request_expired(
        world: World) -> None:
    world.exchange.down_for = 4  # the submit and three queries fail
    order_id = world.place()
    start = world.time.now
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.FILLED
    assert world.exchange.executed_submits == 1
    assert world.exchange.calls.count("submit") == 2
    # The second submit came after the first request's validity window (5 s + 1 s margin).
    assert world.time.now - start >= 6.0
    second_submit = world.exchange.calls.index("submit", 1)
    assert world.exchange.calls[second_submit - 1] == "query"


def test_outcome_still_unknown_after_the_budget_stays_submitted(world: World) -> None:
    world.exchange.down_for = 10_000
    order_id = world.place()
    result = world.manager.drive(order_id)
    assert result.after is OrderStatus.SUBMITTED
    assert "unknown" in result.note
    assert world.exchange.calls.count("submit") == 1
    # The exchange comes back; reconciliation finds the order never arrived and sends it.
    world.exchange.down_for = 0
    world.manager.reconcile(order_id)
    assert world.status(order_id) is OrderStatus.FILLED
    assert world.exchange.executed_submits == 1


def test_restart_between_sending_and_recording_records_the_real_outcome(world: World) -> None:
    order_id = world.place()
    # A worker recorded the submission and sent the order, then died before recording more.
    world.app.handle(RecordSubmission(order_id))
    order = world.app.get_order(order_id)
    world.exchange.submit_order(
        world.app.exchange_credentials(world.account_id),
        ExchangeOrderRequest(order.symbol, order.side, order.order_type, order.quantity,
                             order.price, order.time_in_force,
                             exchange_client_order_id(order_id)))
    world.exchange.calls.clear()
    world.manager.drive(order_id)  # the redelivered OrderPlaced
    assert world.status(order_id) is OrderStatus.FILLED
    assert world.exchange.calls == ["query"]
    assert world.exchange.executed_submits == 1


def test_limit_order_rests_then_stream_fills_then_cancel(world: World) -> None:
    order_id = world.place("LIMIT", quantity="0.03", price="49000.00")
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.NEW
    coid = exchange_client_order_id(order_id)
    fill = world.exchange.fill(coid, D("0.01"), D("49000"))
    stream_report = replace(world.exchange.orders[coid].report, fills=(fill,))
    world.manager.apply_report(order_id, stream_report)
    world.manager.apply_report(order_id, stream_report)  # delivered twice: one fill
    assert world.status(order_id) is OrderStatus.PARTIALLY_FILLED
    assert world.app.get_order(order_id).filled_quantity == D("0.01")

    world.app.handle(RequestCancel(world.account_id, order_id))
    world.manager.drive(order_id)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.CANCELED
    assert order.filled_quantity == D("0.01")


def test_stream_report_with_missing_trades_fetches_them_before_the_final_status(
        world: World) -> None:
    order_id = world.place("LIMIT", quantity="0.02", price="49000.00")
    world.manager.drive(order_id)
    coid = exchange_client_order_id(order_id)
    world.exchange.fill(coid, D("0.01"), D("49000"))  # its stream event was lost
    last = world.exchange.fill(coid, D("0.01"), D("49000"))
    world.manager.apply_report(
        order_id, replace(world.exchange.orders[coid].report, fills=(last,)))
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.FILLED
    assert len(order.trade_ids) == 2


def test_cancel_before_submission_needs_no_exchange(world: World) -> None:
    order_id = world.place("LIMIT", price="49000.00")
    world.app.handle(RequestCancel(world.account_id, order_id))
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.CANCELED
    assert world.exchange.calls == []


def test_cancel_of_an_order_filled_meanwhile_records_the_fill(world: World) -> None:
    order_id = world.place("LIMIT", quantity="0.01", price="49000.00")
    world.manager.drive(order_id)
    world.exchange.fill(exchange_client_order_id(order_id), D("0.01"), D("49000"))
    world.app.handle(RequestCancel(world.account_id, order_id))
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.FILLED
    assert world.exchange.calls[-2:] == ["cancel", "query"]


def test_cancel_refused_by_the_exchange_returns_the_order_to_its_status(world: World) -> None:
    order_id = world.place("LIMIT", price="49000.00")
    world.manager.drive(order_id)
    world.exchange.reject_cancel = ExchangeRejected(-2010, "Cancel refused.")
    world.app.handle(RequestCancel(world.account_id, order_id))
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.NEW
    assert "OrderCancelRejected" in world.event_types(order_id)


def test_cancel_while_the_send_outcome_is_unknown_asks_first(world: World) -> None:
    world.exchange.down_for = 10_000
    order_id = world.place("LIMIT", price="49000.00")
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.SUBMITTED
    world.exchange.down_for = 0
    world.app.handle(RequestCancel(world.account_id, order_id))
    world.manager.drive(order_id)
    assert world.status(order_id) is OrderStatus.CANCELED
    assert "submit" not in world.exchange.calls[1:]


def test_duplicate_order_answer_means_an_earlier_send_arrived(world: World) -> None:
    order_id = world.place("LIMIT", price="49000.00")
    world.app.handle(RecordSubmission(order_id))
    world.exchange.submit_order(
        world.app.exchange_credentials(world.account_id),
        ExchangeOrderRequest("BTCUSDT", "BUY", "LIMIT", D("0.01"), D("49000.00"), "GTC",
                             exchange_client_order_id(order_id)))
    order = world.app.get_order(order_id)
    world.manager._send(order, world.app.exchange_credentials(world.account_id))
    assert world.status(order_id) is OrderStatus.NEW
    assert world.exchange.executed_submits == 1


def test_reconcile_of_a_resting_order_records_fills_it_missed(world: World) -> None:
    order_id = world.place("LIMIT", quantity="0.02", price="49000.00")
    world.manager.drive(order_id)
    world.exchange.fill(exchange_client_order_id(order_id), D("0.02"), D("49000"))
    result = world.manager.reconcile(order_id)
    assert (result.before, result.after) == (OrderStatus.NEW, OrderStatus.FILLED)
