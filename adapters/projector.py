"""The projector: keeps the read models and the audit chain up to date, one event at a time.

It runs inside the consumer framework's transaction (the one that stores the consumer
position), so a crash mid-batch rolls back views and position together. Each table also
guards itself against re-delivery, so replays, swaps and duplicated messages never apply
an event twice:
- event_log_view and the analytics counters: the event log's primary key (notification id);
- orders_view: the order's version;
- trades_view: (order id, trade id);
- positions_view: a fill newer than the position applies incrementally; an older fill that
  was new to trades_view (events of different orders can arrive out of order across
  partitions) recomputes the position from trades_view in notification order; anything
  else was applied already;
- audit_chain: extended from the event store up to the event's notification id.
Change rows go to view_changes and a NOTIFY on CHANGES_CHANNEL, which Postgres delivers on
commit only.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from adapters.postgres.readmodels import (
    CHANGES_CHANNEL,
    EVENT_LOG_COLS,
    EVENTS_TABLE,
    ORDER_COLS,
    POSITION_COLS,
    TRADE_COLS,
    audit_values,
    create_read_models,
    event_log_values,
    lock_key,
    notify_payload,
    order_from_db,
    order_values,
    position_dict,
    position_from_db,
    position_values,
    trade_from_db,
    trade_values,
)
from adapters.postgres.store import check_schema_name
from domain.envelope import EventEnvelope
from projections.analytics import Increments, analytics_increments, event_log_row
from projections.audit import GENESIS, StoredRow, build_chain
from projections.orders import OrderRow, apply_order_event, trade_from_fill
from projections.positions import Position, apply_fill, fold_fills

log = logging.getLogger(__name__)


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def _upsert(table: str, cols: tuple[str, ...], key: tuple[str, ...]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({_placeholders(len(cols))}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


def ensure_tables(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the read-side tables on a connection of their own, committed at once.

    Creating them inside the caller's transaction would vanish with its rollback while this
    process went on believing they exist.
    """
    info = conn.info
    params: dict[str, Any] = dict(info.get_parameters())
    if info.password:
        params["password"] = info.password
    with psycopg.connect(**params) as own, own.transaction():
        create_read_models(own, schema)


class AuditChainProjector:
    """Extend the hash chain over the stored event rows (handler name "audit")."""

    name = "audit"

    def __init__(self, schema: str) -> None:
        q = f'"{check_schema_name(schema)}"'
        self.schema = schema
        self._chain = f"{q}.audit_chain"
        self._events = f"{q}.{EVENTS_TABLE}"
        self._ready = False

    def handle(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None:
        if not self._ready:
            ensure_tables(conn, self.schema)
            self._ready = True
        conn.execute("SELECT pg_advisory_xact_lock_shared(%s)",
                     (lock_key(self.schema, "readmodels"),))
        self.extend(conn, envelope.notification_id)

    def extend(self, conn: psycopg.Connection[Any], upto: int) -> int:
        """Chain every stored row up to notification `upto`; return how many were added."""
        last = conn.execute(f"SELECT max(notification_id) FROM {self._chain}").fetchone()  # noqa: S608
        if last and last[0] is not None and last[0] >= upto:
            return 0
        # One writer at a time: the chain is a strict sequence.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(self.schema, "audit"),))
        row = conn.execute(
            f"SELECT notification_id, chain_hash FROM {self._chain} "  # noqa: S608
            "ORDER BY notification_id DESC LIMIT 1").fetchone()
        start, prev = (row[0], row[1]) if row else (0, GENESIS)
        if start >= upto:
            return 0
        # Ids up to `upto` are all committed: writers lock the table so ids commit in order.
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self._events} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id", (start, upto)).fetchall()
        entries = [audit_values(e) for e in build_chain(
            (StoredRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows), prev)]
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self._chain} (notification_id, originator_id, "  # noqa: S608
                "originator_version, event_hash, chain_hash) VALUES (%s, %s, %s, %s, %s)",
                entries)
        return len(entries)


