"""The worker's recheck timer: an order waits once, at its earliest time, and is known to be
waiting until it is handed back (the sweeper leaves such orders to it)."""

from __future__ import annotations

import threading
import uuid

from adapters.processes.worker import Rechecks


def test_an_order_is_waiting_until_it_is_due_then_handed_back_once() -> None:
    handed: list[uuid.UUID] = []
    done = threading.Event()

    def due(order_id: uuid.UUID) -> None:
        handed.append(order_id)
        done.set()

    rechecks = Rechecks(due)
    order_id, other = uuid.uuid4(), uuid.uuid4()
    rechecks.at(order_id, 60.0)
    rechecks.at(order_id, 0.05)  # an earlier time replaces the later one
    assert order_id in rechecks and other not in rechecks and len(rechecks) == 1
    rechecks.start()
    try:
        assert done.wait(5)
    finally:
        rechecks.stop()
    assert handed == [order_id] and order_id not in rechecks
