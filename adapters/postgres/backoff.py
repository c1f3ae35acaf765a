"""Rate-limit back-offs shared by every worker process, in one small Postgres table.

After a 429 or 418 the exchange wants no request from our IP (or account) until its
`Retry-After`; one row per scope says until when, so another worker process stops too
instead of earning the IP a ban (adapters/binance/ratelimit.py reads it at most once a
second).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

TABLE = "exchange_backoffs"


class PgSharedBackoff:
    """SharedBackoff on a table `exchange_backoffs(scope, until, reason)`."""

    def __init__(self, database_url: str, schema: str) -> None:
        self.database_url = database_url
        self.table = sql.Identifier(schema, TABLE)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._created = False

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.database_url, autocommit=True,
                                         application_name="tradeledger-backoff")
        if not self._created:
            self._conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (scope text PRIMARY KEY, "
                "until timestamptz NOT NULL, reason text NOT NULL DEFAULT '')"
            ).format(self.table))
            self._created = True
        return self._conn

    def publish(self, scope: str, until: float, reason: str) -> None:
        """Record that nothing may go to `scope` before `until`; a later time wins."""
        with self._lock:
            self._connection().execute(sql.SQL(
                "INSERT INTO {t} (scope, until, reason) VALUES (%s, to_timestamp(%s), %s) "
                "ON CONFLICT (scope) DO UPDATE SET until = GREATEST({t}.until, "
                "EXCLUDED.until), reason = EXCLUDED.reason").format(t=self.table),
                (scope, until, reason[:200]))

    def read(self) -> Mapping[str, float]:
        """Return the back-offs still running: {scope: until (epoch seconds)}."""
        with self._lock:
            rows = self._connection().execute(sql.SQL(
                "SELECT scope, extract(epoch FROM until)::float8 FROM {} "
                "WHERE until > now()").format(self.table)).fetchall()
        return {str(scope): float(until) for scope, until in rows}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
