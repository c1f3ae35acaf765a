"""Partition by account (issue 17): the relay's key, the consumers' partitions and the
worker's ownership agree, and a consumer can tell what it applied from the old topic."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from adapters.kafka.migration import AGGREGATE_SCHEME, EarlierTopic
from adapters.kafka.schema import (
    KEY_SCHEME,
    account_partition,
    message_key,
    owns_partition,
    partition_for,
)
from adapters.processes.worker import ExecutionWorker
from domain.envelope import EventEnvelope


def _envelope(nid: int, aggregate_id: str, account_id: str, kind: str = "OrderPlaced",
              aggregate_type: str = "Order") -> EventEnvelope:
    return EventEnvelope(notification_id=nid, event_id=f"{aggregate_id}:1",
                         aggregate_type=aggregate_type, aggregate_id=aggregate_id, version=1,
                         event_type=kind, timestamp="2026-12-05T00:00:00+00:00",
                         account_id=account_id)


def test_every_event_of_an_account_has_the_account_as_key_and_one_partition() -> None:
    account = str(uuid.uuid4())
    events = [_envelope(1, account, account, "AccountRegistered", "Account")]
    events += [_envelope(n, str(uuid.uuid4()), account) for n in range(2, 40)]
    assert {message_key(e) for e in events} == {account.encode()}
    assert {partition_for(message_key(e), 6) for e in events} == {account_partition(account, 6)}
    # Keyed by aggregate (the old topic), the same orders spread over the partitions.
    assert len({partition_for(e.aggregate_id.encode(), 6) for e in events}) > 1


@pytest.mark.parametrize("instances", [1, 2, 3, 4])
def test_the_worker_owning_an_account_is_the_one_consuming_its_partition(
        instances: int) -> None:
    partitions = 6
    for _ in range(200):
        account = uuid.uuid4()
        owners = [i for i in range(instances) if ExecutionWorker._owns(
            SimpleNamespace(partitions=partitions, instance=i, instances=instances),  # type: ignore[arg-type]
            account)]
        assert len(owners) == 1
        consumed = [p for p in range(partitions) if owns_partition(p, owners[0], instances)]
        assert account_partition(account, partitions) in consumed


def test_an_earlier_topic_tells_exactly_which_events_were_applied() -> None:
    """Old topic keyed by aggregate id, 3 partitions; the consumer stored (10, 4, 7)."""
    applied_up_to = (10, 4, 7)
    earlier = EarlierTopic("tradeledger.events", AGGREGATE_SCHEME, applied_up_to)
    assert (earlier.floor, earlier.ceiling) == (4, 10)
    for nid in range(1, 15):
        aggregate = str(uuid.uuid4())
        envelope = _envelope(nid, aggregate, str(uuid.uuid4()))
        old_partition = partition_for(aggregate.encode(), 3)
        assert earlier.applied(envelope) is (nid <= applied_up_to[old_partition])
    # An earlier topic keyed by account is read by the account.
    by_account = EarlierTopic("v2", KEY_SCHEME, applied_up_to)
    account = str(uuid.uuid4())
    expected = 6 <= applied_up_to[partition_for(account.encode(), 3)]
    assert by_account.applied(_envelope(6, str(uuid.uuid4()), account)) is expected
