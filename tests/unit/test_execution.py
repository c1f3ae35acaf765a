"""The execution process manager against an in-memory exchange of our own (no I/O)."""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import pytest

from commands.execution import (
    GONE_REASON,
    NO_KEYS_CODE,
    NOT_SENT_CODE,
    ExecutionManager,
    exchange_client_order_id,
    order_id_from_client_order_id,
)
from commands.messages import (
    PlaceOrder,
    RecordSubmission,
    RegisterAccount,
    RequestCancel,
)
from commands.ports import (
    ExchangeCredentials,
    ExchangeOrderRequest,
    ExchangeOrderStatus,
)
from domain.errors import (
    ExchangeRejected,
    ExchangeThrottled,
)
from domain.values import OrderStatus
from tests.unit.execution_world import AppCredentials, World

D = Decimal
S = ExchangeOrderStatus


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


def test_rate_limited_send_waits_in_pending_and_is_sent_after_retry_after(
        world: World) -> None:
    world.exchange.reject_next = ExchangeThrottled(-1003, "Too many requests.",
                                                   retry_after=7.0)
    order_id = world.place()
    result = world.manager.drive(order_id)
    # A 429 is refused before execution: back to PENDING, never REJECTED.
    assert result.after is OrderStatus.PENDING
    assert result.recheck_after == 7.0
    assert world.event_types(order_id)[-1] == "OrderSendRefused"
    result = world.settle(result)
    assert result.after is OrderStatus.FILLED
    assert world.exchange.calls == ["submit", "submit"]
    assert world.time.slept == [7.0]
    order = world.app.get_order(order_id)
    assert order.send_attempts == 2 and order.reject_code is None
    assert world.event_types(order_id)[:5] == [
        "OrderPlaced", "OrderSubmitted", "OrderSendRefused", "OrderSubmitted", "OrderAccepted"]


def test_throttled_order_waits_in_pending_without_being_sent(world: World) -> None:
    world.exchange.order_wait = 4.0
    order_id = world.place()
    result = world.manager.drive(order_id)
    assert (result.after, result.recheck_after) == (OrderStatus.PENDING, 4.0)
    assert world.exchange.calls == []
    assert world.event_types(order_id) == ["OrderPlaced"]  # nothing sent, nothing recorded
    world.exchange.order_wait = 0.0
    assert world.settle(result).after is OrderStatus.FILLED


def test_short_pacing_wait_is_slept_in_the_drive(world: World) -> None:
    world.exchange.order_wait = 0.5
    order_id = world.place()

    def delay(credentials: ExchangeCredentials) -> float:
        wait, world.exchange.order_wait = world.exchange.order_wait, 0.0
        return wait

    world.exchange.order_delay = delay  # type: ignore[method-assign]
    assert world.manager.drive(order_id).after is OrderStatus.FILLED
    assert world.time.slept == [0.5]


def test_cancel_of_a_send_refused_by_the_rate_limit_needs_no_exchange(world: World) -> None:
    world.exchange.reject_next = ExchangeThrottled(-1015, "Too many new orders.",
                                                   retry_after=5.0)
    order_id = world.place("LIMIT", price="49000.00")
    world.manager.drive(order_id)
    world.app.handle(RequestCancel(world.account_id, order_id))
    world.manager.recheck(order_id)
    assert world.status(order_id) is OrderStatus.CANCELED
    assert world.exchange.executed_submits == 0


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


def test_send_that_never_arrived_ends_not_sent_and_is_never_sent_again(
        world: World) -> None:
    world.exchange.down_for = 4  # the submit and three queries fail
    order_id = world.place()
    start = world.time.now
    result = world.manager.drive(order_id)
    assert result.after is OrderStatus.SUBMITTED and result.recheck_after
    order = world.app.get_order(order_id)
    assert order.outcome_unknown  # shown as "outcome unknown, checking"
    assert world.event_types(order_id)[-1] == "OrderOutcomeUnknown"
    result = world.settle(result)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_code == NOT_SENT_CODE
    assert "never reached the exchange" in (order.reject_reason or "")
    assert world.exchange.calls.count("submit") == 1  # never sent again
    assert world.exchange.executed_submits == 0
    # Only once the window in which the lost request could execute had closed
    # (25 s + 5 s margin), after two "does not exist" answers 3 s apart and the lists.
    assert world.time.now - start >= 30.0 + 3.0 - 1e-6
    assert world.exchange.calls[-1] == "history"
    assert world.exchange.calls.count("query") >= 2


