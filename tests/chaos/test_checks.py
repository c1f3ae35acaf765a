"""The chaos suite's checks catch what they are meant to catch (no I/O): a green chaos run
means something only if a doubled order, a doubled fill or a missed SSE change turns it red."""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal

from tests.chaos.checks import Snapshot, check_orders, check_streams, exchange_client_order_id
from tests.chaos.traders import PlannedOrder, Trader

ORDER_ID = str(uuid.uuid4())
ACCOUNT = str(uuid.uuid4())


def clean() -> tuple[list[PlannedOrder], list[Trader], Snapshot]:
    order = PlannedOrder(n=0, trader=0, symbol="BTCUSDT", side="BUY", kind="market",
                         quantity=Decimal("0.3"), client_order_id="c-0", cancel_after=None,
                         order_id=ORDER_ID)
    trader = Trader(index=0, email="t@example.com", password="p", account_id=ACCOUNT)
    trader.events = [
        (1, "ORDER_UPDATE", {"orderId": ORDER_ID, "status": "PENDING", "version": 1}),
        (2, "ORDER_UPDATE", {"orderId": ORDER_ID, "status": "NEW", "version": 2}),
        (3, "ORDER_UPDATE", {"orderId": ORDER_ID, "status": "PARTIALLY_FILLED", "version": 3}),
        (4, "TRADE", {"orderId": ORDER_ID, "tradeId": "11"}),
        (5, "ORDER_UPDATE", {"orderId": ORDER_ID, "status": "FILLED", "version": 4}),
        (6, "TRADE", {"orderId": ORDER_ID, "tradeId": "12"}),
    ]
    cid = exchange_client_order_id(ORDER_ID)
    snap = Snapshot(
        truth={ORDER_ID: {"status": "FILLED", "type": "MARKET", "time_in_force": None,
                          "filled_quantity": Decimal("0.3"), "exchange_order_id": "7",
                          "version": 4, "trade_ids": ["11", "12"],
                          "stop_price": None, "triggered": False}},
        orders={ORDER_ID: {"status": "FILLED", "type": "MARKET", "time_in_force": None,
                           "filled_quantity": Decimal("0.3"), "exchange_order_id": "7",
                           "version": 4}},
        trades={ORDER_ID: [("11", Decimal("0.1")), ("12", Decimal("0.2"))]},
        changes={ACCOUNT: [(s, k, "") for s, k, _ in trader.events]},
        exchange_orders={cid: [{"order_id": 7, "client_order_id": cid, "status": "FILLED",
                                "executed_qty": "0.3"}]},
        exchange_trades={7: [{"trade_id": 11, "qty": "0.1"}, {"trade_id": 12, "qty": "0.2"}]},
    )
    return [order], [trader], snap


def problems(plan: list[PlannedOrder], traders: list[Trader], snap: Snapshot) -> list[str]:
    return check_orders(plan, snap)[0] + check_streams(plan, traders, snap)[0]


def test_a_clean_run_has_no_problems() -> None:
    assert problems(*clean()) == []


def test_an_order_sent_twice_to_the_exchange_is_caught() -> None:
    plan, traders, snap = clean()
    cid = exchange_client_order_id(ORDER_ID)
    snap.exchange_orders[cid].append({**snap.exchange_orders[cid][0], "order_id": 8})
    assert any("sent 2 times" in p for p in problems(plan, traders, snap))


def test_a_fill_applied_twice_or_missing_is_caught() -> None:
    plan, traders, snap = clean()
    doubled = copy.deepcopy(snap)
    doubled.trades[ORDER_ID].append(("13", Decimal("0.1")))
    assert any("trades sum" in p for p in problems(plan, traders, doubled))
    missing = copy.deepcopy(snap)
    missing.exchange_trades[7].append({"trade_id": 13, "qty": "0.1"})
    assert any("the exchange ['11', '12', '13']" in p for p in problems(plan, traders, missing))
    twice = copy.deepcopy(snap)
    twice.truth[ORDER_ID]["trade_ids"] = ["11", "11", "12"]
    assert any("holds a fill twice" in p for p in problems(plan, traders, twice))


