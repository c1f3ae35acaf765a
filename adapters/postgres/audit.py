"""Verify the audit hash chain against the event store (`tradeledger audit verify`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from adapters.postgres.readmodels import AUDIT_COLS, EVENTS_TABLE
from adapters.postgres.store import check_schema_name
from projections.audit import ChainEntry, StoredRow, VerifyResult, verify_chain


def _stream(conn: psycopg.Connection[Any], name: str, sql: str) -> Iterator[tuple[Any, ...]]:
    with conn.cursor(name=name) as cur:
        cur.itersize = 5000
        cur.execute(sql)
        yield from cur


def verify_audit(conn: psycopg.Connection[Any], schema: str) -> VerifyResult:
    """Recompute the chain from the stored rows and compare it with audit_chain."""
    q = f'"{check_schema_name(schema)}"'
    with conn.transaction():
        rows = (StoredRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in _stream(
            conn, "audit_rows",
            f"SELECT notification_id, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {q}.{EVENTS_TABLE} ORDER BY notification_id"))
        chain = (ChainEntry(*r) for r in _stream(
            conn, "audit_chain",
            f"SELECT {', '.join(AUDIT_COLS)} FROM {q}.audit_chain ORDER BY notification_id"))  # noqa: S608
        return verify_chain(rows, chain)