def test_late_execution_after_a_1007_is_recorded_once_and_never_resent(world: World) -> None:
    world.exchange.late_by = 12.0  # answered -1007, executed 12 s later
    order_id = world.place()
    result = world.manager.drive(order_id)
    world.exchange.late_by = None
    assert result.after is OrderStatus.SUBMITTED
    assert world.app.get_order(order_id).outcome_unknown
    result = world.settle(result)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.FILLED and not order.outcome_unknown
    assert world.exchange.executed_submits == 1
    assert world.exchange.calls.count("submit") == 1


def test_execution_late_past_the_timeouts_still_finds_the_order(world: World) -> None:
    world.exchange.late_by = 24.0  # just inside recvWindow + read timeout + backend timeout
    order_id = world.place("LIMIT", price="49000.00")
    result = world.settle(world.manager.drive(order_id))
    assert result.after is OrderStatus.NEW
    assert world.exchange.executed_submits == 1


def test_query_lag_alone_never_rejects_or_resends(world: World) -> None:
    world.exchange.lag = 8.0  # the executed order is invisible to queries for 8 s
    world.exchange.lose_next_reply = True
    order_id = world.place()
    result = world.settle(world.manager.drive(order_id))
    assert result.after is OrderStatus.FILLED
    assert world.exchange.executed_submits == 1
    assert world.exchange.calls.count("submit") == 1


def test_does_not_exist_is_not_final_while_the_lists_disagree(world: World) -> None:
    world.exchange.down_for = 1
    world.exchange.stray_trade = True  # myTrades shows a trade allOrders does not list
    order_id = world.place()
    result = world.manager.drive(order_id)
    for _ in range(30):
        world.time.sleep(result.recheck_after or 0)
        result = world.manager.recheck(order_id)
    assert result.after is OrderStatus.SUBMITTED and result.recheck_after
    world.exchange.stray_trade = False
    assert world.settle(result).after is OrderStatus.REJECTED


