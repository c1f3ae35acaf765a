"""Tables of the event bus, in the application's schema: relay position (with the per-partition
chain heads), consumer positions, dead letters, and the trigger that wakes the relay."""

from __future__ import annotations

import psycopg
from psycopg import sql

from adapters.postgres.store import check_schema_name

# One statement each; all idempotent, so every process may run them at start.
_TABLES = (
    """CREATE TABLE IF NOT EXISTS {schema}.relay_positions (
        name text PRIMARY KEY,
        notification_id bigint NOT NULL DEFAULT 0,
        epoch integer NOT NULL DEFAULT 1,
        partition_offsets jsonb NOT NULL DEFAULT '[]',
        partition_heads jsonb NOT NULL DEFAULT '[]',
        updated_at timestamptz NOT NULL DEFAULT now())""",
    # Tables created before the chain headers existed; the relay rebuilds the heads.
    """ALTER TABLE {schema}.relay_positions
        ADD COLUMN IF NOT EXISTS partition_heads jsonb NOT NULL DEFAULT '[]'""",
    # How the relay keyed the topic's records. Rows from before it are a topic keyed by
    # aggregate id; a relay of this code publishes keyed by account id ("account") and
    # refuses to continue an "aggregate" topic (adapters/kafka/migration.py).
    """ALTER TABLE {schema}.relay_positions
        ADD COLUMN IF NOT EXISTS key_scheme text NOT NULL DEFAULT 'aggregate'""",
    """CREATE TABLE IF NOT EXISTS {schema}.consumer_positions (
        consumer text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        kafka_offset bigint NOT NULL,
        notification_id bigint NOT NULL,
        epoch integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, topic, partition))""",
    """CREATE TABLE IF NOT EXISTS {schema}.dead_letters (
        id bigserial PRIMARY KEY,
        consumer text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        kafka_offset bigint NOT NULL,
        notification_id bigint,
        envelope text NOT NULL,
        error text NOT NULL,
        attempts integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retry_requested boolean NOT NULL DEFAULT false,
        resolved_at timestamptz)""",
    """CREATE INDEX IF NOT EXISTS dead_letters_open_idx
        ON {schema}.dead_letters (consumer) WHERE resolved_at IS NULL""",
)


def ensure_bus_tables(conn: psycopg.Connection, schema: str) -> None:
    """Create the event-bus tables in `schema` if they are missing."""
    ident = sql.Identifier(check_schema_name(schema))
    with conn.transaction():
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog: serialize.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"bus-ddl:{schema}",))
        for statement in _TABLES:
            conn.execute(sql.SQL(statement).format(schema=ident))


def wake_channel(schema: str) -> str:
    """Return the LISTEN/NOTIFY channel on which appends to `schema`'s event table are announced."""
    return f"{check_schema_name(schema)}_events_appended"[:63]


def published_channel(schema: str) -> str:
    """Return the channel on which the relay announces, with the topic as payload, that it
    published a batch (consumers sleep on it when idle)."""
    return f"{check_schema_name(schema)}_published"[:63]


def install_wake_trigger(conn: psycopg.Connection, schema: str, events_table: str) -> None:
    """Install a statement-level AFTER INSERT trigger on the events table that pg_notifies."""
    ident = sql.Identifier(check_schema_name(schema))
    channel = sql.Literal(wake_channel(schema))
    with conn.transaction():
        exists = conn.execute(
            "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND t.tgname = 'tradeledger_relay_wake'",
            (schema, events_table),
        ).fetchone()
        if exists:
            return
        conn.execute(sql.SQL(
            "CREATE OR REPLACE FUNCTION {schema}.tradeledger_relay_wake() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify({channel}, ''); RETURN NULL; END $$"
        ).format(schema=ident, channel=channel))
        conn.execute(sql.SQL(
            "CREATE OR REPLACE TRIGGER tradeledger_relay_wake AFTER INSERT ON {schema}.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.tradeledger_relay_wake()"
        ).format(schema=ident, table=sql.Identifier(events_table)))
