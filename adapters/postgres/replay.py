"""Rebuild read models from the event store, or compare them with it (docs/read-side.md):
the engine behind `tradeledger replay [--projection NAME|all] [--verify]`."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

import psycopg

from adapters.postgres.audit import verify_audit
from adapters.postgres.envelopes import to_envelope
from adapters.postgres.readmodels import (
    AUDIT_COLS,
    EVENT_LOG_COLS,
    ORDER_COLS,
    POSITION_COLS,
    PRIMARY_KEYS,
    PROJECTIONS,
    TRADE_COLS,
    create_read_models,
    ddl,
    event_log_values,
    lock_key,
    order_values,
    position_values,
    trade_values,
)
from adapters.postgres.store import check_schema_name, postgres_recorder
from commands.application import TradingApplication
from projections.audit import GENESIS, link_hashes
from projections.state import ReadModelState

PAGE_SIZE = 10_000
REBUILD, SHADOW = "__rebuild", "__shadow"


# ---- progress --------------------------------------------------------------------------

class Progress:
    """A plain-text progress line on stderr (\\r updates): count, rate, ETA."""

    def __init__(self, total: int, out: TextIO | None, label: str = "replay") -> None:
        self.total, self.out, self.label = total, out, label
        self.start = self.last = time.monotonic()

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not final and now - self.last < 0.2):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 and self.total > done else 0.0
        self.out.write(f"\r{self.label}: {done:,}/{self.total:,} events  {rate:,.0f} ev/s  "
                       f"ETA {eta:,.0f}s ")
        if final:
            self.out.write("\n")
        self.out.flush()


# ---- replay ----------------------------------------------------------------------------

@dataclass
class ReplayResult:
    """What a replay did: events folded, rate, and (with verify) the differing rows."""

    events: int = 0
    seconds: float = 0.0
    last_notification_id: int = 0
    tables: list[str] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    refused: str = ""
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Fold:
    """Read-model state plus the audit chain, folded from notifications."""

    def __init__(self, with_audit: bool) -> None:
        self.state = ReadModelState()
        self.with_audit = with_audit
        self.chain: list[tuple[Any, ...]] = []  # audit_chain rows, in AUDIT_COLS order
        self.prev = GENESIS

    def feed(self, app: TradingApplication, notifications: list[Any]) -> None:
        state, chain, with_audit = self.state, self.chain, self.with_audit
        prev = self.prev
        for n in notifications:
            envelope = to_envelope(app, n)
            state.apply(envelope)
            if with_audit:
                ev, prev = link_hashes(prev, n.id, envelope.aggregate_id, n.originator_version,
                                       n.topic, n.state)
                chain.append((n.id, n.originator_id, n.originator_version, ev, prev))
        self.prev = prev


class StoredNotification(NamedTuple):
    """A stored event as replay reads it: what eventsourcing's Notification carries, as a
    tuple (building one Notification dataclass per event cost replay about 5%)."""

    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


def _read_pages(app: TradingApplication, after: int, page_size: int) -> Iterator[list[Any]]:
    recorder = postgres_recorder(app)
    # originator_id as text: Postgres prints it, sparing a UUID object and its str() per
    # event (the envelope wants the text; a uuid column takes it back as it is).
    query = (f"SELECT notification_id, originator_id::text, originator_version, topic, state "  # noqa: S608
             f'FROM "{check_schema_name(recorder.datastore.schema)}".'
             f'"{recorder.events_table_name}" '
             "WHERE notification_id > %s ORDER BY notification_id LIMIT %s")
    make = StoredNotification._make
    with recorder.datastore.get_connection() as conn:
        while True:
            with conn.cursor(row_factory=lambda _cursor: make) as cur:
                page = cur.execute(query, (after, page_size)).fetchall()
            if not page:
                return
            yield page
            after = page[-1].id


def resolve_projections(name: str) -> list[str]:
    if name == "all":
        return list(PROJECTIONS)
    if name not in PROJECTIONS:
        raise ValueError(f"unknown projection {name!r}; choose from all, {', '.join(PROJECTIONS)}")
    return [name]


# Append-only during a replay: written page by page, then forgotten.
STREAMED = ("event_log_view", "audit_chain", "position_history")


def _rows_for(table: str, fold: _Fold) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    s = fold.state
    if table == "orders_view":
        return ORDER_COLS, (order_values(o) for o in s.orders.values())
    if table == "trades_view":
        return TRADE_COLS, (trade_values(t) for t in s.trades.values())
    if table == "positions_view":
        return POSITION_COLS, (position_values(a, p) for (a, _), p in s.positions.items())
    if table == "position_history":
        return POSITION_COLS, (position_values(a, p) for a, p in s.position_history)
    if table == "event_log_view":
        return EVENT_LOG_COLS, (event_log_values(e) for e in s.event_log)
    if table == "audit_chain":
        return AUDIT_COLS, iter(fold.chain)
    a = s.analytics
    if table == "analytics_symbol_minute":
        return (("account_id", "symbol", "minute", "orders", "fills", "volume"),
                ((*k, *v) for k, v in a.symbol_minute.items()))
    if table == "analytics_events_minute":
        return ("account_id", "minute", "events"), ((*k, v) for k, v in a.events_minute.items())
    if table == "analytics_latency":
        return ("account_id", "bucket", "count"), ((*k, v) for k, v in a.latency.items())
    if table == "analytics_rejections":
        return (("account_id", "code", "reason", "count"),
                ((*k, v) for k, v in a.rejections.items()))
    raise ValueError(table)


def _copy(conn: psycopg.Connection[Any], q: str, table: str, suffix: str, fold: _Fold) -> None:
    cols, rows = _rows_for(table, fold)
    with conn.cursor() as cur, cur.copy(
        f"COPY {q}.{table}{suffix} ({', '.join(cols)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def _feed_and_stream(conn: psycopg.Connection[Any], q: str, app: TradingApplication, fold: _Fold,
                     pages: Iterator[list[Any]], streamed: list[str], suffix: str,
                     bar: Progress) -> None:
    """Fold pages; write the append-only rows of each page at once and forget them."""
    for page in pages:
        fold.feed(app, page)
        for table in streamed:
            _copy(conn, q, table, suffix, fold)
        fold.state.event_log.clear()
        fold.state.position_history.clear()
        fold.chain.clear()
        bar.update(fold.state.last_notification_id)


def _swap(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    q = f'"{schema}"'
    conn.execute(f"DROP TABLE IF EXISTS {q}.{table}")
    conn.execute(f"ALTER TABLE {q}.{table}{REBUILD} RENAME TO {table}")
    indexes = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
        (schema, table)).fetchall()
    prefix = f"{table}{REBUILD}"
    for (name,) in indexes:
        if name.startswith(prefix):
            conn.execute(f'ALTER INDEX {q}."{name}" RENAME TO "{table}{name[len(prefix):]}"')


def _differences(conn: psycopg.Connection[Any], q: str, table: str) -> list[dict[str, Any]]:
    keys = PRIMARY_KEYS[table]
    on = " AND ".join(f"l.{k} = s.{k}" for k in keys)
    rows = conn.execute(
        f"SELECT to_jsonb(l), to_jsonb(s) FROM {q}.{table} l FULL JOIN {q}.{table}{SHADOW} s "  # noqa: S608
        f"ON {on} WHERE ROW(l.*) IS DISTINCT FROM ROW(s.*) "
        f"ORDER BY {', '.join(f'coalesce(l.{k}, s.{k})' for k in keys)}").fetchall()
    out = []
    for live, rebuilt in rows:
        ref = live or rebuilt
        out.append({"table": table, "key": {k: ref[k] for k in keys},
                    "live": live, "rebuilt": rebuilt})
    return out


def replay(app: TradingApplication, database_url: str, schema: str, projections: list[str],
           verify: bool = False, progress: TextIO | None = None,
           page_size: int = PAGE_SIZE, force: bool = False) -> ReplayResult:
    """Rebuild `projections` from the event store and swap them in (or, with `verify`,
    compare them with the live tables and change nothing); see _replay."""
    # The fold keeps every order, position and history row in memory and makes no cycles:
    # the cyclic collector would only rescan that growing heap again and again (it cost
    # replay about a quarter of its time at 200,000 events).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _replay(app, database_url, schema, projections, verify, progress, page_size,
                       force)
    finally:
        if enabled:
            gc.enable()


def _replay(app: TradingApplication, database_url: str, schema: str, projections: list[str],
            verify: bool, progress: TextIO | None, page_size: int, force: bool
            ) -> ReplayResult:
    """Rebuild `projections` from the event store and swap them in (or, with `verify`,
    compare them with the live tables and change nothing).

    One transaction: build the new tables beside the live ones while the projector runs
    on; then hold the projector off (advisory lock), fold what it appended meanwhile,
    write the rest and swap (or compare). The projector then carries on: whatever it
    re-delivers is already applied and skipped (see adapters/postgres/projector.py).
    """
    check_schema_name(schema)
    q = f'"{schema}"'
    tables = [t for p in projections for t in PROJECTIONS[p]]
    streamed = [t for t in tables if t in STREAMED]
    result = ReplayResult(tables=tables)
    fold = _Fold(with_audit="audit" in projections)
    started = time.monotonic()
    bar = Progress(app.recorder.max_notification_id() or 0, progress,
                   "verify" if verify else "replay")
    suffix = SHADOW if verify else REBUILD

    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            create_read_models(conn, schema)
        if "audit" in projections and not verify and not force:
            check = verify_audit(conn, schema)
            if not check.ok:
                result.refused = (f"{check.describe()}; rebuilding the chain would hide it "
                                  "(use --force to rebuild anyway)")
                return result
        with conn.transaction() as tx:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {q}.{table}{suffix}")
            for statement in ddl(schema, tuple(tables), suffix):
                conn.execute(statement)
            # Phase 1, projector running: the store as it is now.
            _feed_and_stream(conn, q, app, fold, _read_pages(app, 0, page_size), streamed,
                             suffix, bar)
            result.phases["fold"] = time.monotonic() - started
            # Phase 2, projector held off: catch up, write the rest, swap or compare.
            locked = time.monotonic()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "readmodels"),))
            if "audit" in projections:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "audit"),))
            _feed_and_stream(conn, q, app, fold,
                             _read_pages(app, fold.state.last_notification_id, page_size),
                             streamed, suffix, bar)
            bar.total = max(bar.total, fold.state.last_notification_id)
            bar.update(fold.state.last_notification_id, final=True)
            for table in tables:
                if table not in STREAMED:
                    _copy(conn, q, table, suffix, fold)
            if verify:
                for table in tables:
                    result.differences.extend(_differences(conn, q, table))
                result.phases["locked"] = time.monotonic() - locked
                raise psycopg.Rollback(tx)  # verification changes nothing
            for table in tables:
                _swap(conn, schema, table)
            result.phases["locked"] = time.monotonic() - locked
    result.events = fold.state.count
    result.last_notification_id = fold.state.last_notification_id
    result.seconds = time.monotonic() - started
    return result
