"""The consumers' apply/skip rule: a per-partition chain of notification ids.

Every record the relay publishes carries its notification id and `prev`, the notification id
of the previous record it published to the same partition (0 for the first of a partition in
an epoch; docs/event-bus.md). A consumer stores, per partition, `stored`: the highest
notification id it applied, with every earlier event of that partition applied too.

Why the chain is exact: `prev` of an event is the previous event of its partition in the
notification log, with no event of that partition in between. (1) The relay publishes in
notification-id order and never publishes an id while a lower one may still commit (it only
publishes contiguous runs, or up to a horizon past which every id is committed or burned for
good). (2) The partition is a pure function of the key. (3) Every epoch starts at notification
1 with all heads at 0. (4) The heads are stored with the relay's position in one statement,
after the broker acknowledged the whole batch, so a relay that restarts sends the same `prev`
for the records it publishes again; with a missing or inconsistent stored head it rebuilds the
heads from the event store.

The rule, for a record `nid` with `prev` in a partition where the consumer stored `stored`:

- `nid <= stored`: applied already (a relay retry, a republish) -> SKIP.
- `prev <= stored < nid` -> APPLY. Proof that nothing is jumped over: by exactness no event of
  the partition has an id strictly between `prev` and `nid`, and `(stored, nid)` lies inside
  `(prev, nid)` because `prev <= stored`. So every event of the partition below `nid` is at or
  below `stored`, i.e. applied, and applying `nid` keeps the "all earlier applied" invariant.
  (`prev < stored` happens at an epoch's start, where `prev` is 0, and in the fallbacks below.)
- `prev > stored`: the event `prev`, and maybe more, lies between what we applied and this
  record, and it is not in the log before it: the broker lost it (or a retried send failed
  while a later one in the partition succeeded). -> GAP: neither apply nor store `nid`; the
  relay republishes (a new epoch from notification 1, or its last batch after a send error)
  and the chain then arrives complete.

Records without the `prev` header (a relay from before the chain) fall back to the old rule:
apply whatever is above `stored`. It cannot tell a gap from a successor, which is how a broker
restarted empty used to lose events for good.
"""

from __future__ import annotations

from enum import Enum


class Decision(Enum):
    """What a consumer does with one record of a partition."""

    APPLY = "apply"
    SKIP = "skip"  # applied (or dead-lettered) already
    GAP = "gap"  # an unapplied event precedes it: wait for the relay to republish


def decide(notification_id: int, prev: int | None, stored: int) -> Decision:
    """Decide a record from its notification id, its chain header and the stored id."""
    if notification_id <= stored:
        return Decision.SKIP
    if prev is None or prev <= stored:
        return Decision.APPLY
    return Decision.GAP
