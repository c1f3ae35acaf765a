"""Folding an order's public events into its row, its trades and the analytics counters."""

from __future__ import annotations

from decimal import Decimal as D
from uuid import uuid4

from domain.envelope import EventEnvelope
from projections.analytics import analytics_increments, latency_bucket, public_payload
from projections.orders import apply_order_event, fold_order, trade_from_fill
from projections.state import ReadModelState

ACCOUNT = str(uuid4())
ORDER = str(uuid4())


def env(version: int, kind: str, second: float, **payload: object) -> EventEnvelope:
    whole, frac = divmod(int(second * 1000), 1000)
    return EventEnvelope(
        notification_id=100 + version, event_id=f"{ORDER}:{version}", aggregate_type="Order",
        aggregate_id=ORDER, version=version, event_type=kind,
        timestamp=f"2026-01-02T03:04:{whole:02d}.{frac:03d}000+00:00", account_id=ACCOUNT,
        payload={"account_id": ACCOUNT, "actor": "worker", **payload})


PLACED = env(1, "OrderPlaced", 0, client_order_id="c1", symbol="BTCUSDT", side="BUY",
             order_type="LIMIT", quantity="0.01", price="90000", time_in_force="GTC")


def fill(version: int, second: float, trade: str, qty: str, price: str, status: str,
         fee: str = "0.00001", asset: str = "BTC") -> EventEnvelope:
    return env(version, "OrderFilled", second, trade_id=trade, price=price, quantity=qty,
               commission=fee, commission_asset=asset, is_maker=False, status=status)


def lifecycle() -> list[EventEnvelope]:
    return [
        PLACED,
        env(2, "OrderSubmitted", 0.05),
        env(3, "OrderAccepted", 0.1, exchange_order_id="777"),
        fill(4, 0.5, "t1", "0.004", "90000", "PARTIALLY_FILLED"),
        fill(5, 1.25, "t2", "0.006", "89000", "FILLED", fee="0.5", asset="USDT"),
    ]


def test_a_filled_order_row_shows_what_a_trader_needs() -> None:
    row = fold_order(lifecycle())
    assert row is not None
    d = row.to_dict()
    assert d["status"] == "FILLED" and d["exchangeOrderId"] == "777"
    assert d["filledQuantity"] == "0.010"
    # (0.004 * 90000 + 0.006 * 89000) / 0.01 = 89400
    assert D(d["averagePrice"]) == D("89400")
    assert d["commission"] == {"BTC": "0.00001", "USDT": "0.5"}
    assert list(d["statusTimes"]) == ["PENDING", "SUBMITTED", "NEW", "PARTIALLY_FILLED",
                                      "FILLED"]
    assert d["fillLatencyMs"] == 1250
    assert d["version"] == 5 and d["timeInForce"] == "GTC" and d["price"] == "90000"


def test_a_repeated_version_changes_nothing() -> None:
    row = fold_order(lifecycle())
    assert apply_order_event(row, lifecycle()[3]) == row


def test_cancel_rejection_restores_the_open_status_and_reject_records_reason() -> None:
    row = fold_order([PLACED, env(2, "OrderSubmitted", 1), env(3, "OrderAccepted", 2,
                      exchange_order_id="9"), env(4, "OrderCancelRequested", 3),
                      env(5, "OrderCancelRejected", 4, code="-2011", message="unknown",
                          status="NEW")])
    assert row is not None and row.status == "NEW"
    rejected = fold_order([PLACED, env(2, "OrderRejected", 1, code="-2010",
                                       message="insufficient balance")])
    assert rejected is not None
    assert (rejected.status, rejected.reject_code, rejected.reject_reason) == (
        "REJECTED", "-2010", "insufficient balance")


def test_trade_row_from_a_fill() -> None:
    row = fold_order(lifecycle()[:4])
    assert row is not None
    trade = trade_from_fill(row, lifecycle()[3]).to_dict()
    assert trade["quoteQuantity"] == "360.000" and trade["side"] == "BUY"
    assert trade["commissionAsset"] == "BTC" and trade["tradeId"] == "t1"


def test_state_folds_positions_and_analytics() -> None:
    state = ReadModelState()
    for e in lifecycle():
        state.apply(e)
    state.apply(lifecycle()[3])  # a duplicate notification is ignored
    pos = state.positions[(ACCOUNT, "BTCUSDT")]
    assert pos.quantity == D("0.01") - D("0.00001")
    assert len(state.trades) == 2 and state.count == 5
    sm = state.analytics.symbol_minute
    assert sum(v[0] for v in sm.values()) == 1 and sum(v[1] for v in sm.values()) == 2
    # A limit order's time on the book is not fill latency: the histogram counts MARKET
    # orders only.
    assert state.analytics.latency == {}


def test_the_latency_histogram_counts_a_market_order_placed_to_filled() -> None:
    state = ReadModelState()
    placed = env(1, "OrderPlaced", 0, client_order_id="c1", symbol="BTCUSDT", side="BUY",
                 order_type="MARKET", quantity="0.01")
    for e in [placed, *lifecycle()[1:]]:
        state.apply(e)
    assert state.analytics.latency == {(ACCOUNT, latency_bucket(1250)): 1}


def test_rejections_are_counted_by_reason() -> None:
    inc = analytics_increments(env(2, "OrderRejected", 1, code="-2010", message="no"), None)
    assert inc.rejections == {(ACCOUNT, "-2010", "no"): 1}


def test_public_payload_drops_secrets() -> None:
    assert public_payload({"email": "a@b.c", "password_hash": "x", "api_key_ciphertext": "y",
                           "secret_ciphertext": "z", "api_key_hint": "abcd"}) == {
        "email": "a@b.c", "api_key_hint": "abcd"}


def test_an_order_of_unknown_outcome_shows_checking_until_the_exchange_answers() -> None:
    events = [PLACED, env(2, "OrderSubmitted", 0.05),
              env(3, "OrderOutcomeUnknown", 10.1, attempt=1,
                  sent_at="2026-01-02T03:04:00.050000+00:00", reason="read timeout")]
    row = fold_order(events)
    assert row is not None
    d = row.to_dict()
    assert (d["status"], d["outcome"]) == ("SUBMITTED", "UNKNOWN")
    assert "outcome unknown, checking" in d["statusDetail"]
    row = apply_order_event(row, env(4, "OrderAccepted", 20, exchange_order_id="9"))
    assert row is not None
    assert (row.to_dict()["outcome"], row.to_dict()["statusDetail"]) == (None, None)


def test_a_rate_limited_send_shows_the_order_pending_and_waiting() -> None:
    row = fold_order([PLACED, env(2, "OrderSubmitted", 0.05),
                      env(3, "OrderSendRefused", 0.06, attempt=1, code="-1003",
                          message="Too many requests")])
    assert row is not None
    d = row.to_dict()
    assert d["status"] == "PENDING" and d["outcome"] is None
    assert "slow down" in d["statusDetail"]
    row = apply_order_event(row, env(4, "OrderSubmitted", 7))
    assert row is not None and row.status == "SUBMITTED" and row.status_detail is None
