"""Group commit: events from many threads saved in shared transactions.

Every save into the event store ends in an fsync'd commit, serialized by Postgres, so one
transaction for whatever other threads queued meanwhile multiplies the rate. There is no
saver thread and no timer: a caller that finds fewer than `leaders` saves in progress leads,
saving the queue (its own events first) and going on while more is queued; the others wait
for a leader to save theirs. A lone save therefore runs at once on the caller's own thread,
and with two leaders one batch is encoded and sent while the other waits for its commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

Pending = tuple[Sequence[Any], "Future[None]"]


class GroupCommit:
    """Save events from many threads in shared transactions (see the module doc).

    When a shared save fails with one of `alone_on`, each caller's events are saved alone, so
    that only the caller whose events caused it gets the error (a duplicate, a lost race);
    any other failure goes to every caller of the batch.
    """

    def __init__(self, save: Callable[..., object], *, max_batch: int, leaders: int = 1,
                 alone_on: tuple[type[Exception], ...] = (Exception,)) -> None:
        self._save_events = save
        self.max_batch = max_batch
        self.leaders = leaders
        self.alone_on = alone_on
        self.batches = 0  # transactions written, the callers' saves in them, time spent
        self.saved = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._pending: list[Pending] = []
        self._leading = 0

    def commit(self, events: Sequence[Any]) -> None:
        """Save the events in a transaction shared with other callers; raise its error."""
        done: Future[None] = Future()
        with self._lock:
            self._pending.append((events, done))
            lead = self._leading < self.leaders
            if lead:
                self._leading += 1
        if lead:
            self._lead()
        done.result()

    def _lead(self) -> None:
        batch: list[Pending] = []
        try:
            while True:
                with self._lock:
                    batch = self._pending[:self.max_batch]
                    del self._pending[:self.max_batch]
                    if not batch:
                        self._leading -= 1
                        return
                self._save(batch)
        except BaseException as exc:  # never leave the batch's callers waiting
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            with self._lock:
                self._leading -= 1
            raise

    def _save(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        try:
            self._save_events(*[e for events, _ in batch for e in events])
        except self.alone_on:
            for events, done in batch:
                try:
                    self._save_events(*events)
                except Exception as exc:  # handed to the caller whose events these are
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        except Exception as exc:
            for _, done in batch:
                done.set_exception(exc)
        else:
            for _, done in batch:
                done.set_result(None)
        with self._lock:
            self.batches += 1
            self.saved += len(batch)
            self.seconds += time.perf_counter() - started
