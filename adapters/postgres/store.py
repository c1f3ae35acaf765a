"""Postgres plumbing: connection info, the schema, and eventsourcing's environment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.conninfo import conninfo_to_dict

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
    return schema


def ensure_schema(url: str, schema: str) -> None:
    """Create the schema if it is missing (eventsourcing requires it to exist)."""
    check_schema_name(schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def eventsourcing_env(url: str, schema: str, pool_size: int = 10) -> dict[str, str]:
    """Translate a Postgres URL into the eventsourcing library's POSTGRES_* settings."""
    info = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_SCHEMA": check_schema_name(schema),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONN_MAX_AGE": "",
        "POSTGRES_PRE_PING": "n",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "CREATE_TABLE": "y",
    }


@contextmanager
def schema_ddl_lock(url: str, schema: str) -> Iterator[None]:
    """Hold a session advisory lock for DDL on `schema` (other processes wait their turn)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"tradeledger-ddl:{schema}",))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"tradeledger-ddl:{schema}",))


def postgres_recorder(app: Application[UUID]) -> PostgresApplicationRecorder:
    """Return the application's recorder as eventsourcing's Postgres one: the relay and
    replay read its table directly (bootstrap always configures Postgres)."""
    return cast(PostgresApplicationRecorder, app.recorder)
