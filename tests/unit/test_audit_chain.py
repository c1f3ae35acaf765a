"""The hash chain names the first altered event; time travel rebuilds any version."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

from domain.order import Order
from projections.audit import GENESIS, StoredRow, build_chain, link, order_state_at, verify_chain

AGG = uuid4()


def rows(n: int) -> list[StoredRow]:
    agg = AGG
    return [StoredRow(i, agg, i, "domain.order:Order.OrderFilled", f'{{"n":{i}}}'.encode())
            for i in range(1, n + 1)]


def test_each_link_hashes_the_previous_one() -> None:
    chain = list(build_chain(rows(3)))
    assert chain[1] == link(chain[0].chain_hash, rows(3)[1])
    assert chain[0] == link(GENESIS, rows(3)[0])
    assert len({e.chain_hash for e in chain}) == 3


def test_an_untouched_store_verifies() -> None:
    stored = rows(5)
    result = verify_chain(stored, build_chain(stored))
    assert result.ok and result.checked == 5
    assert verify_chain(stored, list(build_chain(stored))[:3]).unchained == 2


def test_the_first_altered_event_is_named() -> None:
    stored = rows(6)
    chain = list(build_chain(stored))
    stored[2] = replace(stored[2], state=b'{"n":999}')
    stored[4] = replace(stored[4], state=b'{"n":998}')
    result = verify_chain(stored, chain)
    assert not result.ok and result.notification_id == 3 and "altered" in result.problem
    assert "TAMPERED: event 3" in result.describe()


def test_a_deleted_or_inserted_event_is_named() -> None:
    stored = rows(4)
    chain = list(build_chain(stored))
    deleted = verify_chain([s for s in stored if s.notification_id != 2], chain)
    assert not deleted.ok and deleted.notification_id == 2 and "deleted" in deleted.problem
    extra = StoredRow(2, uuid4(), 1, "x", b"{}")
    inserted = verify_chain([stored[0], extra, stored[2]], [chain[0], chain[2]])
    assert not inserted.ok and inserted.notification_id == 2


def test_order_state_at_every_version_and_time() -> None:
    account = uuid4()
    order = Order(account_id=account, client_order_id="c1", symbol="BTCUSDT", side="BUY",
                  order_type="LIMIT", quantity=Decimal("1"), price=Decimal("100"),
                  time_in_force="GTC", actor="user")
    order.accept("x1", actor="worker")
    order.fill("t1", Decimal("100"), Decimal("0.4"), Decimal(0), "USDT", actor="worker")
    order.fill("t2", Decimal("100"), Decimal("0.6"), Decimal(0), "USDT", actor="worker")
    events = order.collect_events()
    expected = ["PENDING", "SUBMITTED", "NEW", "PARTIALLY_FILLED", "FILLED"]
    assert [e.originator_version for e in events] == [1, 2, 3, 4, 5]
    for version, status in enumerate(expected, 1):
        state = order_state_at(events, version=version)
        assert state is not None and state.version == version
        assert state.status.value == status
    state = order_state_at(events, at=events[3].timestamp)
    assert state is not None and state.filled_quantity == Decimal("0.4")
    assert order_state_at(events, at=events[0].timestamp - timedelta(seconds=1)) is None
    latest = order_state_at(events)
    assert latest is not None and latest.status.value == "FILLED"