def test_a_status_that_differs_from_the_exchange_or_is_not_final_is_caught() -> None:
    plan, traders, snap = clean()
    snap.truth[ORDER_ID]["status"] = "SUBMITTED"
    found = problems(plan, traders, snap)
    assert any("stuck in SUBMITTED" in p for p in found)
    assert any("on the exchange" in p for p in found)
    assert any("did not see the final status" in p for p in found)


def test_a_read_model_behind_the_event_store_is_caught() -> None:
    plan, traders, snap = clean()
    snap.orders[ORDER_ID]["status"] = "PENDING"
    assert any(p.startswith("read model") and "status PENDING" in p
               for p in problems(plan, traders, snap))
    del snap.orders[ORDER_ID]
    assert any("missing from orders_view" in p for p in problems(plan, traders, snap))


def test_sse_changes_missed_repeated_or_out_of_line_are_caught() -> None:
    plan, traders, snap = clean()
    traders[0].events.append(traders[0].events[1])
    assert any("more than once" in p for p in problems(plan, traders, snap))
    plan, traders, snap = clean()
    del traders[0].events[2]
    found = problems(plan, traders, snap)
    assert any("missed 1 SSE changes" in p for p in found)
    assert any("seen at versions [1, 2, 4]" in p for p in found)
    plan, traders, snap = clean()
    traders[0].events[4] = (5, "ORDER_UPDATE", {"orderId": ORDER_ID, "status": "FILLED",
                                                "version": 3})
    assert any("exactly once" in p for p in problems(plan, traders, snap))


def rejected(snap: Snapshot, code: str) -> Snapshot:
    """The clean order as REJECTED with `code` and, like such an order, no exchange order."""
    out = copy.deepcopy(snap)
    out.truth[ORDER_ID].update(status="REJECTED", filled_quantity=Decimal(0), trade_ids=[],
                               exchange_order_id=None, reject_code=code, reject_reason="r")
    out.orders[ORDER_ID].update(status="REJECTED", filled_quantity=Decimal(0))
    out.trades = {}
    out.exchange_orders = {}
    out.exchange_trades = {}
    return out


def test_an_order_rejected_for_a_rate_limit_is_caught() -> None:
    plan, _, snap = clean()
    for code in ("-1015", "-1003"):
        found = check_orders(plan, rejected(snap, code))[0]
        assert any("REJECTED for a rate limit" in p for p in found), found


def test_a_market_order_that_is_no_exchange_order_is_caught_unless_provably_never_sent(
) -> None:
    plan, _, snap = clean()
    assert not any("exchange orders, not one" in p
                   for p in check_orders(plan, rejected(snap, "NOT_SENT"))[0])
    assert not any("exchange orders, not one" in p
                   for p in check_orders(plan, rejected(snap, "-2010"))[0])
    lost = rejected(snap, "EXCHANGE_REJECTED")
    assert any("is 0 exchange orders, not one" in p for p in check_orders(plan, lost)[0])
    unsent = rejected(snap, "EXCHANGE_REJECTED")
    unsent.truth[ORDER_ID]["submitted"] = False  # every send refused before execution
    assert not any("exchange orders, not one" in p for p in check_orders(plan, unsent)[0])
    canceled = rejected(snap, "")
    canceled.truth[ORDER_ID].update(status="CANCELED", reject_code=None)
    canceled.orders[ORDER_ID].update(status="CANCELED")
    assert not any("exchange orders, not one" in p for p in check_orders(plan, canceled)[0])
    twice = copy.deepcopy(snap)
    cid = exchange_client_order_id(ORDER_ID)
    twice.exchange_orders[cid].append({**twice.exchange_orders[cid][0], "order_id": 8})
    assert any("is 2 exchange orders, not one" in p for p in check_orders(plan, twice)[0])


def test_a_stop_order_traded_untriggered_or_with_another_stop_is_caught() -> None:
    plan, traders, snap = clean()
    snap.truth[ORDER_ID].update(stop_price=Decimal("100"), triggered=True)
    snap.exchange_orders[exchange_client_order_id(ORDER_ID)][0]["stop_price"] = "100"
    assert problems(plan, traders, snap) == []
    snap.truth[ORDER_ID]["triggered"] = False
    assert any("traded but is not triggered" in p for p in problems(plan, traders, snap))
    snap.truth[ORDER_ID].update(triggered=True, stop_price=Decimal("101"))
    assert any("has stop 101, the exchange 100" in p for p in problems(plan, traders, snap))