class Projector:
    """Maintain orders, trades, positions, analytics and the event log (handler "projector")."""

    name = "projector"

    def __init__(self, schema: str, audit: bool = True) -> None:
        q = f'"{check_schema_name(schema)}"'
        self.schema = schema
        self.audit = AuditChainProjector(schema) if audit else None
        self._ready = False
        self._gate = lock_key(schema, "readmodels")
        t = {name: f"{q}.{name}" for name in (
            "orders_view", "trades_view", "positions_view", "event_log_view",
            "analytics_symbol_minute", "analytics_events_minute", "analytics_latency",
            "analytics_rejections", "view_changes")}
        self._sql = {
            "order_get": f"SELECT {', '.join(ORDER_COLS)} FROM {t['orders_view']} "  # noqa: S608
                         "WHERE order_id = %s FOR UPDATE",
            "order_put": _upsert(t["orders_view"], ORDER_COLS, ("order_id",)),
            "event_put": f"INSERT INTO {t['event_log_view']} ({', '.join(EVENT_LOG_COLS)}) "  # noqa: S608
                         f"VALUES ({_placeholders(len(EVENT_LOG_COLS))}) "
                         "ON CONFLICT (notification_id) DO NOTHING RETURNING notification_id",
            "trade_put": f"INSERT INTO {t['trades_view']} ({', '.join(TRADE_COLS)}) "  # noqa: S608
                         f"VALUES ({_placeholders(len(TRADE_COLS))}) "
                         "ON CONFLICT (order_id, trade_id) DO NOTHING RETURNING trade_id",
            "trades_of": f"SELECT {', '.join(TRADE_COLS)} FROM {t['trades_view']} "  # noqa: S608
                         "WHERE account_id = %s AND symbol = %s ORDER BY notification_id",
            "pos_get": f"SELECT {', '.join(POSITION_COLS)} FROM {t['positions_view']} "  # noqa: S608
                       "WHERE account_id = %s AND symbol = %s FOR UPDATE",
            "pos_put": _upsert(t["positions_view"], POSITION_COLS, ("account_id", "symbol")),
            "sym_min": f"INSERT INTO {t['analytics_symbol_minute']} AS a "  # noqa: S608
                       "(account_id, symbol, minute, orders, fills, volume) "
                       "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, symbol, minute) "
                       "DO UPDATE SET orders = a.orders + excluded.orders, "
                       "fills = a.fills + excluded.fills, volume = a.volume + excluded.volume",
            "ev_min": f"INSERT INTO {t['analytics_events_minute']} AS a "  # noqa: S608
                      "(account_id, minute, events) VALUES (%s, %s, %s) "
                      "ON CONFLICT (account_id, minute) DO UPDATE SET "
                      "events = a.events + excluded.events",
            "latency": f"INSERT INTO {t['analytics_latency']} AS a (account_id, bucket, count) "  # noqa: S608
                       "VALUES (%s, %s, %s) ON CONFLICT (account_id, bucket) DO UPDATE SET "
                       "count = a.count + excluded.count",
            "reject": f"INSERT INTO {t['analytics_rejections']} AS a "  # noqa: S608
                      "(account_id, code, reason, count) VALUES (%s, %s, %s, %s) "
                      "ON CONFLICT (account_id, code, reason) DO UPDATE SET "
                      "count = a.count + excluded.count",
            "change": f"INSERT INTO {t['view_changes']} "  # noqa: S608
                      "(account_id, kind, entity_id, data, time) VALUES (%s, %s, %s, %s, %s) "
                      "RETURNING seq",
        }

    def setup(self, conn: psycopg.Connection[Any]) -> None:
        """Create the read-side tables if missing."""
        create_read_models(conn, self.schema)
        self._ready = True

    def handle(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None:
        """Apply one event to every read model, inside the caller's transaction."""
        if not self._ready:
            ensure_tables(conn, self.schema)
            self._ready = True
        sql = self._sql
        with conn.cursor() as cur:
            # Replay's swap takes this lock exclusively; the projector waits meanwhile.
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._gate,))
            before: OrderRow | None = None
            if envelope.aggregate_type == "Order":
                cur.execute(sql["order_get"], (envelope.aggregate_id,))
                found = cur.fetchone()
                before = order_from_db(found) if found else None
            after = (apply_order_event(before, envelope)
                     if envelope.aggregate_type == "Order" else None)
            order = after or before
            if envelope.aggregate_type == "Order" and order is None:
                log.warning("event %s of unknown order %s skipped",
                            envelope.event_id, envelope.aggregate_id)
            changes: list[tuple[str, str, dict[str, Any]]] = []

            entry = event_log_row(envelope, order.symbol if order else None)
            cur.execute(sql["event_put"], event_log_values(entry))
            if cur.fetchone() is not None:  # new to the event log: count it once
                self._add_analytics(cur, analytics_increments(envelope, order))

            if after is not None and (before is None or after.version != before.version):
                cur.execute(sql["order_put"], order_values(after))
                changes.append(("ORDER_UPDATE", after.order_id, after.to_dict()))

            if envelope.event_type == "OrderFilled" and order is not None:
                trade = trade_from_fill(order, envelope)
                cur.execute(sql["trade_put"], trade_values(trade))
                new_trade = cur.fetchone() is not None
                if new_trade:
                    changes.append(("TRADE", trade.trade_id, trade.to_dict()))
                position = self._position_after(cur, trade.account_id, trade.symbol,
                                                trade, new_trade)
                if position is not None:
                    cur.execute(sql["pos_put"], position_values(trade.account_id, position))
                    changes.append(("POSITION", position.symbol, position_dict(position)))

            if changes:
                self._emit(cur, envelope, changes)
        if self.audit is not None:
            self.audit.extend(conn, envelope.notification_id)

    def _position_after(self, cur: psycopg.Cursor[Any], account_id: str, symbol: str,
                        trade: Any, new_trade: bool) -> Position | None:
        cur.execute(self._sql["pos_get"], (account_id, symbol))
        found = cur.fetchone()
        current = position_from_db(found) if found else None
        if current is None or trade.notification_id > current.last_notification_id:
            return apply_fill(current or Position(symbol=symbol), trade.to_fill())
        if not new_trade:
            return None  # applied before
        # An older fill arrived after a newer one: fold all trades in store order.
        cur.execute(self._sql["trades_of"], (account_id, symbol))
        return fold_fills(symbol, (trade_from_db(r).to_fill() for r in cur.fetchall()))

    def _add_analytics(self, cur: psycopg.Cursor[Any], inc: Increments) -> None:
        sql = self._sql
        for (acct, sym, minute), (orders, fills, volume) in inc.symbol_minute.items():
            cur.execute(sql["sym_min"], (acct, sym, minute, orders, fills, volume))
        for (acct, minute), n in inc.events_minute.items():
            cur.execute(sql["ev_min"], (acct, minute, n))
        for (acct, bucket), n in inc.latency.items():
            cur.execute(sql["latency"], (acct, bucket, n))
        for (acct, code, reason), n in inc.rejections.items():
            cur.execute(sql["reject"], (acct, code, reason, n))

    def _emit(self, cur: psycopg.Cursor[Any], envelope: EventEnvelope,
              changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        from psycopg.types.json import Jsonb

        seq = 0
        for kind, entity_id, data in changes:
            cur.execute(self._sql["change"], (envelope.account_id, kind, entity_id, Jsonb(data),
                                              envelope.timestamp))
            row = cur.fetchone()
            seq = max(seq, int(row[0])) if row else seq
        # One NOTIFY per event carrying its highest seq: the hub reads changes_since().
        cur.execute("SELECT pg_notify(%s, %s)",
                    (CHANGES_CHANNEL, notify_payload(seq, envelope.account_id)))
