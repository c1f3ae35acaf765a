"""What the chaos suite asserts afterwards, read from our Postgres and the paper exchange's
SQLite state (read only): terminal states that match the exchange, one exchange order per
order, every fill once, and every SSE change delivered exactly once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from adapters.platform.launcher import ROOT
from tests.chaos.traders import STOP_PASSED, PlannedOrder, Trader

TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED"}
RESTING = {"NEW", "PARTIALLY_FILLED"}
RESTING_TYPES = {"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
EVENTS_TABLE = "tradeledger_events"
# Binance's answers to a client over its limits: too much weight, too many orders, banned.
RATE_LIMIT_CODES = {"-1003", "-1015", "429", "418"}


def exchange_client_order_id(order_id: str) -> str:
    """The newClientOrderId the worker sends (commands/execution.py)."""
    return "tl" + UUID(order_id).hex


@dataclass
class Snapshot:
    """The event store's orders (the truth), our read models, and the exchange's records."""

    truth: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)
    changes: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    exchange_orders: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    exchange_trades: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def settled(row: dict[str, Any] | None) -> bool:
    """Terminal, or a GTC limit (or stop-limit) order resting on the book."""
    if row is None:
        return False
    if row["status"] in TERMINAL:
        return True
    return (row["status"] in RESTING and row["type"] in RESTING_TYPES
            and (row["time_in_force"] or "GTC") == "GTC")


def read_orders(db_url: str, schema: str, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The orders_view rows of these orders (the read model)."""
    with psycopg.connect(db_url) as conn:
        cur = conn.execute(
            f'SELECT order_id, account_id, status, type, time_in_force, quantity, '
            f'filled_quantity, exchange_order_id, version FROM "{schema}".orders_view '
            f"WHERE order_id = ANY(%s)", ([UUID(o) for o in order_ids],))
        cols = [d.name for d in cur.description or []]
        return {str(r[0]): dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def read_truth(env: dict[str, str], order_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The orders as their aggregates in the event store have them (the source of truth)."""
    from adapters.platform.runtime import open_runtime
    from adapters.platform.settings import Settings
    from domain.errors import OrderNotFound

    settings = Settings(database_url=env["TRADELEDGER_DATABASE_URL"],
                        master_keys=env["TRADELEDGER_MASTER_KEYS"],
                        jwt_secret=env["TRADELEDGER_JWT_SECRET"],
                        data_dir=Path(env["TRADELEDGER_DATA_DIR"]), database_pool_size=2)
    truth: dict[str, dict[str, Any]] = {}
    with open_runtime(settings) as runtime:
        for order_id in order_ids:
            try:
                order = runtime.app.get_order(UUID(order_id))
            except OrderNotFound:
                continue
            truth[order_id] = {
                "status": order.status.value, "type": order.order_type,
                "time_in_force": order.time_in_force, "filled_quantity": order.filled_quantity,
                "trade_ids": list(order.trade_ids), "exchange_order_id": order.exchange_order_id,
                "version": order.version, "reject_code": order.reject_code,
                "reject_reason": order.reject_reason, "submitted": order.submitted,
                "stop_price": order.stop_price, "triggered": order.triggered}
    return truth


def projector_lag(db_url: str, schema: str) -> int:
    """Stored events the projector has not folded into its event log (gaps count too)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            f'SELECT count(*) FROM "{schema}".{EVENTS_TABLE} e WHERE NOT EXISTS '
            f'(SELECT 1 FROM "{schema}".event_log_view v '
            "WHERE v.notification_id = e.notification_id)").fetchone()
    return int(row[0]) if row else 0


def latest_seq(db_url: str, schema: str, account_ids: list[str]) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            f'SELECT account_id, max(seq) FROM "{schema}".view_changes '
            "WHERE account_id = ANY(%s) GROUP BY account_id",
            ([UUID(a) for a in account_ids],)).fetchall()
    return {str(a): int(s) for a, s in rows}


