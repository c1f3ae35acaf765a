"""The SSE hub: one Postgres LISTEN connection per process, fan-out to every open stream.

The projector writes each change as a row (seq, account, kind, data) and NOTIFYs
`{"seq", "accountId"}`. Per account with open streams the hub keeps one feed and a cursor.
A burst of notifications (the projector sends one per account per batch, all delivered at
its commit) marks those accounts' feeds; one query then reads the new rows of every marked
feed after its own cursor (`changes_for`), and each row goes to every subscriber of its
account, so every tab of a user gets every update and no other account's row is ever read.
A feed also marks itself every poll interval, in case a notification was lost.

Resume without gaps or duplicates: a subscriber registers (its queue starts filling)
before it replays `changes_since(Last-Event-ID)`; afterwards it drops queued changes whose
seq it has already sent. Both sides read the same ordered table, so the union is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio
import psycopg
from psycopg import sql

from adapters.platform.aio import cancel_and_wait

log = logging.getLogger(__name__)

BATCH = 500
MAX_REPLAY = 2_000  # changes one reconnect may replay; past it the client reloads instead


class Reset(int):
    """Yielded by `changes` instead of a replay too long to send: the client should reload
    its state; live delivery goes on after this seq."""


class ChangeRow(Protocol):
    seq: int
    account_id: str
    kind: str
    entity_id: str
    data: dict[str, Any]


class ChangeSource(Protocol):
    """The part of the read models the hub reads (adapters/postgres/readmodels.py)."""

    def changes_since(self, account_id: str, seq: int, limit: int = 500) -> list[Any]: ...

    def latest_seq(self, account_id: str) -> int: ...


def read_changes(source: ChangeSource, cursors: dict[str, int], limit: int) -> list[Any]:
    """The changes of several accounts after their cursors, in seq order: one query when the
    source can (`changes_for`), else one per account."""
    many = getattr(source, "changes_for", None)
    if many is not None:
        return list(many(cursors, limit))
    rows = [c for account, seq in cursors.items()
            for c in source.changes_since(account, seq, limit)]
    return sorted(rows, key=lambda c: int(c.seq))


class Subscription:
    """One open stream: a queue of changes for one account."""

    def __init__(self, account_id: str, limit: int) -> None:
        self.account_id = account_id
        self.items: deque[Any] = deque()
        self.limit = limit
        self.overflowed = False
        self.wake = asyncio.Event()

    def put(self, change: Any) -> None:
        if len(self.items) >= self.limit:
            # A client this far behind reconnects and replays from its Last-Event-ID.
            self.overflowed = True
        else:
            self.items.append(change)
        self.wake.set()

    async def get(self) -> Any | None:
        """Return the next queued change; None when the subscription overflowed."""
        while True:
            if self.overflowed:
                return None
            if self.items:
                return self.items.popleft()
            self.wake.clear()
            await self.wake.wait()


class _Feed:
    """The changes of one account, read once per wake-up and fanned out."""

    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()
        self.cursor: int | None = None
        self.ready = asyncio.Event()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class ChangeHub:
    """Listen on the schema's changes channel (adapters.postgres.readmodels.changes_channel)
    and serve per-account change streams."""

    def __init__(self, database_url: str, source: ChangeSource, *, channel: str,
                 poll_seconds: float = 15.0, queue_limit: int = 10_000) -> None:
        self._url = database_url
        self._channel = channel
        self._source = source
        self._poll = poll_seconds
        self._queue_limit = queue_limit
        self._feeds: dict[str, _Feed] = {}
        # Accounts whose feeds a notification (or their poll) marked since the last read.
        self._marked: set[str] = set()
        self._burst = asyncio.Event()
        self._fanout: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.listening = False

    # ---- life cycle --------------------------------------------------------------
    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="sse-hub-listen")

    async def stop(self) -> None:
        await cancel_and_wait([*(f.task for f in self._feeds.values()), self._listener,
                               self._fanout])
        self._fanout = None
        self._feeds.clear()

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.listening = True
                    backoff = 0.5
                    for account_id in self._feeds:  # catch up on what we may have missed
                        self._mark(account_id)
                    async for notify in conn.notifies():
                        self._dispatch(notify.payload)
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as exc:  # the database went away: retry, feeds keep polling
                self.listening = False
                log.warning("SSE hub lost its LISTEN connection (%s); retrying in %.1fs",
                            type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            account_id = str(message["accountId"])
            seq = int(message.get("seq", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed change notification")
            return
        feed = self._feeds.get(account_id)
        if feed is not None and (feed.cursor is None or seq > feed.cursor):
            self._mark(account_id)

    def _mark(self, account_id: str) -> None:
        """Have the fan-out read this account's new changes with the rest of the burst."""
        self._marked.add(account_id)
        self._burst.set()
        if self._fanout is None or self._fanout.done():
            self._fanout = asyncio.create_task(self._fan_out(), name="sse-hub-fan-out")

    async def _fan_out(self) -> None:
        """Read the marked feeds' new changes, one query per burst, and hand them out."""
        while True:
            await self._burst.wait()
            await asyncio.sleep(0)  # let the rest of a burst's notifications be dispatched
            self._burst.clear()
            marked, self._marked = self._marked, set()
            cursors = {account: feed.cursor for account in marked
                       if (feed := self._feeds.get(account)) is not None
                       and feed.cursor is not None}
            if not cursors:
                continue
            try:
                rows = await anyio.to_thread.run_sync(read_changes, self._source, cursors,
                                                      BATCH)
            except Exception:
                log.warning("SSE feeds failed to read changes; will retry", exc_info=True)
                await asyncio.sleep(1.0)
                for account in cursors:
                    self._mark(account)
                continue
            counts: dict[str, int] = {}
            for change in rows:
                account = str(change.account_id)
                counts[account] = counts.get(account, 0) + 1
                feed = self._feeds.get(account)
                if feed is None or feed.cursor is None or int(change.seq) <= feed.cursor:
                    continue
                for subscription in list(feed.subscribers):
                    subscription.put(change)
                feed.cursor = int(change.seq)
            for account, count in counts.items():
                if count >= BATCH:  # more than one read's worth: read on
                    self._mark(account)

    # ---- subscriptions -----------------------------------------------------------
    async def subscribe(self, account_id: str) -> Subscription:
        """Register a stream for an account; changes after this call are queued for it."""
        feed = self._feeds.get(account_id)
        if feed is None:
            feed = self._feeds[account_id] = _Feed()
            feed.task = asyncio.create_task(self._pump(account_id, feed),
                                            name=f"sse-feed-{account_id}")
        subscription = Subscription(account_id, self._queue_limit)
        feed.subscribers.add(subscription)
        try:
            await feed.ready.wait()
        except BaseException:
            self.unsubscribe(subscription)
            raise
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        feed = self._feeds.get(subscription.account_id)
        if feed is None:
            return
        feed.subscribers.discard(subscription)
        if not feed.subscribers:
            del self._feeds[subscription.account_id]
            if feed.task:
                feed.task.cancel()

    def subscriber_count(self, account_id: str | None = None) -> int:
        if account_id is not None:
            feed = self._feeds.get(account_id)
            return len(feed.subscribers) if feed else 0
        return sum(len(f.subscribers) for f in self._feeds.values())

    async def _pump(self, account_id: str, feed: _Feed) -> None:
        backoff = 0.5
        while feed.cursor is None:
            try:
                feed.cursor = await anyio.to_thread.run_sync(
                    self._source.latest_seq, account_id)
            except Exception:
                log.warning("SSE feed cannot read the latest change; retrying", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        feed.ready.set()
        # A notification that came while the cursor was unknown was passed over: read once.
        self._mark(account_id)
        while True:
            # The fallback in case a notification was lost; reads go through the fan-out.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.wake.wait(), self._poll)
            feed.wake.clear()
            self._mark(account_id)

    async def changes(self, account_id: str, last_seq: int | None,
                      max_replay: int = MAX_REPLAY) -> AsyncIterator[Any]:
        """Yield an account's changes after `last_seq` (None = from now), then live ones.

        Between the replay and the live part it yields one int: the seq live delivery
        starts after, so the caller can tell the client the stream is open. A replay longer
        than `max_replay` is cut short with a Reset (an int too) at the latest seq, so a
        `Last-Event-ID: 0` costs a bounded read, not the account's whole history.
        """
        subscription = await self.subscribe(account_id)
        try:
            if last_seq is None:
                last = await anyio.to_thread.run_sync(self._source.latest_seq, account_id)
            else:
                last = last_seq
                replayed = 0
                while True:
                    limit = min(BATCH, max_replay - replayed)
                    batch = await anyio.to_thread.run_sync(
                        self._source.changes_since, account_id, last, limit)
                    for change in batch:
                        last = int(change.seq)
                        yield change
                    replayed += len(batch)
                    if len(batch) < limit:
                        break
                    if replayed >= max_replay:
                        latest = await anyio.to_thread.run_sync(self._source.latest_seq,
                                                                account_id)
                        if latest > last:
                            last = latest
                            yield Reset(last)
                        break
            yield last  # the seam: the caller learns where live delivery starts
            while True:
                change = await subscription.get()
                if change is None:
                    return
                if int(change.seq) <= last:
                    continue
                last = int(change.seq)
                yield change
        finally:
            self.unsubscribe(subscription)
