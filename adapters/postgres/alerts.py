"""Price alerts, stored per account: "tell me when SYMBOL crosses PRICE".

An alert remembers the side of the market it was set on (`above`: fire when the price rises
to it; `below`: when it falls to it). `fire_crossed` marks every crossed alert fired in one
UPDATE (so it fires once even with several API processes checking) and writes an ALERT row
into view_changes with a NOTIFY, so every open stream of the account shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import psycopg_pool
from psycopg.types.json import Jsonb

from adapters.postgres.readmodels import (
    CHANGE_KINDS,
    changes_channel,
    lock_key,
    notify_payload,
)
from adapters.postgres.store import check_schema_name
from projections.orders import dec, iso

MAX_ALERTS_PER_ACCOUNT = 100
ALERT_COLS = ("alert_id", "account_id", "symbol", "price", "direction", "created_at",
              "fired_at", "fired_price")


def ddl(schema: str) -> list[str]:
    """The alerts table (idempotent)."""
    q = f'"{check_schema_name(schema)}"'
    return [
        f"""CREATE TABLE IF NOT EXISTS {q}.price_alerts (alert_id uuid PRIMARY KEY,
            account_id uuid NOT NULL, symbol text NOT NULL, price numeric NOT NULL,
            direction text NOT NULL CHECK (direction IN ('above', 'below')),
            created_at timestamptz NOT NULL DEFAULT now(), fired_at timestamptz,
            fired_price numeric)""",
        f"CREATE INDEX IF NOT EXISTS price_alerts_acct ON {q}.price_alerts "
        "(account_id, created_at DESC)",
        f"CREATE INDEX IF NOT EXISTS price_alerts_pending ON {q}.price_alerts (symbol) "
        "WHERE fired_at IS NULL",
    ]


def _allow_alert_changes(conn: psycopg.Connection[Any], q: str, schema: str) -> None:
    """Let view_changes carry ALERT rows in a database created before they existed."""
    row = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = %s AND t.relname = 'view_changes' AND c.contype = 'c' "
        "AND c.conname = 'view_changes_kind_check'", (schema,)).fetchone()
    if row is None or "ALERT" in str(row[0]):
        return
    kinds = ", ".join(f"'{k}'" for k in CHANGE_KINDS)
    conn.execute(f"ALTER TABLE {q}.view_changes DROP CONSTRAINT view_changes_kind_check")
    conn.execute(f"ALTER TABLE {q}.view_changes ADD CONSTRAINT view_changes_kind_check "
                 f"CHECK (kind IN ({kinds}))")


def create_alert_tables(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the alerts table and widen view_changes' kinds (safe at every start)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "ddl"),))
    for statement in ddl(schema):
        conn.execute(statement)
    _allow_alert_changes(conn, f'"{check_schema_name(schema)}"', schema)


class AlertLimitReached(Exception):
    """The account already has the most alerts allowed."""


@dataclass(frozen=True)
class FiredAlert:
    """An alert that just fired, and the change seq that announces it."""

    account_id: str
    alert: dict[str, Any]
    seq: int


def alert_dict(r: tuple[Any, ...]) -> dict[str, Any]:
    """The public JSON shape of an alert."""
    return {"alertId": str(r[0]), "symbol": r[2], "price": dec(r[3]), "direction": r[4],
            "createdAt": iso(r[5]), "firedAt": iso(r[6]), "firedPrice": dec(r[7])}


class AlertStore:
    """Create, list, delete and fire an account's price alerts."""

    def __init__(self, pool: psycopg_pool.ConnectionPool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._q = f'"{check_schema_name(schema)}"'
        self._channel = changes_channel(schema)

    def create_tables(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            create_alert_tables(conn, self._schema)

    def list_alerts(self, account_id: UUID) -> list[dict[str, Any]]:
        """The account's alerts, newest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(ALERT_COLS)} FROM {self._q}.price_alerts "  # noqa: S608
                "WHERE account_id = %s ORDER BY created_at DESC, alert_id",
                (str(account_id),)).fetchall()
        return [alert_dict(r) for r in rows]

    def create(self, account_id: UUID, symbol: str, price: Decimal,
               direction: str) -> dict[str, Any]:
        """Store a new pending alert; AlertLimitReached beyond MAX_ALERTS_PER_ACCOUNT."""
        with self._pool.connection() as conn, conn.transaction():
            # One account's inserts take turns, so two at once cannot both pass the cap.
            conn.execute("SELECT pg_advisory_xact_lock(%s)",
                         (lock_key(self._schema, f"alerts:{account_id}"),))
            (count,) = conn.execute(
                f"SELECT count(*) FROM {self._q}.price_alerts WHERE account_id = %s",  # noqa: S608
                (str(account_id),)).fetchone() or (0,)
            if int(count) >= MAX_ALERTS_PER_ACCOUNT:
                raise AlertLimitReached
            row = conn.execute(
                f"INSERT INTO {self._q}.price_alerts (alert_id, account_id, symbol, price, "  # noqa: S608
                f"direction) VALUES (%s, %s, %s, %s, %s) RETURNING {', '.join(ALERT_COLS)}",
                (str(uuid4()), str(account_id), symbol, price, direction)).fetchone()
        assert row is not None
        return alert_dict(row)

    def delete(self, account_id: UUID, alert_id: UUID) -> bool:
        """Remove one of the account's alerts; False when it has no such alert."""
        with self._pool.connection() as conn:
            cur = conn.execute(
                f"DELETE FROM {self._q}.price_alerts WHERE account_id = %s "  # noqa: S608
                "AND alert_id = %s", (str(account_id), str(alert_id)))
            return cur.rowcount > 0

    def pending_symbols(self) -> list[str]:
        """Symbols that have at least one alert waiting to fire."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT DISTINCT symbol FROM {self._q}.price_alerts "  # noqa: S608
                "WHERE fired_at IS NULL").fetchall()
        return [r[0] for r in rows]

    def fire_crossed(self, prices: dict[str, Decimal],
                     now: datetime | None = None) -> list[FiredAlert]:
        """Fire every pending alert the given prices have reached; announce each over SSE."""
        fired: list[FiredAlert] = []
        with self._pool.connection() as conn, conn.transaction():
            for symbol, price in sorted(prices.items()):
                rows = conn.execute(
                    f"UPDATE {self._q}.price_alerts SET fired_at = coalesce(%s, now()), "  # noqa: S608
                    "fired_price = %s WHERE fired_at IS NULL AND symbol = %s AND "
                    "((direction = 'above' AND price <= %s) OR "
                    "(direction = 'below' AND price >= %s)) "
                    f"RETURNING {', '.join(ALERT_COLS)}",
                    (now, price, symbol, price, price)).fetchall()
                for r in rows:
                    alert = alert_dict(r)
                    (seq,) = conn.execute(
                        f"INSERT INTO {self._q}.view_changes "  # noqa: S608
                        "(account_id, kind, entity_id, data, time) "
                        "VALUES (%s, 'ALERT', %s, %s, now()) RETURNING seq",
                        (str(r[1]), alert["alertId"], Jsonb(alert))).fetchone() or (0,)
                    fired.append(FiredAlert(str(r[1]), alert, int(seq)))
            for item in fired:
                conn.execute("SELECT pg_notify(%s, %s)",
                             (self._channel, notify_payload(item.seq, item.account_id)))
        return fired


def describe(alert: dict[str, Any]) -> str:
    """One line for logs (no account data beyond the ids)."""
    return json.dumps({"alertId": alert["alertId"], "symbol": alert["symbol"]})
