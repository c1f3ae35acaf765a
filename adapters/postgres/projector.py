"""The projector: keeps the read models and the audit chain up to date, one event at a time.

It runs inside the consumer framework's transaction (the one that stores the consumer
position), so a crash mid-batch rolls back views and position together. Each table also
guards itself against re-delivery, so replays, swaps and duplicated messages never apply
an event twice:
- event_log_view and the analytics counters: the event log's primary key (notification id);
- orders_view: the order's version;
- trades_view: (order id, trade id);
- positions_view and position_history: a fill is applied exactly when position_history has
  a row at its notification id. Once per batch, the fills in trades_view without one fold
  from the history row before the oldest of them, over every fill since, in notification
  order. Events are keyed by account, so an account's fills arrive in store order and
  that is just the new fills; the refold of later ones stays for the fills that can still
  come late: a retried dead letter, and the move from the aggregate-keyed topic (its
  consumer may have applied a later fill of an account before an earlier one);
- audit_chain: extended from the event store up to the batch's newest notification id.
Change rows go to view_changes and a NOTIFY on changes_channel(schema), which Postgres delivers on
commit only. Under the consumer framework the projector stages each event and flushes once
per batch (adapters/kafka/consumer.py, StagingHandler): the chain is extended and each
account notified once per transaction instead of once per event.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb

from adapters.platform.metrics import PROJECTED_EVENTS
from adapters.postgres.readmodels import (
    AUDIT_COLS,
    EVENT_LOG_COLS,
    EVENTS_TABLE,
    ORDER_COLS,
    POSITION_COLS,
    PRIMARY_KEYS,
    TRADE_COLS,
    audit_values,
    changes_channel,
    column_types,
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
from projections.positions import Position, apply_fill

log = logging.getLogger(__name__)


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def _upsert(table: str, cols: tuple[str, ...], key: tuple[str, ...]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({_placeholders(len(cols))}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


def _unnest(columns: dict[str, str]) -> str:
    """`unnest` of one array parameter per column, zipped into rows in array order.

    One statement for any number of rows, with the same text every time: psycopg caches its
    parse and Postgres prepares it (a `VALUES` list of N rows is a new, long statement for
    every N, which psycopg parses in Python each time: a fifth of the projector's CPU)."""
    arrays = ", ".join(f"%s::{kind}[]" for kind in columns.values())
    return f"unnest({arrays}) WITH ORDINALITY AS u({', '.join(columns)}, ord)"


def _add_counts(table: str, name: str, counts: tuple[str, ...]) -> str:
    """One multi-row upsert (an `_unnest` source) that adds `counts` to a counter table's
    rows, keyed by its primary key."""
    types = column_types(name)
    key = PRIMARY_KEYS[name]
    cols = (*key, *counts)
    adds = ", ".join(f"{c} = a.{c} + excluded.{c}" for c in counts)
    return (f"INSERT INTO {table} AS a ({', '.join(cols)}) "  # noqa: S608
            f"SELECT {', '.join(cols)} FROM {_unnest({c: types[c] for c in cols})} "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {adds}")


def _multi_row(conn: psycopg.Connection[Any], statement: str,
               rows: list[tuple[Any, ...]]) -> psycopg.Cursor[Any]:
    """Run `statement` (one `_unnest` source) over `rows`, one array per column; return the
    cursor, whose answer the caller reads (and closes)."""
    cursor = conn.cursor()
    cursor.execute(statement, [list(column) for column in zip(*rows, strict=True)])
    return cursor


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
        types = column_types("audit_chain")
        self._insert = (f"INSERT INTO {self._chain} ({', '.join(AUDIT_COLS)}) "  # noqa: S608
                        f"SELECT {', '.join(AUDIT_COLS)} FROM "
                        f"{_unnest({c: types[c] for c in AUDIT_COLS})} ORDER BY ord")
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
        if entries:  # one statement for the whole stretch
            _multi_row(conn, self._insert, entries).close()
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
        # Staged for flush: the newest notification id to chain, each account's newest seq.
        self._chain_upto = 0
        self._notices: dict[str, int] = {}
        # (account, symbol) -> the oldest notification id of its fills staged (a hint only)
        self._fills: dict[tuple[str, str], int] = {}
        # (cursor of an event-log insert answering the notification ids new to the log, the
        # counters each event adds if its row is new)
        self._counted: list[tuple[psycopg.Cursor[Any], dict[int, Increments]]] = []
        # cursors of change inserts answering (seq, account_id) rows: read at flush
        self._seq_cursors: list[psycopg.Cursor[Any]] = []
        # Rows staged for one multi-row statement per table (written by _write_staged):
        # event-log rows with their counters, each order's newest state, ORDER_UPDATE changes,
        # fills (a trade row and its TRADE change, in one statement each: the change only if
        # the trade is new).
        self._log_rows: list[tuple[tuple[Any, ...], Increments]] = []
        self._order_rows: dict[str, OrderRow] = {}
        self._change_rows: list[tuple[Any, ...]] = []
        self._trade_rows: list[tuple[Any, ...]] = []
        # The batch's orders as of the last staged event (prepare), until flush
        self._orders: dict[str, OrderRow | None] | None = None
        t = {name: f"{q}.{name}" for name in (
            "orders_view", "trades_view", "positions_view", "position_history",
            "event_log_view",
            "analytics_symbol_minute", "analytics_events_minute", "analytics_latency",
            "analytics_rejections", "view_changes")}
        log_types = column_types("event_log_view")
        order_types = column_types("orders_view")
        log_types = {c: log_types[c] for c in EVENT_LOG_COLS}
        order_types = {c: order_types[c] for c in ORDER_COLS}
        change_types = {"account_id": "uuid", "kind": "text", "entity_id": "text",
                        "data": "jsonb", "time": "timestamptz"}
        self._sql = {
            "order_get": f"SELECT {', '.join(ORDER_COLS)} FROM {t['orders_view']} "  # noqa: S608
                         "WHERE order_id = %s FOR UPDATE",
            "orders_get": f"SELECT {', '.join(ORDER_COLS)} FROM {t['orders_view']} "  # noqa: S608
                          "WHERE order_id = ANY(%s::uuid[]) FOR UPDATE",
            "order_put": _upsert(t["orders_view"], ORDER_COLS, ("order_id",)),
            "events_put": f"INSERT INTO {t['event_log_view']} ({', '.join(EVENT_LOG_COLS)}) "  # noqa: S608
                          f"SELECT {', '.join(EVENT_LOG_COLS)} FROM {_unnest(log_types)} "
                          "ORDER BY ord "
                          "ON CONFLICT (notification_id) DO NOTHING RETURNING notification_id",
            "orders_put": _upsert(t["orders_view"], ORDER_COLS, ("order_id",)).replace(
                f"VALUES ({_placeholders(len(ORDER_COLS))})",
                f"SELECT {', '.join(ORDER_COLS)} FROM {_unnest(order_types)}"),  # noqa: S608
            "pos_put": _upsert(t["positions_view"], POSITION_COLS, ("account_id", "symbol")),
            "history_put": _upsert(t["position_history"], POSITION_COLS,
                                   ("account_id", "symbol", "last_notification_id")),
            "history_before": f"SELECT {', '.join(POSITION_COLS)} "  # noqa: S608
                              f"FROM {t['position_history']} WHERE account_id = %s "
                              "AND symbol = %s AND last_notification_id < %s "
                              "ORDER BY last_notification_id DESC LIMIT 1",
            "fills_since": f"SELECT notification_id FROM {t['trades_view']} "  # noqa: S608
                           "WHERE account_id = %s AND symbol = %s AND notification_id >= %s "
                           "ORDER BY notification_id",
            "held_since": f"SELECT last_notification_id FROM {t['position_history']} "  # noqa: S608
                          "WHERE account_id = %s AND symbol = %s "
                          "AND last_notification_id >= %s",
            "trades_after": f"SELECT {', '.join(TRADE_COLS)} FROM {t['trades_view']} "  # noqa: S608
                            "WHERE account_id = %s AND symbol = %s AND notification_id > %s "
                            "ORDER BY notification_id",
            # Counters: added once per batch and key, for the events new to the log (see
            # flush); adding per event made a busy account's row a long chain of versions.
            # One statement per table and batch (the batch's keys are distinct).
            "sym_min": _add_counts(t["analytics_symbol_minute"], "analytics_symbol_minute",
                                   ("orders", "fills", "volume")),
            "ev_min": _add_counts(t["analytics_events_minute"], "analytics_events_minute",
                                  ("events",)),
            "latency": _add_counts(t["analytics_latency"], "analytics_latency", ("count",)),
            "reject": _add_counts(t["analytics_rejections"], "analytics_rejections",
                                  ("count",)),
            # A TRADE change only for a trade new to trades_view.
            "trade_put_change": f"WITH new_trade AS (INSERT INTO {t['trades_view']} "  # noqa: S608
                                f"({', '.join(TRADE_COLS)}) "
                                f"VALUES ({_placeholders(len(TRADE_COLS))}) "
                                "ON CONFLICT (order_id, trade_id) DO NOTHING RETURNING 1) "
                                f"INSERT INTO {t['view_changes']} "
                                "(account_id, kind, entity_id, data, time) "
                                "SELECT %s::uuid, 'TRADE', %s::text, %s::jsonb, "
                                "%s::timestamptz FROM new_trade RETURNING seq, account_id",
            "change": f"INSERT INTO {t['view_changes']} "  # noqa: S608
                      "(account_id, kind, entity_id, data, time) VALUES (%s, %s, %s, %s, %s) "
                      "RETURNING seq, account_id",
            # ORDER BY: seqs are drawn in the events' order.
            "changes_put": f"INSERT INTO {t['view_changes']} "  # noqa: S608
                           "(account_id, kind, entity_id, data, time) "
                           f"SELECT account_id, kind, entity_id, data, time FROM "
                           f"{_unnest(change_types)} ORDER BY ord RETURNING seq, account_id",
        }

    def setup(self, conn: psycopg.Connection[Any]) -> None:
        """Create the read-side tables if missing."""
        create_read_models(conn, self.schema)
        self._ready = True

    def _ensure_ready(self, conn: psycopg.Connection[Any]) -> None:
        if not self._ready:
            ensure_tables(conn, self.schema)
            self._ready = True

    def handle(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None:
        """Apply one event to every read model, inside the caller's transaction."""
        self.stage(conn, envelope)
        self.flush(conn)

    def flush(self, conn: psycopg.Connection[Any]) -> None:
        """Finish what the staged events of this transaction left: apply the fills to their
        positions, extend the audit chain to the newest event and send one change
        notification per account (Postgres delivers NOTIFY on commit only, so one per batch
        wakes the SSE hub as early as one per event)."""
        self._orders = None
        self._write_staged(conn)
        seqs, self._seq_cursors = self._seq_cursors, []
        self._note_seqs(seqs)  # reading them syncs a pipeline the batch runs in
        counted, self._counted = self._counted, []
        total = Increments()
        for logged, incs in counted:
            for (nid,) in logged.fetchall():  # new to the event log: count it once
                total.add(incs[int(nid)])
            logged.close()
        self._add_analytics(conn, total)
        fills, self._fills = self._fills, {}
        if fills:
            # Pipelined: only the reads wait for their answers.
            with conn.pipeline(), conn.cursor() as cur:
                # In key order, so that replicas lock shared positions in the same order.
                for (account_id, symbol), since in sorted(fills.items()):
                    self._update_position(cur, account_id, symbol, since)
        upto, self._chain_upto = self._chain_upto, 0
        notices, self._notices = self._notices, {}
        if self.audit is not None and upto:
            self.audit.extend(conn, upto)
        for account_id, seq in notices.items():
            conn.execute("SELECT pg_notify(%s, %s)",
                         (changes_channel(self.schema), notify_payload(seq, account_id)))

    def discard(self) -> None:
        """Forget what was staged: the batch's transaction is being rolled back."""
        self._orders = None
        self._seq_cursors = []
        self._counted = []
        self._log_rows, self._order_rows = [], {}
        self._change_rows, self._trade_rows = [], []
        self._fills = {}
        self._chain_upto = 0
        self._notices = {}

    def prepare(self, conn: psycopg.Connection[Any], envelopes: list[EventEnvelope]) -> None:
        """Read (and lock) every order the batch touches in one query; stage then reads and
        updates this copy until flush."""
        self._ensure_ready(conn)
        ids = list({e.aggregate_id for e in envelopes if e.aggregate_type == "Order"})
        orders: dict[str, OrderRow | None] = dict.fromkeys(ids)
        with conn.cursor() as cur:
            # Replay's swap takes this lock exclusively; the projector waits meanwhile. Held
            # to the end of the transaction: once per batch is enough.
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._gate,))
            if ids:
                cur.execute(self._sql["orders_get"], (ids,))
                for row in cur.fetchall():
                    order = order_from_db(row)
                    orders[order.order_id] = order
        self._orders = orders

    def stage(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None:
        """Apply one event to the read models; positions, the audit chain and NOTIFY wait
        for flush.

        Under the consumer (after prepare) the rows are only staged, and flush writes them
        with one statement per table for the whole batch. Alone (a careful redo, or
        handle()) the event is written here, so an error surfaces inside its savepoint.
        """
        self._ensure_ready(conn)
        sql = self._sql
        orders = self._orders
        if orders is None:
            # Replay's swap takes this lock exclusively; the projector waits meanwhile
            # (prepare took it for a whole batch).
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._gate,))
        before: OrderRow | None = None
        if envelope.aggregate_type == "Order":
            if orders is not None and envelope.aggregate_id in orders:
                before = orders[envelope.aggregate_id]
            else:
                with conn.cursor() as cur:
                    cur.execute(sql["order_get"], (envelope.aggregate_id,))
                    found = cur.fetchone()
                before = order_from_db(found) if found else None
        after = (apply_order_event(before, envelope)
                 if envelope.aggregate_type == "Order" else None)
        if orders is not None and after is not None:
            orders[after.order_id] = after
        order = after or before
        if envelope.aggregate_type == "Order" and order is None:
            log.warning("event %s of unknown order %s skipped",
                        envelope.event_id, envelope.aggregate_id)

        entry = event_log_row(envelope, order.symbol if order else None)
        self._log_rows.append((event_log_values(entry), analytics_increments(envelope, order)))
        if after is not None and (before is None or after.version != before.version):
            self._order_rows[after.order_id] = after
            self._change_rows.append((envelope.account_id, "ORDER_UPDATE", after.order_id,
                                      Jsonb(after.to_dict()), envelope.timestamp))
        if envelope.event_type == "OrderFilled" and order is not None:
            trade = trade_from_fill(order, envelope)
            self._trade_rows.append((*trade_values(trade), envelope.account_id, trade.trade_id,
                                     Jsonb(trade.to_dict()), envelope.timestamp))
            key = (trade.account_id, trade.symbol)
            self._fills[key] = min(self._fills.get(key, trade.notification_id),
                                   trade.notification_id)
        PROJECTED_EVENTS.labels(event=envelope.event_type).inc()
        self._chain_upto = max(self._chain_upto, envelope.notification_id)
        if orders is None:
            self._write_staged(conn)

    def _write_staged(self, conn: psycopg.Connection[Any]) -> None:
        """Send the staged rows: one statement per table (a trade's row and TRADE change go
        in one per fill: the change is made only if the trade is new). The answers (new
        event-log rows, change seqs) are read at flush."""
        log_rows, self._log_rows = self._log_rows, []
        order_rows, self._order_rows = self._order_rows, {}
        change_rows, self._change_rows = self._change_rows, []
        trade_rows, self._trade_rows = self._trade_rows, []
        if not (log_rows or order_rows or change_rows or trade_rows):
            return
        sql = self._sql
        # Pipeline mode: statements go out without waiting for each answer; under the
        # consumer the whole batch is one pipeline already.
        batched = conn.pgconn.pipeline_status != pq.PipelineStatus.OFF
        counted: list[tuple[psycopg.Cursor[Any], dict[int, Increments]]] = []
        seq_cursors: list[psycopg.Cursor[Any]] = []
        with nullcontext() if batched else conn.pipeline():
            if log_rows:
                # They answer at flush which rows are new to the log.
                incs = {int(values[0]): inc for values, inc in log_rows}
                counted.append((_multi_row(conn, sql["events_put"],
                                           [values for values, _ in log_rows]), incs))
            if order_rows:
                _multi_row(conn, sql["orders_put"],
                           [order_values(o) for o in order_rows.values()]).close()
            if change_rows:
                seq_cursors.append(_multi_row(conn, sql["changes_put"], change_rows))
            for row in trade_rows:
                trade_cursor = conn.cursor()
                trade_cursor.execute(sql["trade_put_change"], row)
                seq_cursors.append(trade_cursor)
        # Kept only once sent: alone, a failure above leaves nothing for flush to read.
        self._counted += counted
        self._seq_cursors += seq_cursors

    def _add_analytics(self, conn: psycopg.Connection[Any], inc: Increments) -> None:
        """Add a batch's counters, one upsert per key."""
        sql = self._sql
        for name, rows in (
            ("sym_min", [(*k, *v) for k, v in inc.symbol_minute.items()]),
            ("ev_min", [(*k, n) for k, n in inc.events_minute.items()]),
            ("latency", [(*k, n) for k, n in inc.latency.items()]),
            ("reject", [(*k, n) for k, n in inc.rejections.items()]),
        ):
            if rows:
                _multi_row(conn, sql[name], rows).close()

    def _change(self, conn: psycopg.Connection[Any], account_id: str, time: str, kind: str,
                entity_id: str, data: dict[str, Any]) -> psycopg.Cursor[Any]:
        """Queue one view_changes row; its cursor answers the seq once the pipeline synced."""
        cursor = conn.cursor()
        cursor.execute(self._sql["change"], (account_id, kind, entity_id, Jsonb(data), time))
        return cursor

    def _note_seqs(self, cursors: list[psycopg.Cursor[Any]]) -> None:
        """Remember each account's highest change seq, from cursors answering (seq,
        account_id) rows, for flush's NOTIFY (the hub then reads changes_since())."""
        notices = self._notices
        for cursor in cursors:
            for value, account in cursor.fetchall():
                account_id = str(account)
                notices[account_id] = max(notices.get(account_id, 0), int(value))
            cursor.close()

    def _update_position(self, cur: psycopg.Cursor[Any], account_id: str, symbol: str,
                         since: int) -> None:
        """Apply the fills of one position from notification `since` on that it does not
        hold yet: write their position_history rows, the position and a POSITION change.

        Which fills are applied is read from the tables, never from memory, so a rolled-back
        batch or savepoint cannot leave a phantom: a fill is applied exactly when
        position_history has a row at its notification id.
        """
        sql = self._sql
        # One writer per position (replicas may share an account): the key-ordered flush
        # makes the lock order the same everywhere.
        cur.execute("SELECT pg_advisory_xact_lock(%s)",
                    (lock_key(self.schema, f"position:{account_id}:{symbol}"),))
        # The oldest fill since `since` without a history row. Two index range scans and a
        # set difference here: as one anti-join, a plan made before the tables had
        # statistics compared every trade with every history row (seconds per batch).
        cur.execute(sql["fills_since"], (account_id, symbol, since))
        fills = [nid for (nid,) in cur.fetchall()]
        cur.execute(sql["held_since"], (account_id, symbol, since))
        held = {nid for (nid,) in cur.fetchall()}
        oldest = next((nid for nid in fills if nid not in held), None)
        if oldest is None:
            return  # every fill was applied before (a re-delivery)
        # Fold from the position after the fill before the oldest unapplied one, over every
        # fill since: usually just the new fills (an account's events share a partition);
        # when an older fill arrives late (a retried dead letter, the move from the old
        # topic) also the later ones it changes, never the account's whole history. Without
        # such a row (the first fill, or fills from before position_history existed) fold
        # every fill.
        cur.execute(sql["history_before"], (account_id, symbol, oldest))
        base = cur.fetchone()
        # Without a base, last_notification_id 0 takes every fill (ids start at 1).
        position = position_from_db(base) if base else Position(symbol=symbol)
        cur.execute(sql["trades_after"], (account_id, symbol, position.last_notification_id))
        history = []
        for row in cur.fetchall():
            trade = trade_from_db(row)
            position = apply_fill(position, trade.to_fill())
            history.append(position_values(account_id, position))
        if not history:
            return
        cur.executemany(sql["history_put"], history)
        cur.execute(sql["pos_put"], history[-1])
        changed = self._change(cur.connection, account_id, trade.time.isoformat(), "POSITION",
                               symbol, position_dict(position))
        self._note_seqs([changed])
