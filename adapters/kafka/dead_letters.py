"""Dead letters: events a consumer gave up on, listed and queued for retry by the CLI.

A retry only marks rows; the consumer that owns them applies them on its next loop
(ConsumerRunner.process_retries), because only that process has the handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from adapters.kafka.store import ensure_bus_tables
from adapters.postgres.store import check_schema_name


@dataclass(frozen=True)
class DeadLetter:
    """One event a consumer could not apply."""

    id: int
    consumer: str
    topic: str
    partition: int
    kafka_offset: int
    notification_id: int | None
    envelope: str
    error: str
    attempts: int
    created_at: datetime
    retry_requested: bool
    resolved_at: datetime | None


def list_dead_letters(conn: psycopg.Connection[Any], schema: str, consumer: str | None = None,
                      include_resolved: bool = False) -> list[DeadLetter]:
    """Return dead letters, oldest first; open ones only unless include_resolved."""
    ensure_bus_tables(conn, schema)
    query = sql.SQL(
        "SELECT id, consumer, topic, partition, kafka_offset, notification_id, envelope, error, "
        "attempts, created_at, retry_requested, resolved_at FROM {} "
        "WHERE (%(consumer)s::text IS NULL OR consumer = %(consumer)s) "
        "AND (%(all)s OR resolved_at IS NULL) ORDER BY id"
    ).format(sql.Identifier(check_schema_name(schema), "dead_letters"))
    rows = conn.execute(query, {"consumer": consumer, "all": include_resolved}).fetchall()
    return [DeadLetter(*row) for row in rows]


def request_retry(conn: psycopg.Connection[Any], schema: str, consumer: str | None = None,
                  ids: list[int] | None = None) -> int:
    """Mark open dead letters for retry by their consumer; return how many were marked."""
    ensure_bus_tables(conn, schema)
    query = sql.SQL(
        "UPDATE {} SET retry_requested = true WHERE resolved_at IS NULL "
        "AND (%(consumer)s::text IS NULL OR consumer = %(consumer)s) "
        "AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))"
    ).format(sql.Identifier(check_schema_name(schema), "dead_letters"))
    with conn.transaction():
        cursor = conn.execute(query, {"consumer": consumer, "ids": ids})
    return cursor.rowcount
