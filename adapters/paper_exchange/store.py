"""SQLite persistence for the paper exchange: keys, balances, orders, trades, candles."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from adapters.paper_exchange.models import Account, Balance, Order, Trade

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    api_key TEXT PRIMARY KEY, secret TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances (
    api_key TEXT NOT NULL, asset TEXT NOT NULL, free TEXT NOT NULL, locked TEXT NOT NULL,
    PRIMARY KEY (api_key, asset));
CREATE TABLE IF NOT EXISTS funding (
    api_key TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (api_key, asset));
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, api_key TEXT NOT NULL, symbol TEXT NOT NULL,
    status TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_key ON orders (api_key, symbol);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER PRIMARY KEY, api_key TEXT NOT NULL, symbol TEXT NOT NULL,
    order_id INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trades_by_key ON trades (api_key, symbol);
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL, open_time INTEGER NOT NULL,
    o INTEGER NOT NULL, h INTEGER NOT NULL, l INTEGER NOT NULL, c INTEGER NOT NULL,
    v INTEGER NOT NULL, q INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (symbol, open_time)) WITHOUT ROWID;
"""

_CANDLES = ("SELECT open_time, o, h, l, c, v, q, n FROM candles "
            "WHERE symbol = ? AND open_time BETWEEN ? AND ? ORDER BY open_time ")
_CANDLES_OLDEST = _CANDLES + "ASC"
_CANDLES_NEWEST = _CANDLES + "DESC"

# One candle row: open time, then open/high/low/close in ticks, volumes in 1e-8 units, count.
CandleRow = tuple[int, int, int, int, int, int, int, int]


class Store:
    """The exchange's durable state in one SQLite file (WAL, one writer: the server loop)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            state_dir / "paper_exchange.sqlite3", isolation_level=None, check_same_thread=False
        )
        # WAL with synchronous=NORMAL: a COMMIT appends to the WAL without an fsync, so a
        # committed order survives a crash of this process (the OS holds the write) but maybe
        # not a power cut. The paper exchange only has to survive the former; FULL would
        # fsync on every order.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._depth = 0
        # Writes of the open transaction, made at its commit: an order changes several times
        # in one transaction (NEW, then every fill) and is written once, in its final state.
        self._orders: dict[int, Order] = {}
        self._balances: dict[tuple[str, str], Account] = {}
        self._trades: list[Trade] = []

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic commit (nested uses join the outer one).

        Orders, balances and trades saved inside are written just before the COMMIT (see
        `_write_pending`); a rollback drops them with the rest.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self._write_pending()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0
            self._orders.clear()
            self._balances.clear()
            self._trades.clear()

    def _write_pending(self) -> None:
        if self._orders:
            self._write_orders(self._orders.values())
        if self._balances:
            self._write_balances(self._balances.items())
        if self._trades:
            self._write_trades(self._trades)

    def get_meta(self, key: str) -> str | None:
        """Return a stored setting or counter."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting or counter."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def save_account(self, account: Account) -> None:
        """Store a key pair and all its balances."""
        self._db.execute(
            "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)",
            (account.api_key, account.secret, account.created),
        )
        self.save_balances(account, account.balances)

    def save_balances(self, account: Account, assets: Iterable[str]) -> None:
        """Store some of an account's balances (their values at commit, in a transaction)."""
        if not self._depth:
            self._write_balances(((account.api_key, a), account) for a in assets)
            return
        for asset in assets:
            self._balances[account.api_key, asset] = account

    def _write_balances(self, items: Iterable[tuple[tuple[str, str], Account]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO balances VALUES (?, ?, ?, ?)",
            [(key, asset, str(account.balances[asset].free),
              str(account.balances[asset].locked))
             for (key, asset), account in items],
        )

    def load_accounts(self) -> dict[str, Account]:
        """Load every account with its balances."""
        accounts = {
            key: Account(key, secret, created)
            for key, secret, created in self._db.execute("SELECT * FROM accounts")
        }
        for key, asset, free, locked in self._db.execute("SELECT * FROM balances"):
            accounts[key].balances[asset] = Balance(Decimal(free), Decimal(locked))
        return accounts

    def save_funding(self, api_key: str, funding: dict[str, Decimal]) -> None:
        """Store what a key was funded with (a reset restores it)."""
        self._db.executemany("INSERT OR REPLACE INTO funding VALUES (?, ?, ?)",
                             [(api_key, a, str(v)) for a, v in funding.items()])

    def load_funding(self) -> dict[str, dict[str, Decimal]]:
        """Load every key's funding (keys from before funding was stored have none)."""
        funding: dict[str, dict[str, Decimal]] = {}
        for key, asset, amount in self._db.execute("SELECT * FROM funding"):
            funding.setdefault(key, {})[asset] = Decimal(amount)
        return funding

    def wipe(self) -> None:
        """Remove every order, trade and balance (the Testnet's periodic reset)."""
        self._orders.clear()
        self._trades.clear()
        self._balances.clear()
        for table in ("orders", "trades", "balances"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names

    def save_order(self, order: Order) -> None:
        """Insert or update an order (as it is at commit, in a transaction)."""
        if self._depth:
            self._orders[order.order_id] = order
        else:
            self._write_orders([order])

    def _write_orders(self, orders: Iterable[Order]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?)",
            [(o.order_id, o.api_key, o.symbol, o.status, json.dumps(o.to_json()))
             for o in orders],
        )

    def load_orders(self) -> list[Order]:
        """Load every order, oldest first."""
        rows = self._db.execute("SELECT data FROM orders ORDER BY order_id")
        return [Order.from_json(json.loads(data)) for (data,) in rows]

    def save_trade(self, trade: Trade) -> None:
        """Insert a trade (at commit, in a transaction)."""
        if self._depth:
            self._trades.append(trade)
        else:
            self._write_trades([trade])

    def _write_trades(self, trades: Iterable[Trade]) -> None:
        self._db.executemany(
            "INSERT INTO trades VALUES (?, ?, ?, ?, ?)",
            [(t.trade_id, t.api_key, t.symbol, t.order_id, json.dumps(t.to_json()))
             for t in trades],
        )

    def load_trades(self) -> list[Trade]:
        """Load every trade, oldest first."""
        rows = self._db.execute("SELECT data FROM trades ORDER BY trade_id")
        return [Trade.from_json(json.loads(data)) for (data,) in rows]

    def save_candles(self, symbol: str, rows: Iterable[CandleRow]) -> None:
        """Insert or replace closed 1m candles."""
        self._db.executemany(
            "INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(symbol, *row) for row in rows],
        )

    def candles(self, symbol: str, start: int, end: int, limit: int | None = None,
                newest: bool = False) -> list[CandleRow]:
        """Return 1m candles with start <= open time <= end, oldest first.

        With `newest`, the `limit` candles nearest `end` are returned instead of the oldest.
        """
        sql = _CANDLES_NEWEST if newest else _CANDLES_OLDEST
        params: tuple[object, ...] = (symbol, start, end)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        rows: list[CandleRow] = list(self._db.execute(sql, params))
        return rows[::-1] if newest else rows

    def last_candle(self, symbol: str) -> CandleRow | None:
        """Return the newest stored candle of a symbol."""
        rows = self.candles(symbol, 0, 2**62, 1, newest=True)
        return rows[0] if rows else None

    def first_candle_time(self, symbol: str) -> int | None:
        """Return the open time of the oldest stored candle of a symbol."""
        row = self._db.execute(
            "SELECT MIN(open_time) FROM candles WHERE symbol = ?", (symbol,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])