def snapshot(env: dict[str, str], schema: str, exchange_db: Path, plan: list[PlannedOrder],
             traders: list[Trader]) -> Snapshot:
    """Read everything the checks compare, ours first, then the exchange's."""
    db_url = env["TRADELEDGER_DATABASE_URL"]
    ids = [o.order_id for o in plan if o.order_id]
    snap = Snapshot(truth=read_truth(env, ids), orders=read_orders(db_url, schema, ids))
    with psycopg.connect(db_url) as conn:
        for order_id, trade_id, quantity in conn.execute(
                f'SELECT order_id, trade_id, quantity FROM "{schema}".trades_view '
                "WHERE order_id = ANY(%s)", ([UUID(o) for o in ids],)):
            snap.trades.setdefault(str(order_id), []).append((str(trade_id), Decimal(quantity)))
        for account_id, seq, kind, entity_id in conn.execute(
                f'SELECT account_id, seq, kind, entity_id FROM "{schema}".view_changes '
                "WHERE account_id = ANY(%s) ORDER BY seq",
                ([UUID(t.account_id) for t in traders],)):
            snap.changes.setdefault(str(account_id), []).append((int(seq), kind, entity_id))
    db = sqlite3.connect(f"file:{exchange_db}?mode=ro", uri=True)
    try:
        for (data,) in db.execute("SELECT data FROM orders"):
            order = json.loads(data)
            if order["client_order_id"].startswith("tl"):
                snap.exchange_orders.setdefault(order["client_order_id"], []).append(order)
        for order_id, data in db.execute("SELECT order_id, data FROM trades"):
            snap.exchange_trades.setdefault(int(order_id), []).append(json.loads(data))
    finally:
        db.close()
    return snap


def _against_exchange(order: PlannedOrder, truth: dict[str, Any],
                      snap: Snapshot) -> list[str]:
    """The event store's order against the exchange's: the worker's correctness."""
    problems: list[str] = []
    status, filled = truth["status"], Decimal(truth["filled_quantity"])
    found = snap.exchange_orders.get(exchange_client_order_id(order.order_id or ""), [])
    ex = found[-1] if found else None
    where = f"order {order.order_id} ({order.kind})"
    if ex is None:
        if status not in {"REJECTED", "CANCELED"} or filled:
            problems.append(f"{where} is {status} (filled {filled}) in the event store but the "
                            "exchange never saw it")
        return problems
    if ex["status"] != status:
        problems.append(f"{where} is {status} in the event store, {ex['status']} on the "
                        "exchange")
    if Decimal(ex["executed_qty"]) != filled:
        problems.append(f"{where} filled {filled} in the event store, {ex['executed_qty']} on "
                        "the exchange")
    if truth["exchange_order_id"] not in (None, str(ex["order_id"])):
        problems.append(f"{where} knows exchange id {truth['exchange_order_id']}, the exchange "
                        f"{ex['order_id']}")
    if truth["stop_price"] is not None:
        # A stop order: a trigger we recorded happened on the exchange (none invented), and
        # one that traded was triggered on both sides.
        if truth["triggered"] and not ex.get("working", True):
            problems.append(f"{where} is triggered in the event store, not on the exchange")
        if filled and not truth["triggered"]:
            problems.append(f"{where} traded but is not triggered in the event store")
        if Decimal(ex.get("stop_price", "0")) != truth["stop_price"]:
            problems.append(f"{where} has stop {truth['stop_price']}, the exchange "
                            f"{ex.get('stop_price')}")
    ours = truth["trade_ids"]
    theirs = sorted(str(t["trade_id"]) for t in snap.exchange_trades.get(int(ex["order_id"]), []))
    if len(ours) != len(set(ours)):
        problems.append(f"{where} holds a fill twice: {ours}")
    if sorted(ours) != theirs:
        problems.append(f"{where} has fills {sorted(ours)}, the exchange {theirs}")
    return problems


def _against_truth(order: PlannedOrder, truth: dict[str, Any], snap: Snapshot) -> list[str]:
    """The read models against the event store: the projector's correctness."""
    where = f"read model of order {order.order_id} ({order.kind})"
    row = snap.orders.get(order.order_id or "")
    if row is None:
        return [f"{where}: missing from orders_view (event store: {truth['status']})"]
    problems = []
    for name in ("status", "version"):
        if row[name] != truth[name]:
            problems.append(f"{where}: {name} {row[name]}, event store {truth[name]}")
    if Decimal(row["filled_quantity"]) != Decimal(truth["filled_quantity"]):
        problems.append(f"{where}: filled {row['filled_quantity']}, event store "
                        f"{truth['filled_quantity']}")
    trades = snap.trades.get(order.order_id or "", [])
    if sorted(t for t, _ in trades) != sorted(truth["trade_ids"]):
        problems.append(f"{where}: trades_view holds {sorted(t for t, _ in trades)}, the "
                        f"event store {sorted(truth['trade_ids'])}")
    if sum((q for _, q in trades), Decimal(0)) != Decimal(truth["filled_quantity"]):
        problems.append(f"{where}: trades sum to {sum(q for _, q in trades)}, filled is "
                        f"{truth['filled_quantity']}")
    return problems


