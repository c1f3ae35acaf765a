"""Read-model tables in Postgres: their DDL, the row codecs shared by the projector and
replay, `record_balances` for the worker, and `ReadModels`, the query side the API uses.

Every table lives in the application schema. Rebuildable tables (PROJECTIONS) can be
created under a suffix (`orders_view__rebuild`) so replay can build them beside the live
ones and swap them in. `balances_view` (exchange snapshots, not events) and
`view_changes` (the SSE resume log) are never rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
from psycopg.types.json import Jsonb

from adapters.postgres.store import check_schema_name
from projections.analytics import INF_BUCKET, LATENCY_BUCKETS_MS, EventLogRow, bucket_order
from projections.audit import ChainEntry
from projections.orders import OrderRow, TradeRow, dec, iso
from projections.positions import Position

EVENTS_TABLE = "tradeledger_events"  # eventsourcing's "<application name>_events"
CHANGE_KINDS = ("ORDER_UPDATE", "TRADE", "POSITION", "ALERT")  # ALERT: adapters/postgres/alerts.py



def changes_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of `schema`'s view changes (payload '{"seq": 123,
    "accountId": "..."}'). One per schema: deployments that share a database (staging and
    production, two test runs) must not wake each other's SSE hubs with foreign accounts."""
    return f"{check_schema_name(schema)}_changes"[:63]


# projection name -> the tables it owns (rebuilt and swapped together)
PROJECTIONS: dict[str, tuple[str, ...]] = {
    "orders": ("orders_view",),
    "trades": ("trades_view",),
    "positions": ("positions_view", "position_history"),
    "activity": ("event_log_view", "analytics_symbol_minute", "analytics_events_minute",
                 "analytics_latency", "analytics_rejections"),
    "audit": ("audit_chain",),
}

ORDER_COLS = (
    "order_id", "account_id", "client_order_id", "symbol", "side", "type", "time_in_force",
    "quantity", "price", "status", "exchange_order_id", "filled_quantity", "filled_quote",
    "commission", "reject_code", "reject_reason", "created_at", "updated_at", "status_times",
    "fill_latency_ms", "version", "last_notification_id", "status_detail", "quote_order_qty",
    "stop_price", "triggered", "order_list_id",
)
TRADE_COLS = (
    "order_id", "trade_id", "account_id", "symbol", "side", "price", "quantity",
    "quote_quantity", "commission", "commission_asset", "is_maker", "time", "notification_id",
)
POSITION_COLS = (
    "account_id", "symbol", "quantity", "average_entry_price", "realized_pnl", "fees",
    "other_fees", "updated_at", "last_notification_id", "trade_count",
)
EVENT_LOG_COLS = (
    "notification_id", "account_id", "aggregate_type", "aggregate_id", "version", "event_type",
    "symbol", "time", "payload",
)
AUDIT_COLS = ("notification_id", "originator_id", "originator_version", "event_hash",
              "chain_hash")
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "orders_view": ("order_id",),
    "trades_view": ("order_id", "trade_id"),
    "positions_view": ("account_id", "symbol"),
    "position_history": ("account_id", "symbol", "last_notification_id"),
    "event_log_view": ("notification_id",),
    "analytics_symbol_minute": ("account_id", "symbol", "minute"),
    "analytics_events_minute": ("account_id", "minute"),
    "analytics_latency": ("account_id", "bucket"),
    "analytics_rejections": ("account_id", "code", "reason"),
    "audit_chain": ("notification_id",),
}


