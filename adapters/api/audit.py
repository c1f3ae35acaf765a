"""Audit verification for the API: a background full check, and each user's own events.

The full recomputation of the hash chain reads every account's events. It never runs on
a user's request: one API process at a time (a Postgres advisory lock elects it) runs it
in the background on its own connection, and stores the latest result, which operators
read with `tradeledger audit verify` or in the table. A user's `GET /api/audit/verify`
checks only that user's events against their chain links and says nothing of others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from adapters.postgres.readmodels import EVENTS_TABLE
from projections.audit import StoredRow, event_hash

log = logging.getLogger(__name__)

LOCK_NAME = "tradeledger_audit_verify"
USER_CACHE_SECONDS = 30.0
MAX_USER_EVENTS = 200_000  # one user's check reads at most this many events

_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.api_audit_status (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    ok boolean NOT NULL,
    checked bigint NOT NULL,
    altered_notification_id bigint,
    message text NOT NULL,
    verified_at timestamptz NOT NULL
)
"""


@dataclass(frozen=True)
class FullResult:
    """The latest full check: when, whether it passed, and the first bad notification."""

    ok: bool
    checked: int
    altered_notification_id: int | None
    message: str
    verified_at: datetime


def create_table(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute(sql.SQL(_DDL).format(schema=sql.Identifier(schema)))


def run_full_check(database_url: str, schema: str, min_age_seconds: float = 0.0) -> bool:
    """Run the full check here unless another process holds the lock or a fresh result
    exists; return True when this call ran it."""
    from adapters.postgres.audit import verify_audit

    q = sql.Identifier(schema)
    with psycopg.connect(database_url, autocommit=True) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (LOCK_NAME,)).fetchone()
        if not got or not got[0]:
            return False
        try:
            create_table(conn, schema)
            row = conn.execute(sql.SQL(
                "SELECT extract(epoch FROM now() - verified_at) FROM {}.api_audit_status"
            ).format(q)).fetchone()
            if row is not None and min_age_seconds and float(row[0]) < min_age_seconds:
                return False
            result = verify_audit(conn, schema)
            conn.execute(sql.SQL(
                "INSERT INTO {}.api_audit_status (id, ok, checked, altered_notification_id, "
                "message, verified_at) VALUES (1, %s, %s, %s, %s, now()) "
                "ON CONFLICT (id) DO UPDATE SET ok = excluded.ok, checked = excluded.checked, "
                "altered_notification_id = excluded.altered_notification_id, "
                "message = excluded.message, verified_at = excluded.verified_at").format(q),
                (result.ok, result.checked, result.notification_id, result.describe()))
            if not result.ok:
                log.error("audit chain check failed: %s", result.describe())
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (LOCK_NAME,))


async def full_check_loop(database_url: str, schema: str, interval: float) -> None:
    """Every `interval` seconds, run the full check unless another process just did."""
    await asyncio.sleep(min(interval, 5.0))
    while True:
        try:
            await anyio.to_thread.run_sync(run_full_check, database_url, schema,
                                           interval * 0.9)
        except Exception as exc:  # the next round tries again; the API keeps serving
            log.warning("background audit check failed to run: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def latest_full_result(pool: ConnectionPool, schema: str) -> FullResult | None:
    with pool.connection() as conn:
        create_table(conn, schema)
        row = conn.execute(sql.SQL(
            "SELECT ok, checked, altered_notification_id, message, verified_at "
            "FROM {}.api_audit_status").format(sql.Identifier(schema))).fetchone()
    return FullResult(*row) if row else None


class UserAudit:
    """Check one account's events against their chain links; cached and single-flight
    per account, so repeated calls cost one scan of that account's events per 30 s."""

    def __init__(self, pool: ConnectionPool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._cache: dict[UUID, tuple[float, dict[str, Any]]] = {}
        self._locks: dict[UUID, threading.Lock] = {}
        self._guard = threading.Lock()

    def clear(self) -> None:
        self._cache.clear()

    def verify(self, account_id: UUID) -> dict[str, Any]:
        cached = self._cache.get(account_id)
        if cached and time.monotonic() - cached[0] < USER_CACHE_SECONDS:
            return cached[1]
        with self._guard:
            lock = self._locks.setdefault(account_id, threading.Lock())
        with lock:
            cached = self._cache.get(account_id)
            if cached and time.monotonic() - cached[0] < USER_CACHE_SECONDS:
                return cached[1]
            body = self._check(account_id)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[account_id] = (time.monotonic(), body)
        with self._guard:
            self._locks.pop(account_id, None)
        return body

    def _check(self, account_id: UUID) -> dict[str, Any]:
        q = sql.Identifier(self._schema)
        checked = pending = 0
        first_bad: tuple[int, UUID, int, str] | None = None
        notification_ids: set[int] = set()
        with self._pool.connection() as conn:
            rows = conn.execute(sql.SQL(
                "SELECT v.notification_id, v.aggregate_id, v.version, e.topic, e.state, "
                "e.originator_id, c.event_hash, e.originator_version FROM {q}.event_log_view v "
                "LEFT JOIN {q}.{events} e ON e.notification_id = v.notification_id "
                "LEFT JOIN {q}.audit_chain c ON c.notification_id = v.notification_id "
                "WHERE v.account_id = %s ORDER BY v.notification_id LIMIT %s").format(
                    q=q, events=sql.Identifier(EVENTS_TABLE)),
                (account_id, MAX_USER_EVENTS)).fetchall()
        for nid, aggregate_id, version, topic, state, originator_id, chained, stored_v in rows:
            notification_ids.add(int(nid))
            if chained is None:
                pending += 1  # the projector has not chained it yet
                continue
            checked += 1
            if first_bad is not None:
                continue
            if state is None:
                first_bad = (nid, aggregate_id, version, "was deleted from the event store")
                continue
            recomputed = event_hash(StoredRow(int(nid), originator_id, int(stored_v), topic,
                                              bytes(state)))
            if recomputed != chained:
                first_bad = (nid, aggregate_id, version, "was altered in place")
        full = latest_full_result(self._pool, self._schema)
        if first_bad is None and full is not None and not full.ok \
                and full.altered_notification_id in notification_ids:
            nid = int(full.altered_notification_id)
            row = next(r for r in rows if int(r[0]) == nid)
            first_bad = (nid, row[1], row[2], "breaks the recorded chain")
        ok = first_bad is None
        message = (f"all {checked} of your chained events verify" if ok else
                   f"your event {first_bad[1]} v{first_bad[2]} {first_bad[3]}")  # type: ignore[index]
        return {
            "ok": ok, "checked": checked, "unchained": pending,
            "firstAlteredAggregateId": None if ok else str(first_bad[1]),  # type: ignore[index]
            "firstAlteredVersion": None if ok else first_bad[2],  # type: ignore[index]
            "message": message, "verifiedAt": datetime.now(UTC).isoformat(),
            "fullCheckAt": full.verified_at.isoformat() if full else None,
        }