def _binance_rules(order: PlannedOrder, truth: dict[str, Any], snap: Snapshot) -> list[str]:
    """What Binance's harsher habits must never cost: an order rejected for a rate limit (a
    429/418 means "not executed, wait", never "rejected"), and a MARKET order sent twice or
    never (its outcome is proven, not guessed). The exceptions leave no exchange order: one
    never sent (canceled while it waited, or every send refused before execution: a 429),
    one the exchange itself refused (e.g. for the balance), and one proven never to have
    reached it (REJECTED NOT_SENT, or CANCELED once that was proven: a `hang` that does not
    execute)."""
    where = f"order {order.order_id} ({order.kind})"
    problems: list[str] = []
    code = str(truth.get("reject_code") or "")
    if truth["status"] == "REJECTED" and code in RATE_LIMIT_CODES:
        problems.append(f"{where} was REJECTED for a rate limit: {code} "
                        f"{truth.get('reject_reason')}")
    if truth["type"] == "MARKET":
        sent = len(snap.exchange_orders.get(exchange_client_order_id(order.order_id or ""), []))
        never_sent = sent == 0 and (
            not truth.get("submitted", True) or truth["status"] == "CANCELED"
            or (truth["status"] == "REJECTED" and (code.startswith("-") or code == "NOT_SENT")))
        if sent != 1 and not never_sent:
            problems.append(f"{where} is {sent} exchange orders, not one (status "
                            f"{truth['status']}, reject code {code or None})")
    return problems


def _list_rules(order: PlannedOrder, snap: Snapshot) -> list[str]:
    """An OCO's legs went out in one request (both on the exchange, or neither), and they
    cancel each other (never both traded)."""
    where = f"OCO {order.order_id}"
    legs = [order.order_id or "", *order.leg_ids]
    sent = [len(snap.exchange_orders.get(exchange_client_order_id(leg), [])) for leg in legs]
    problems = []
    if len(set(sent)) > 1:
        problems.append(f"{where}: its legs reached the exchange unevenly: {sent}")
    traded = [leg for leg in legs if snap.truth.get(leg, {}).get("trade_ids")]
    if len(traded) > 1:
        problems.append(f"{where}: both legs traded: {traded}")
    lists = {o.get("order_list_id") for leg in legs
             for o in snap.exchange_orders.get(exchange_client_order_id(leg), [])}
    if len(lists) > 1:
        problems.append(f"{where}: its legs are in different exchange lists: {lists}")
    return problems


def check_orders(plan: list[PlannedOrder], snap: Snapshot) -> tuple[list[str], dict[str, Any]]:
    """Placement, terminal states, the exchange's view, fills, and the read models.

    Problems name their side: "event store ... exchange" is the worker's, "read model" the
    projector's (or the event bus's), so one broken part does not read as another.
    """
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    # How each stop_race and OCO leg ended: who won, the trigger (or fill) or the cancel.
    races: Counter[str] = Counter()
    ours = {exchange_client_order_id(o.order_id) for o in plan if o.order_id}
    for cid, orders in snap.exchange_orders.items():
        if len(orders) > 1:
            problems.append(f"exchange order sent {len(orders)} times for {cid}: "
                            f"{[o['order_id'] for o in orders]}")
        if cid not in ours:
            problems.append(f"exchange holds {cid} that is none of this run's orders")
    fills = 0
    for order in plan:
        if order.order_id is None and order.place_error == STOP_PASSED:
            statuses["422 stop passed"] += 1  # the market passed the stop first: refused
            continue
        if order.order_id is None:
            problems.append(f"order #{order.n} ({order.kind}) never accepted: "
                            f"HTTP {order.place_status} {order.place_error}")
            continue
        truth = snap.truth.get(order.order_id)
        if truth is None:
            problems.append(f"order {order.order_id} was accepted (202) but is not in the "
                            "event store")
            continue
        statuses[truth["status"]] += 1
        if order.kind in ("stop_race", "oco"):
            races[f"{order.kind} {truth['type']} {truth['status']}"
                  + (" after trigger" if truth["triggered"] else "")] += 1
        if order.leg_ids:
            problems += _list_rules(order, snap)
        fills += len(truth["trade_ids"])
        if not settled(truth):
            problems.append(f"order {order.order_id} ({order.kind}) stuck in "
                            f"{truth['status']} in the event store")
        problems += _against_exchange(order, truth, snap)
        problems += _binance_rules(order, truth, snap)
        problems += _against_truth(order, truth, snap)
    stats = {"statuses": dict(sorted(statuses.items())), "fills": fills,
             "races": dict(sorted(races.items())),
             "exchange_orders": sum(len(v) for v in snap.exchange_orders.values())}
    return problems, stats


