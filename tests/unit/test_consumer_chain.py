"""The consumers' apply/skip/gap rule over the relay's per-partition chain (no I/O)."""

from __future__ import annotations

import random

import pytest

from adapters.kafka.chain import Decision, decide


@pytest.mark.parametrize(("nid", "prev", "stored", "expected"), [
    (5, 0, 0, Decision.APPLY),  # the first event of a partition
    (9, 5, 5, Decision.APPLY),  # directly follows what was applied
    (5, 0, 5, Decision.SKIP),  # applied already (a relay retry)
    (3, 0, 5, Decision.SKIP),  # applied already (a republish from the start)
    (9, 7, 5, Decision.GAP),  # 7 was never applied: the broker lost it
    (20, 12, 0, Decision.GAP),  # a consumer that starts on a log missing its beginning
    (9, 0, 5, Decision.APPLY),  # a new epoch's first record of the partition, after 5
    (9, 3, 5, Decision.APPLY),  # prev below stored: nothing of the partition lies in (3, 9)
    (9, None, 5, Decision.APPLY),  # an older relay's record: the old rule
    (5, None, 5, Decision.SKIP),
])
def test_decide(nid: int, prev: int | None, stored: int, expected: Decision) -> None:
    assert decide(nid, prev, stored) is expected


def _chain(nids: list[int]) -> list[tuple[int, int]]:
    """(nid, prev) of one partition's records in one epoch."""
    return list(zip(nids, [0, *nids[:-1]], strict=True))


def _consume(records: list[tuple[int, int | None]], stored: int, applied: list[int]) -> int:
    for nid, prev in records:
        decision = decide(nid, prev, stored)
        if decision is Decision.APPLY:
            applied.append(nid)
            stored = nid
    return stored


def test_stale_epoch_records_then_the_republish_apply_every_event_once_in_order() -> None:
    # The chaos suite's loss: applied up to 12; 15 and 18 were lost with the broker; the relay
    # published 21 and 30 into the fresh log under the old epoch, then republished from 1.
    events = [3, 7, 12, 15, 18, 21, 30]
    applied = [3, 7, 12]
    stale = [(21, 18), (30, 21)]
    stored = _consume(stale, 12, applied)
    assert (stored, applied) == (12, [3, 7, 12])  # the gap is not applied over
    stored = _consume(stale + _chain(events), stored, applied)  # reread from offset 0
    assert (stored, applied) == (30, events)


def test_any_interleaving_of_lost_duplicated_and_republished_chains_is_exactly_once() -> None:
    """A log of chain fragments (losses, duplicates, stale epochs) followed by one complete
    epoch applies every event exactly once and in order, whatever came before."""
    rng = random.Random(7)
    for _ in range(500):
        events = sorted(rng.sample(range(1, 200), rng.randint(1, 30)))
        chain = _chain(events)
        log: list[tuple[int, int | None]] = []
        for _ in range(rng.randint(0, 4)):  # damaged epochs: a random subsequence each
            start = rng.randrange(len(chain))
            log += [r for r in chain[start:] if rng.random() < 0.6]
        log += chain  # the republish that follows every loss
        applied: list[int] = []
        _consume(log, 0, applied)
        assert applied == events, (events, log)
