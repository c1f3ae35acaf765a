"""Order locks across worker processes: one Postgres session advisory lock per order."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg

log = logging.getLogger(__name__)


class PgOrderLocks:
    """OrderLocks across processes: a Postgres session advisory lock per order.

    Inside `lazily()` (the worker's lanes) a thread does not release its order's lock on the
    spot: the release travels with the thread's next lock, in the same round trip, or goes
    out in `release_deferred()` when the thread runs out of work. A lane drives one order
    after another, so this saves a round trip per order; the lock is held a little longer
    (never across an idle lane), which only makes another process wait that much longer.
    """

    def __init__(self, database_url: str, schema: str) -> None:
        self.database_url = database_url
        self.schema = schema
        self._local = threading.local()
        self._conns: list[psycopg.Connection[Any]] = []
        self._guard = threading.Lock()

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = psycopg.connect(self.database_url, autocommit=True,
                                   application_name="tradeledger-worker-locks")
            self._local.conn = conn
            with self._guard:
                self._conns.append(conn)
        return conn

    def key(self, order_id: UUID) -> int:
        digest = hashlib.sha256(f"{self.schema}:order:{order_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @contextmanager
    def hold(self, order_id: UUID) -> Iterator[None]:
        key = self.key(order_id)
        conn = self._conn()
        deferred: int | None = getattr(self._local, "deferred", None)
        self._local.deferred = None
        if deferred is None:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        elif deferred != key:
            # Release the previous order, then wait for this one: one round trip, and never
            # holding one lock while waiting for another. Both are our own integers.
            conn.execute(f"SELECT pg_advisory_unlock({deferred:d}); "
                         f"SELECT pg_advisory_lock({key:d})", prepare=False)
        # else: the lock kept from this thread's last step is this order's: still ours.
        try:
            yield
        finally:
            if getattr(self._local, "lazy", False) and not conn.broken:
                self._local.deferred = key
            else:
                self._unlock(conn, key)

    @contextmanager
    def lazily(self) -> Iterator[None]:
        """Let this thread's locks be released late (see the class doc)."""
        self._local.lazy = True
        try:
            yield
        finally:
            self._local.lazy = False

    def release_deferred(self) -> None:
        """Release the lock this thread kept from its last step, if any."""
        deferred: int | None = getattr(self._local, "deferred", None)
        if deferred is not None:
            self._local.deferred = None
            self._unlock(self._conn(), deferred)

    @staticmethod
    def _unlock(conn: psycopg.Connection[Any], key: int) -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error:
            # A broken connection released its locks with it.
            log.debug("advisory unlock failed", exc_info=True)

    def close(self) -> None:
        with self._guard:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