def check_streams(plan: list[PlannedOrder], traders: list[Trader],
                  snap: Snapshot) -> tuple[list[str], dict[str, Any]]:
    """Every change of every trader arrived exactly once, and so did each final status."""
    problems: list[str] = []
    orders_of: dict[int, list[PlannedOrder]] = defaultdict(list)
    for order in plan:
        if order.order_id:
            orders_of[order.trader].append(order)
    delivered = connects = 0
    for trader in traders:
        seqs = [seq for seq, _, _ in trader.events]
        delivered += len(seqs)
        connects += trader.connects
        twice = sorted(s for s, n in Counter(seqs).items() if n > 1)
        if twice:
            problems.append(f"trader {trader.index} got SSE ids more than once: {twice[:20]}")
        expected = {seq for seq, _, _ in snap.changes.get(trader.account_id, [])}
        missing = sorted(expected - set(seqs))
        if missing:
            problems.append(f"trader {trader.index} missed {len(missing)} SSE changes: "
                            f"{missing[:20]}")
        foreign = sorted(set(seqs) - expected)
        if foreign:
            problems.append(f"trader {trader.index} got SSE ids not in its log: {foreign[:20]}")
        last_status: dict[str, str] = {}
        versions: dict[str, list[int]] = defaultdict(list)
        trades: Counter[tuple[str, str]] = Counter()
        for _, kind, data in sorted(trader.events, key=lambda e: e[0]):
            if kind == "ORDER_UPDATE":
                last_status[str(data.get("orderId"))] = str(data.get("status"))
                versions[str(data.get("orderId"))].append(int(data.get("version") or 0))
            elif kind == "TRADE":
                trades[(str(data.get("orderId")), str(data.get("tradeId")))] += 1
        doubled = [k for k, n in trades.items() if n > 1]
        if doubled:
            problems.append(f"trader {trader.index} got TRADE events twice: {doubled[:10]}")
        wrong_final: list[str] = []
        wrong_versions: list[str] = []
        for order in orders_of[trader.index]:
            order_id = order.order_id or ""
            truth = snap.truth.get(order_id)
            if truth is None:
                continue
            if last_status.get(order_id) != truth["status"]:
                wrong_final.append(f"{order_id} last seen {last_status.get(order_id)}, "
                                   f"is {truth['status']}")
            # One ORDER_UPDATE per event of the order: versions 1..n, each exactly once.
            if versions.get(order_id, []) != list(range(1, int(truth["version"]) + 1)):
                wrong_versions.append(f"{order_id} seen at versions {versions.get(order_id)}, "
                                      f"has {truth['version']}")
        if wrong_final:
            problems.append(f"trader {trader.index} did not see the final status of "
                            f"{len(wrong_final)} orders, e.g. {wrong_final[:3]}")
        if wrong_versions:
            problems.append(f"trader {trader.index} did not see each version of "
                            f"{len(wrong_versions)} orders exactly once, e.g. "
                            f"{wrong_versions[:3]}")
    return problems, {"sse_events": delivered, "sse_connections": connects}


def run_cli(args: list[str], env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
    """Run a `tradeledger` sub-command against the system's database."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("TRADELEDGER_")}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args], env=full, cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, check=False)
    return done.returncode, (done.stdout + done.stderr)[-4000:]