def test_a_proof_blocked_for_a_minute_is_logged_once_a_minute(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    # Rechecks are silent: an order whose absence can never be proven used to leave no
    # trace in the log (how the chaos suite's stuck OCO of seed 841144 went unexplained).
    world.exchange.down_for = 1
    world.exchange.stray_trade = True
    order_id = world.place()
    result = world.manager.drive(order_id)
    with caplog.at_level(logging.WARNING, logger="commands.execution"):
        for _ in range(60):  # 3 s apart: about two minutes past the window
            world.time.sleep(result.recheck_after or 0)
            result = world.manager.recheck(order_id)
    unproven = [r.getMessage() for r in caplog.records if "have not proven it" in r.getMessage()]
    assert 1 <= len(unproven) <= 3 and all("disagree" in m for m in unproven)


def test_one_does_not_exist_answer_after_the_window_is_not_enough(world: World) -> None:
    world.exchange.down_for = 1
    order_id = world.place()
    world.manager.drive(order_id)
    world.time.sleep(31.0)  # the window has closed
    result = world.manager.recheck(order_id)
    assert result.after is OrderStatus.SUBMITTED  # one answer: asks again a while later
    assert "history" not in world.exchange.calls
    assert result.recheck_after == pytest.approx(3.0)


def test_restarted_worker_times_the_window_from_the_recorded_send(world: World) -> None:
    world.exchange.down_for = 2
    order_id = world.place()
    world.manager.drive(order_id)
    sent = world.app.get_order(order_id).last_send_at
    assert sent is not None
    # Another event moves the order's last change on; the window still runs from the send.
    world.app.handle(RequestCancel(world.account_id, order_id))
    restarted = ExecutionManager(world.app, world.exchange, AppCredentials(world.app),
                                 clock=world.time.clock, sleep=world.time.sleep)
    world.time.now = sent.timestamp() + 29.0
    assert restarted.recheck(order_id).after is OrderStatus.CANCEL_REQUESTED
    world.time.now = sent.timestamp() + 31.0
    restarted.recheck(order_id)
    world.time.now += 3.0
    assert restarted.recheck(order_id).after is OrderStatus.CANCELED
    assert world.exchange.executed_submits == 0


def test_outcome_still_unknown_while_the_exchange_is_down_stays_submitted(
        world: World) -> None:
    world.exchange.down_for = 10_000
    order_id = world.place()
    result = world.manager.drive(order_id)
    for _ in range(20):
        world.time.sleep(result.recheck_after or 0)
        result = world.manager.recheck(order_id)
    assert result.after is OrderStatus.SUBMITTED and result.recheck_after
    assert world.exchange.calls.count("submit") == 1
    # The exchange comes back; the order never arrived: NOT_SENT, never sent again.
    world.exchange.down_for = 0
    assert world.settle(result).after is OrderStatus.REJECTED
    assert world.exchange.calls.count("submit") == 1
    assert world.exchange.executed_submits == 0


def test_redelivered_order_after_a_late_fill_is_not_sent_again(world: World) -> None:
    # Binance accepts a filled order's clientOrderId anew: only our record stops a resend.
    world.exchange.late_by = 3.0
    order_id = world.place()
    world.manager.drive(order_id)
    world.exchange.late_by = None
    world.time.sleep(5.0)
    restarted = ExecutionManager(world.app, world.exchange, AppCredentials(world.app),
                                 clock=world.time.clock, sleep=world.time.sleep)
    assert restarted.drive(order_id).after is OrderStatus.FILLED  # redelivered OrderPlaced
    assert world.exchange.executed_submits == 1
    assert world.exchange.calls.count("submit") == 1


def test_testnet_reset_cancels_a_resting_order_once_proven_gone(world: World) -> None:
    order_id = world.place("LIMIT", price="49000.00")
    world.manager.drive(order_id)
    world.exchange.wipe()
    result = world.manager.reconcile(order_id)
    assert result.after is OrderStatus.NEW and result.recheck_after  # one answer only
    result = world.settle(result)
    order = world.app.get_order(order_id)
    assert order.status is OrderStatus.CANCELED
    [canceled] = [e for e in world.app.events.get(order_id)
                  if type(e).__name__ == "OrderCanceled"]
    assert canceled.reason == GONE_REASON  # type: ignore[attr-defined]
    assert world.exchange.executed_submits == 1


def test_query_lag_longer_than_the_confirm_gap_never_cancels_a_resting_order(
        world: World) -> None:
    # Chaos seed 673009: a 3.8 s query lag outlasted two answers 3 s apart, and resting
    # orders were recorded CANCELED while they stayed open on the exchange.
    world.exchange.lag = 8.0
    order_id = world.place("LIMIT", price="49000.00")
    assert world.manager.drive(order_id).after is OrderStatus.NEW  # acknowledged by its reply
    result = world.settle(world.manager.reconcile(order_id))  # queries lag for 8 s
    assert result.after is OrderStatus.NEW
    assert world.app.get_order(order_id).status is OrderStatus.NEW


def test_resting_order_missing_from_its_query_but_listed_stays_open(world: World) -> None:
    order_id = world.place("LIMIT", price="49000.00")
    world.manager.drive(order_id)
    coid = exchange_client_order_id(order_id)
    real_query = world.exchange.query_order
    world.exchange.query_order = lambda c, s, i: None  # type: ignore[assignment,method-assign]
    result = world.manager.reconcile(order_id)
    world.time.sleep(3.0)
    result = world.manager.recheck(order_id)
    assert result.after is OrderStatus.NEW and coid in world.exchange.orders
    world.exchange.query_order = real_query  # type: ignore[method-assign]
    assert world.settle(result).after is OrderStatus.NEW


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
    world.settle(world.manager.drive(order_id))
    assert world.status(order_id) is OrderStatus.CANCELED
    assert "submit" not in world.exchange.calls[1:]
    assert "cancel" not in world.exchange.calls  # nothing to cancel by id: it never arrived


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