def _table_ddl(q: str, name: str) -> list[str]:
    """CREATE statements of one rebuildable table named `name` (possibly suffixed)."""
    t = f"{q}.{name}"
    base = name.split("__")[0]
    body = {
        "orders_view": """order_id uuid PRIMARY KEY, account_id uuid NOT NULL,
            client_order_id text NOT NULL, symbol text NOT NULL, side text NOT NULL,
            type text NOT NULL, time_in_force text, quantity numeric NOT NULL, price numeric,
            status text NOT NULL, exchange_order_id text, filled_quantity numeric NOT NULL,
            filled_quote numeric NOT NULL, commission jsonb NOT NULL, reject_code text,
            reject_reason text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
            status_times jsonb NOT NULL, fill_latency_ms bigint, version int NOT NULL,
            last_notification_id bigint NOT NULL, status_detail text,
            quote_order_qty numeric, stop_price numeric,
            triggered boolean NOT NULL DEFAULT false, order_list_id uuid""",
        "trades_view": """order_id uuid NOT NULL, trade_id text NOT NULL, account_id uuid NOT NULL,
            symbol text NOT NULL, side text NOT NULL, price numeric NOT NULL,
            quantity numeric NOT NULL, quote_quantity numeric NOT NULL,
            commission numeric NOT NULL, commission_asset text NOT NULL,
            is_maker boolean NOT NULL, time timestamptz NOT NULL, notification_id bigint NOT NULL,
            PRIMARY KEY (order_id, trade_id)""",
        "positions_view": """account_id uuid NOT NULL, symbol text NOT NULL,
            quantity numeric NOT NULL, average_entry_price numeric NOT NULL,
            realized_pnl numeric NOT NULL, fees numeric NOT NULL, other_fees jsonb NOT NULL,
            updated_at timestamptz, last_notification_id bigint NOT NULL,
            trade_count int NOT NULL, PRIMARY KEY (account_id, symbol)""",
        # The position after each of its fills (POSITION_COLS; last_notification_id is the
        # fill's): where an older fill that arrives late starts its recomputation.
        "position_history": """account_id uuid NOT NULL, symbol text NOT NULL,
            quantity numeric NOT NULL, average_entry_price numeric NOT NULL,
            realized_pnl numeric NOT NULL, fees numeric NOT NULL, other_fees jsonb NOT NULL,
            updated_at timestamptz, last_notification_id bigint NOT NULL,
            trade_count int NOT NULL, PRIMARY KEY (account_id, symbol, last_notification_id)""",
        "event_log_view": """notification_id bigint PRIMARY KEY, account_id uuid NOT NULL,
            aggregate_type text NOT NULL, aggregate_id uuid NOT NULL, version int NOT NULL,
            event_type text NOT NULL, symbol text, time timestamptz NOT NULL,
            payload jsonb NOT NULL""",
        "analytics_symbol_minute": """account_id uuid NOT NULL, symbol text NOT NULL,
            minute timestamptz NOT NULL, orders bigint NOT NULL, fills bigint NOT NULL,
            volume numeric NOT NULL, PRIMARY KEY (account_id, symbol, minute)""",
        "analytics_events_minute": """account_id uuid NOT NULL, minute timestamptz NOT NULL,
            events bigint NOT NULL, PRIMARY KEY (account_id, minute)""",
        "analytics_latency": """account_id uuid NOT NULL, bucket text NOT NULL,
            count bigint NOT NULL, PRIMARY KEY (account_id, bucket)""",
        "analytics_rejections": """account_id uuid NOT NULL, code text NOT NULL,
            reason text NOT NULL, count bigint NOT NULL, PRIMARY KEY (account_id, code, reason)""",
        "audit_chain": """notification_id bigint PRIMARY KEY, originator_id uuid NOT NULL,
            originator_version bigint NOT NULL, event_hash text NOT NULL,
            chain_hash text NOT NULL""",
    }[base]
    statements = [f"CREATE TABLE IF NOT EXISTS {t} ({body})"]
    if base == "orders_view":
        # Added after the table first shipped: existing read sides get it in place.
        statements.append(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS status_detail text")
        statements.append(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS quote_order_qty numeric")
        statements.append(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS stop_price numeric")
        statements.append(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS triggered boolean "
                          "NOT NULL DEFAULT false")
        statements.append(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS order_list_id uuid")
    indexes = {
        "orders_view": [("acct_created", "account_id, created_at DESC, order_id"),
                        ("acct_status", "account_id, status")],
        "trades_view": [("acct_time", "account_id, time DESC"),
                        ("acct_symbol_nid", "account_id, symbol, notification_id")],
        "event_log_view": [("acct_nid", "account_id, notification_id"),
                           ("aggregate", "aggregate_id, version")],
    }.get(base, [])
    for suffix, cols in indexes:
        statements.append(f"CREATE INDEX IF NOT EXISTS {name}_{suffix} ON {t} ({cols})")
    return statements


def column_types(table: str) -> dict[str, str]:
    """The SQL type of each column of a rebuildable table, read from its DDL (for statements
    that pass a column as an array, e.g. `unnest(%s::uuid[])`)."""
    create = _table_ddl('"s"', table)[0]
    body = create[create.index("(") + 1:create.rindex(")")]
    types: dict[str, str] = {}
    for part in body.split(","):
        words = part.split()
        if len(words) >= 2 and words[0].isidentifier() and words[0].upper() != "PRIMARY":
            types[words[0]] = words[1]
    return types


def ddl(schema: str, tables: tuple[str, ...] | None = None, suffix: str = "") -> list[str]:
    """Idempotent DDL of the read side (all tables, or just `tables` under `suffix`)."""
    q = f'"{check_schema_name(schema)}"'
    rebuildable = tables or tuple(t for ts in PROJECTIONS.values() for t in ts)
    statements = [s for name in rebuildable for s in _table_ddl(q, name + suffix)]
    if tables is None and not suffix:
        statements += [
            f"""CREATE TABLE IF NOT EXISTS {q}.balances_view (account_id uuid NOT NULL,
                asset text NOT NULL, free numeric NOT NULL, locked numeric NOT NULL,
                updated_at timestamptz NOT NULL, PRIMARY KEY (account_id, asset))""",
            # The account's commission rates as the exchange last reported them (with a
            # full balance snapshot): the ticket's expected fee.
            f"""CREATE TABLE IF NOT EXISTS {q}.commission_view (account_id uuid PRIMARY KEY,
                maker numeric NOT NULL, taker numeric NOT NULL,
                updated_at timestamptz NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {q}.view_changes (seq bigserial PRIMARY KEY,
                account_id uuid NOT NULL,
                kind text NOT NULL CONSTRAINT view_changes_kind_check
                    CHECK (kind IN ('ORDER_UPDATE', 'TRADE', 'POSITION', 'ALERT')),
                entity_id text NOT NULL, data jsonb NOT NULL, time timestamptz NOT NULL)""",
            f"CREATE INDEX IF NOT EXISTS view_changes_acct_seq ON {q}.view_changes "
            "(account_id, seq)",
        ]
    return statements


def create_read_models(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create every read-side table that is missing (safe to run at every start)."""
    # Several processes may start at once; serialize their CREATE IF NOT EXISTS.
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "ddl"),))
    for statement in ddl(schema):
        conn.execute(statement)


def lock_key(schema: str, purpose: str) -> int:
    """A stable 63-bit advisory-lock key for (schema, purpose)."""
    digest = hashlib.sha256(f"tradeledger:{schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# ---- row codecs ------------------------------------------------------------------------

def order_values(row: OrderRow) -> tuple[Any, ...]:
    return (row.order_id, row.account_id, row.client_order_id, row.symbol, row.side, row.type,
            row.time_in_force, row.quantity, row.price, row.status, row.exchange_order_id,
            row.filled_quantity, row.filled_quote, Jsonb(row.commission), row.reject_code,
            row.reject_reason, row.created_at, row.updated_at, Jsonb(row.status_times),
            row.fill_latency_ms, row.version, row.last_notification_id, row.status_detail,
            row.quote_order_qty, row.stop_price, row.triggered, row.order_list_id)


def order_from_db(r: tuple[Any, ...]) -> OrderRow:
    return OrderRow(
        order_id=str(r[0]), account_id=str(r[1]), client_order_id=r[2], symbol=r[3], side=r[4],
        type=r[5], time_in_force=r[6], quantity=r[7], price=r[8], status=r[9],
        exchange_order_id=r[10], filled_quantity=r[11], filled_quote=r[12],
        commission=dict(r[13]), reject_code=r[14], reject_reason=r[15], created_at=r[16],
        updated_at=r[17], status_times=dict(r[18]), fill_latency_ms=r[19], version=r[20],
        last_notification_id=r[21], status_detail=r[22], quote_order_qty=r[23],
        stop_price=r[24], triggered=bool(r[25]),
        order_list_id=None if r[26] is None else str(r[26]),
    )


def trade_values(t: TradeRow) -> tuple[Any, ...]:
    return (t.order_id, t.trade_id, t.account_id, t.symbol, t.side, t.price, t.quantity,
            t.quote_quantity, t.commission, t.commission_asset, t.is_maker, t.time,
            t.notification_id)


def trade_from_db(r: tuple[Any, ...]) -> TradeRow:
    return TradeRow(order_id=str(r[0]), trade_id=r[1], account_id=str(r[2]), symbol=r[3],
                    side=r[4], price=r[5], quantity=r[6], commission=r[8],
                    commission_asset=r[9], is_maker=r[10], time=r[11], notification_id=r[12])


def position_values(account_id: str, p: Position) -> tuple[Any, ...]:
    return (account_id, p.symbol, p.quantity, p.average_entry_price, p.realized_pnl, p.fees,
            Jsonb({k: str(v) for k, v in p.other_fees.items()}), p.updated_at,
            p.last_notification_id, p.trade_count)


def position_from_db(r: tuple[Any, ...]) -> Position:
    return Position(symbol=r[1], quantity=r[2], average_entry_price=r[3], realized_pnl=r[4],
                    fees=r[5], other_fees={k: Decimal(v) for k, v in r[6].items()},
                    updated_at=r[7], last_notification_id=r[8], trade_count=r[9])


def position_dict(p: Position) -> dict[str, Any]:
    """The public JSON shape of a position (the API adds markPrice and unrealizedPnl)."""
    return {
        "symbol": p.symbol,
        "quantity": dec(p.quantity),
        "averageEntryPrice": dec(p.average_entry_price),
        "realizedPnl": dec(p.realized_pnl),
        "fees": dec(p.fees),
        "otherFees": {k: dec(v) for k, v in p.other_fees.items()},
        "updatedAt": iso(p.updated_at),
    }


def event_log_values(e: EventLogRow) -> tuple[Any, ...]:
    return (e.notification_id, e.account_id, e.aggregate_type, e.aggregate_id, e.version,
            e.event_type, e.symbol, e.time, Jsonb(e.payload))


def audit_values(e: ChainEntry) -> tuple[Any, ...]:
    return (e.notification_id, e.originator_id, e.originator_version, e.event_hash,
            e.chain_hash)


def record_balances(
    conn: psycopg.Connection[Any],
    account_id: UUID | str,
    balances: list[dict[str, Any]],
    schema: str | None = None,
    replace_all: bool = False,
    commission: dict[str, Decimal] | None = None,
) -> None:
    """Record balances as the exchange reports them ({asset, free, locked[, updatedAt]}).

    Upserts the assets given; with `replace_all` (a full account snapshot) also removes
    assets no longer reported; `commission` ({maker, taker}) comes with such a snapshot.
    `schema` defaults to the settings' database schema. Runs in the caller's transaction
    and emits no view change: balances are not an SSE kind.
    """
    if schema is None:
        from adapters.platform.settings import get_settings

        schema = get_settings().database_schema
    q = f'"{check_schema_name(schema)}"'
    now = datetime.now().astimezone()
    rows = []
    for b in balances:
        at = b.get("updatedAt")
        when = datetime.fromisoformat(at) if isinstance(at, str) else (at or now)
        rows.append((str(account_id), str(b["asset"]), Decimal(str(b["free"])),
                     Decimal(str(b.get("locked", "0"))), when))
    with conn.cursor() as cur:
        if replace_all:
            cur.execute(f"DELETE FROM {q}.balances_view WHERE account_id = %s "  # noqa: S608
                        "AND NOT (asset = ANY(%s))", (str(account_id), [r[1] for r in rows]))
        cur.executemany(
            f"INSERT INTO {q}.balances_view (account_id, asset, free, locked, updated_at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id, asset) DO UPDATE SET "
            "free = excluded.free, locked = excluded.locked, updated_at = excluded.updated_at",
            rows,
        )
        if commission is not None:
            cur.execute(
                f"INSERT INTO {q}.commission_view (account_id, maker, taker, updated_at) "  # noqa: S608
                "VALUES (%s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE SET "
                "maker = excluded.maker, taker = excluded.taker, "
                "updated_at = excluded.updated_at",
                (str(account_id), commission["maker"], commission["taker"], now))


# ---- the query side --------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One row of view_changes: what an SSE client receives, in seq order."""

    seq: int
    account_id: str
    kind: str
    entity_id: str
    data: dict  # type: ignore[type-arg]


@dataclass(frozen=True)
class HistoryFilter:
    """What the order and trade lists filter on; None means any."""

    symbol: str | None = None
    side: str | None = None
    statuses: tuple[str, ...] | None = None  # orders only
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive

    def conditions(self, time_column: str) -> list[tuple[str, Any]]:
        """The (clause, value) pairs shared by both lists (`ReadModels._where` form)."""
        return [("symbol = %s", self.symbol.upper() if self.symbol else None),
                ("side = %s", self.side.upper() if self.side else None),
                (f"{time_column} >= %s", self.start), (f"{time_column} < %s", self.end)]


def _cols(cols: tuple[str, ...]) -> str:
    return ", ".join(cols)


class ReadModels:
    """Queries over the read models, always scoped to one account."""

    def __init__(self, pool: psycopg_pool.ConnectionPool, schema: str) -> None:
        self._pool = pool
        self._q = f'"{check_schema_name(schema)}"'
        self.schema = schema

    @staticmethod
    def _where(account_id: UUID, *conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
        """An account's WHERE clause and its parameters, with each (clause, value) whose
        value is not None (clauses are our own fixed text; values are parameters)."""
        where, params = ["account_id = %s"], [str(account_id)]
        for clause, value in conditions:
            if value is not None:
                where.append(clause)
                params.extend(value if isinstance(value, tuple) else (value,))
        return " AND ".join(where), params

    def _fetch(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def list_orders(self, account_id: UUID, status: str | None = None,
                    symbol: str | None = None, limit: int = 50,
                    offset: int = 0) -> list[dict]:  # type: ignore[type-arg]
        """Orders newest first, optionally filtered by status and symbol."""
        return self.order_page(account_id, HistoryFilter(
            symbol=symbol, statuses=(status,) if status else None), limit, offset)[0]

    def order_page(self, account_id: UUID, where: HistoryFilter, limit: int, offset: int = 0,
                   after: tuple[datetime, str] | None = None,
                   ) -> tuple[list[dict], tuple[datetime, str] | None]:  # type: ignore[type-arg]
        """A page of orders newest first (created_at, then order id), filtered; and the key
        the next page starts after (None on the last page). `after` is keyset paging: it
        stays exact however deep the history, where an offset would skip or repeat rows
        that arrive meanwhile."""
        clause, params = self._where(
            account_id, *where.conditions("created_at"),
            ("status = ANY(%s)", [s.upper() for s in where.statuses] if where.statuses
             else None),
            ("(created_at < %s OR (created_at = %s AND order_id > %s))",
             (after[0], after[0], after[1]) if after else None))
        sql = (f"SELECT {_cols(ORDER_COLS)} FROM {self._q}.orders_view "  # noqa: S608
               f"WHERE {clause} ORDER BY created_at DESC, order_id LIMIT %s OFFSET %s")
        rows = [order_from_db(r) for r in self._fetch(sql, [*params, limit + 1, offset])]
        more = len(rows) > limit
        rows = rows[:limit]
        key = (rows[-1].created_at, str(rows[-1].order_id)) if more and rows else None
        return [r.to_dict() for r in rows], key

    def count_open_orders(self, account_id: UUID, symbol: str) -> int:
        """How many of the account's orders on `symbol` are not finished (MAX_NUM_ORDERS)."""
        sql = (f"SELECT count(*) FROM {self._q}.orders_view "  # noqa: S608
               "WHERE account_id = %s AND symbol = %s AND status NOT IN "
               "('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED')")
        return int(self._fetch(sql, [str(account_id), symbol.upper()])[0][0])

    def get_order(self, account_id: UUID, order_id: UUID) -> dict | None:  # type: ignore[type-arg]
        rows = self._fetch(
            f"SELECT {_cols(ORDER_COLS)} FROM {self._q}.orders_view "  # noqa: S608
            "WHERE account_id = %s AND order_id = %s", (str(account_id), str(order_id)))
        return order_from_db(rows[0]).to_dict() if rows else None

    def list_trades(self, account_id: UUID, symbol: str | None = None, limit: int = 100,
                    offset: int = 0) -> list[dict]:  # type: ignore[type-arg]
        """Trades newest first."""
        return self.trade_page(account_id, HistoryFilter(symbol=symbol), limit, offset)[0]

    def trade_page(self, account_id: UUID, where: HistoryFilter, limit: int, offset: int = 0,
                   after: tuple[datetime, int] | None = None,
                   ) -> tuple[list[dict], tuple[datetime, int] | None]:  # type: ignore[type-arg]
        """A page of trades newest first (time, then notification id), filtered; and the key
        the next page starts after (None on the last page)."""
        clause, params = self._where(
            account_id, *where.conditions("time"),
            ("(time, notification_id) < (%s, %s)", after))
        sql = (f"SELECT {_cols(TRADE_COLS)} FROM {self._q}.trades_view "  # noqa: S608
               f"WHERE {clause} ORDER BY time DESC, notification_id DESC LIMIT %s OFFSET %s")
        rows = self._fetch(sql, [*params, limit + 1, offset])
        more = len(rows) > limit
        rows = rows[:limit]
        key = (rows[-1][11], int(rows[-1][12])) if more and rows else None
        return [trade_from_db(r).to_dict() for r in rows], key

    def open_order_ids(self, account_id: UUID, symbol: str | None = None) -> list[UUID]:
        """The ids of the account's unfinished orders (of `symbol`), oldest first."""
        where, params = ["account_id = %s", "status NOT IN "
                         "('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'CANCEL_REQUESTED')"], \
            [str(account_id)]
        if symbol:
            where.append("symbol = %s")
            params.append(symbol.upper())
        sql = (f"SELECT order_id FROM {self._q}.orders_view "  # noqa: S608
               f"WHERE {' AND '.join(where)} ORDER BY created_at, order_id")
        return [UUID(str(r[0])) for r in self._fetch(sql, params)]

    def trades_between(self, account_id: UUID, start: datetime | None, end: datetime | None,
                       batch: int = 1000) -> Iterator[TradeRow]:
        """Every trade of the account in [start, end), oldest first, fetched in batches.

        Keyset paging on (time, notification_id): a connection is held only per batch, so
        a slow CSV download never pins one of the pool's connections for its whole length.
        """
        after: tuple[datetime, int] | None = None
        while True:
            where, params = self._where(
                account_id, ("time >= %s", start), ("time < %s", end),
                ("(time, notification_id) > (%s, %s)", after))
            sql = (f"SELECT {_cols(TRADE_COLS)} FROM {self._q}.trades_view "  # noqa: S608
                   f"WHERE {where} ORDER BY time, notification_id LIMIT %s")
            rows = self._fetch(sql, [*params, batch])
            for r in rows:
                yield trade_from_db(r)
            if len(rows) < batch:
                return
            after = (rows[-1][11], rows[-1][12])

    def get_position(self, account_id: UUID, symbol: str) -> Position | None:
        """The account's position in one symbol, if it ever traded it."""
        rows = self._fetch(
            f"SELECT {_cols(POSITION_COLS)} FROM {self._q}.positions_view "  # noqa: S608
            "WHERE account_id = %s AND symbol = %s", (str(account_id), symbol.upper()))
        return position_from_db(rows[0]) if rows else None

    def list_positions(self, account_id: UUID) -> list[dict]:  # type: ignore[type-arg]
        return [position_dict(p) for p in self.list_positions_raw(account_id)]

    def position_history(self, account_id: UUID, symbol: str | None = None,
                         limit: int = 1000) -> list[dict]:  # type: ignore[type-arg]
        """The position after each fill, oldest first (the latest `limit` fills)."""
        where, params = self._where(account_id,
                                    ("symbol = %s", symbol.upper() if symbol else None))
        sql = (f"SELECT {_cols(POSITION_COLS)} FROM {self._q}.position_history "  # noqa: S608
               f"WHERE {where} ORDER BY last_notification_id DESC LIMIT %s")
        rows = self._fetch(sql, [*params, limit])
        out = []
        for r in reversed(rows):
            p = position_from_db(r)
            item = position_dict(p)
            item["netPnl"] = dec(p.net_pnl)
            item["tradeCount"] = p.trade_count
            out.append(item)
        return out

    def positions_before(self, account_id: UUID, moment: datetime) -> dict[str, Position]:
        """Each symbol's position after its last fill before `moment` (e.g. 00:00 UTC)."""
        rows = self._fetch(
            f"SELECT DISTINCT ON (symbol) {_cols(POSITION_COLS)} "  # noqa: S608
            f"FROM {self._q}.position_history WHERE account_id = %s AND updated_at < %s "
            "ORDER BY symbol, last_notification_id DESC", (str(account_id), moment))
        return {p.symbol: p for p in map(position_from_db, rows)}

    def closing_fills(self, account_id: UUID) -> tuple[int, int]:
        """(wins, losses): the fills that realized a gain, and those that realized a loss."""
        rows = self._fetch(
            "SELECT count(*) FILTER (WHERE delta > 0), count(*) FILTER (WHERE delta < 0) "  # noqa: S608
            "FROM (SELECT realized_pnl - lag(realized_pnl, 1, 0::numeric) OVER "
            "(PARTITION BY symbol ORDER BY last_notification_id) AS delta "
            f"FROM {self._q}.position_history WHERE account_id = %s) AS fills",
            (str(account_id),))
        return int(rows[0][0]), int(rows[0][1])

    def balance_totals(self, account_id: UUID) -> dict[str, Decimal]:
        """Free + locked per asset, as the exchange last reported them."""
        rows = self._fetch(
            f"SELECT asset, free + locked FROM {self._q}.balances_view "  # noqa: S608
            "WHERE account_id = %s", (str(account_id),))
        return {asset: Decimal(total) for asset, total in rows}

    def list_positions_raw(self, account_id: UUID) -> list[Position]:
        """The account's positions as values (for computations over them)."""
        rows = self._fetch(
            f"SELECT {_cols(POSITION_COLS)} FROM {self._q}.positions_view "  # noqa: S608
            "WHERE account_id = %s ORDER BY symbol", (str(account_id),))
        return [position_from_db(r) for r in rows]

    def list_balances(self, account_id: UUID) -> list[dict]:  # type: ignore[type-arg]
        rows = self._fetch(
            f"SELECT asset, free, locked, updated_at FROM {self._q}.balances_view "  # noqa: S608
            "WHERE account_id = %s ORDER BY asset", (str(account_id),))
        return [{"asset": a, "free": dec(f), "locked": dec(lk), "updatedAt": iso(u)}
                for a, f, lk, u in rows]

    def commission(self, account_id: UUID) -> dict[str, Any] | None:
        """The account's commission rates as last reported, or None before the first."""
        rows = self._fetch(
            f"SELECT maker, taker, updated_at FROM {self._q}.commission_view "  # noqa: S608
            "WHERE account_id = %s", (str(account_id),))
        if not rows:
            return None
        maker, taker, updated = rows[0]
        return {"maker": dec(maker), "taker": dec(taker), "updatedAt": iso(updated)}

    def analytics(self, account_id: UUID) -> dict:  # type: ignore[type-arg]
        """Dashboard analytics: the last 24 hours of minutes, all-time histograms."""
        acct = (str(account_id),)
        q = self._q
        per_symbol = self._fetch(
            f"SELECT symbol, minute, orders, fills, volume FROM {q}.analytics_symbol_minute "  # noqa: S608
            "WHERE account_id = %s AND minute >= (SELECT max(minute) - interval '1 day' "
            f"FROM {q}.analytics_symbol_minute WHERE account_id = %s) ORDER BY minute, symbol",
            (str(account_id), str(account_id)))
        events = self._fetch(
            f"SELECT minute, events FROM {q}.analytics_events_minute "  # noqa: S608
            "WHERE account_id = %s AND minute >= (SELECT max(minute) - interval '1 day' "
            f"FROM {q}.analytics_events_minute WHERE account_id = %s) ORDER BY minute",
            (str(account_id), str(account_id)))
        latency = dict(self._fetch(
            f"SELECT bucket, count FROM {q}.analytics_latency WHERE account_id = %s", acct))  # noqa: S608
        rejections = self._fetch(
            f"SELECT code, reason, count FROM {q}.analytics_rejections "  # noqa: S608
            "WHERE account_id = %s ORDER BY count DESC, code, reason", acct)
        buckets = [str(b) for b in LATENCY_BUCKETS_MS] + [INF_BUCKET]
        return {
            "ordersPerMinute": [
                {"symbol": s, "minute": iso(m), "orders": o, "fills": f, "volume": dec(v)}
                for s, m, o, f, v in per_symbol
            ],
            "fillLatencyHistogram": [
                {"leMs": b, "count": int(latency.get(b, 0))}
                for b in sorted(buckets, key=bucket_order)
            ],
            "rejectionReasons": [
                {"code": c, "reason": r, "count": n} for c, r, n in rejections
            ],
            "eventsPerMinute": [{"minute": iso(m), "events": n} for m, n in events],
        }

    def browse_events(self, account_id: UUID, symbol: str | None = None,
                      event_type: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, aggregate_id: UUID | None = None,
                      limit: int = 100, offset: int = 0) -> list[dict]:  # type: ignore[type-arg]
        """The event browser: an account's events in notification order, filtered."""
        where, params = self._where(
            account_id, ("symbol = %s", symbol.upper() if symbol else None),
            ("event_type = %s", event_type), ("time >= %s", since), ("time < %s", until),
            ("aggregate_id = %s", str(aggregate_id) if aggregate_id else None))
        sql = (f"SELECT {_cols(EVENT_LOG_COLS)} FROM {self._q}.event_log_view "  # noqa: S608
               f"WHERE {where} ORDER BY notification_id LIMIT %s OFFSET %s")
        return [
            EventLogRow(notification_id=r[0], account_id=str(r[1]), aggregate_type=r[2],
                        aggregate_id=str(r[3]), version=r[4], event_type=r[5], symbol=r[6],
                        time=r[7], payload=r[8]).to_dict()
            for r in self._fetch(sql, [*params, limit, offset])
        ]

    def changes_since(self, account_id: UUID | str, seq: int, limit: int = 500) -> list[Change]:
        """Changes after `seq`, in order: what a reconnecting SSE client missed."""
        rows = self._fetch(
            f"SELECT seq, account_id, kind, entity_id, data FROM {self._q}.view_changes "  # noqa: S608
            "WHERE account_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (str(account_id), seq, limit))
        return [Change(seq=s, account_id=str(a), kind=k, entity_id=e, data=d)
                for s, a, k, e, d in rows]

    def changes_for(self, cursors: dict[str, int], limit: int = 500) -> list[Change]:
        """Each account's changes after its own seq (at most `limit` each), in seq order: one
        query for all the accounts a burst of notifications woke."""
        rows = self._fetch(
            "SELECT c.seq, c.account_id, c.kind, c.entity_id, c.data "  # noqa: S608
            "FROM unnest(%s::uuid[], %s::bigint[]) AS f(account_id, after) "
            "CROSS JOIN LATERAL (SELECT seq, account_id, kind, entity_id, data "
            f"FROM {self._q}.view_changes v WHERE v.account_id = f.account_id "
            "AND v.seq > f.after ORDER BY v.seq LIMIT %s) c ORDER BY c.seq",
            (list(cursors), list(cursors.values()), limit))
        return [Change(seq=s, account_id=str(a), kind=k, entity_id=e, data=d)
                for s, a, k, e, d in rows]

    def latest_seq(self, account_id: UUID | str) -> int:
        rows = self._fetch(
            f"SELECT coalesce(max(seq), 0) FROM {self._q}.view_changes "  # noqa: S608
            "WHERE account_id = %s", (str(account_id),))
        return int(rows[0][0])


def notify_payload(seq: int, account_id: str) -> str:
    return json.dumps({"seq": seq, "accountId": account_id})
