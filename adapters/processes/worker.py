"""The execution worker: the process around the execution manager (commands/execution.py).

It consumes the event topic through the consumer framework (`ExecutionWorker` is its
EventHandler, name "worker") and reacts to OrderPlaced and OrderCancelRequested by driving the
order on the exchange; to AccountRegistered (paper mode) by issuing paper-exchange keys; and to
key changes by following or dropping the account's user-data stream.

Why the exchange call may happen outside the consumer's position transaction: `handle` only
hands the order to a lane (a thread owning a share of the orders, so one order's work stays in
order) and the position commits at once. Every step the lane takes is idempotent -- the
clientOrderId is derived from our order id, an order whose send went unanswered is queried
before anything is sent again, fills are de-duplicated by trade id in the aggregate, and one
order is driven by one thread of one process at a time (a Postgres advisory lock). And the
worker acts on the order's *state* in the event store, not on the event it read: at start it
reconciles every open order, and a sweeper re-drives orders stuck in PENDING / SUBMITTED /
CANCEL_REQUESTED, so work handed to a lane that died with the process is redone.

Accounts without keys: in paper mode the worker gives every account that never had keys a
funded paper-exchange key pair (on AccountRegistered, at start, and on demand if an order
arrives first). Otherwise -- testnet or live, or keys revoked by the user -- the order is
rejected with code NO_KEYS and a message saying to connect keys.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from adapters.binance.gateway import BinanceGateway
from adapters.kafka.schema import account_partition, owns_partition
from adapters.platform.bootstrap import Runtime
from adapters.platform.settings import get_settings
from adapters.postgres.backoff import PgSharedBackoff
from adapters.postgres.order_locks import PgOrderLocks
from adapters.postgres.readmodels import record_balances
from commands.application import TradingApplication
from commands.execution import (
    DriveResult,
    ExecutionManager,
    RetryPolicy,
    order_id_from_client_order_id,
)
from commands.group_commit import GroupCommit
from commands.messages import ConnectExchangeKeys, RecordExchangeKeysRejection
from commands.ports import ExchangeCredentials, ExchangeOrderReport
from domain.envelope import EventEnvelope
from domain.errors import (
    DomainError,
    ExchangeError,
    ExchangeKeysMissing,
    ExchangeKeysWrongEnvironment,
    OrderNotFound,
)
from domain.values import OrderStatus

log = logging.getLogger(__name__)

ORDER_TOPIC = "domain.order:Order."
ACCOUNT_TOPIC = "domain.account:Account."
INDEX_EVENTS = ("OrderPlaced", "OrderFilled", "OrderRejected", "OrderCanceled", "OrderExpired")
KEY_EVENTS = ("ExchangeKeysConnected", "ExchangeKeysRotated", "ExchangeKeysRevoked")
NOT_RESTING = (OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.CANCEL_REQUESTED)
BALANCES_TABLE_RETRY_SECONDS = 10
# Orders driven at once. Each lane spends most of an order waiting (its two group-committed
# saves, the exchange, Postgres), so more lanes mean fuller group commits and relay batches:
# on the 2-core bench machine 16 lanes used 8-18% less CPU per order than 8 (bench_worker).
DEFAULT_LANES = 16


class Lanes:
    """N threads with a queue each: work for one key always runs on the same lane, in order."""

    def __init__(self, count: int = 8, queue_size: int = 10_000, name: str = "lane",
                 on_idle: Callable[[], None] | None = None) -> None:
        # on_idle runs on a lane's thread whenever that lane's queue has run dry.
        self._on_idle = on_idle
        self._queues: list[queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None]] = [
            queue.Queue(queue_size) for _ in range(count)]
        self._threads = [threading.Thread(target=self._run, args=(q,), name=f"{name}-{i}",
                                          daemon=True) for i, q in enumerate(self._queues)]
        self._pending = 0
        self._idle = threading.Condition()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, key: UUID, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` on the key's lane (blocks when that lane is full: backpressure)."""
        with self._idle:
            self._pending += 1
        self._queues[key.int % len(self._queues)].put((fn, args))

    def _run(self, q: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None]) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # a failed step is retried by the sweeper, not by crashing
                log.exception("worker step %s%r failed", getattr(fn, "__name__", fn), args)
            finally:
                if self._on_idle is not None and q.empty():
                    try:
                        self._on_idle()
                    except Exception:
                        log.exception("lane idle hook failed")
                with self._idle:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued step has run (tests, one-off reconciliation)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)


class GroupSaver(GroupCommit):
    """The worker's saves of changed orders, group-committed (commands/group_commit.py).

    Two leaders, and any failure of a shared save is retried one order at a time, so only
    the order that lost a race sees IntegrityError (and reloads, in
    ExecutionManager._record).
    """

    def __init__(self, app: TradingApplication, max_batch: int = 64, leaders: int = 2) -> None:
        super().__init__(app.save, max_batch=max_batch, leaders=leaders)

    def __call__(self, aggregate: Any) -> None:
        events = aggregate.collect_events()
        if events:
            self.commit(events)

    def stop(self) -> None:
        """Nothing to stop: saves run on the threads that ask for them."""


class Rechecks:
    """Orders that asked to be driven again at a time (throttled, outcome being proven).

    One thread sleeps until the earliest is due and hands it to `due(order_id)`; an order is
    held once, at its earliest time. The lanes never sleep on these waits.
    """

    def __init__(self, due: Callable[[UUID], None]) -> None:
        self._due = due
        self._heap: list[tuple[float, UUID]] = []
        self._when: dict[UUID, float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="rechecks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(5)

    def __len__(self) -> int:
        with self._cond:
            return len(self._when)

    def __contains__(self, order_id: object) -> bool:
        with self._cond:
            return order_id in self._when

    def at(self, order_id: UUID, after: float) -> None:
        """Drive the order again in `after` seconds (or sooner, if already due sooner)."""
        when = time.monotonic() + after
        with self._cond:
            if self._when.get(order_id, float("inf")) <= when:
                return
            self._when[order_id] = when
            heapq.heappush(self._heap, (when, order_id))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    now = time.monotonic()
                    while self._heap and self._when.get(self._heap[0][1]) != self._heap[0][0]:
                        heapq.heappop(self._heap)  # superseded by an earlier time
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                if self._stop:
                    return
                _, order_id = heapq.heappop(self._heap)
                self._when.pop(order_id, None)
            try:
                self._due(order_id)
            except Exception:
                log.exception("recheck of order %s not queued", order_id)


class OpenOrderIndex:
    """Which orders are open, read incrementally from the event store's notification log."""

    def __init__(self, app: TradingApplication) -> None:
        self.app = app
        self.accounts: dict[UUID, UUID] = {}  # open order id -> account id
        self._next = 1
        self._lock = threading.Lock()

    def refresh(self, page: int = 5000) -> dict[UUID, UUID]:
        """Read the log since the last call; return a copy of {open order id: account id}."""
        topics = [ORDER_TOPIC + name for name in INDEX_EVENTS]
        with self._lock:
            while True:
                notifications = self.app.recorder.select_notifications(
                    self._next, page, topics=topics)
                if not notifications:
                    break
                for n in notifications:
                    name = n.topic.rsplit(".", 1)[-1]
                    order_id = UUID(str(n.originator_id))
                    if name == "OrderPlaced":
                        event: Any = self.app.mapper.to_domain_event(n)
                        self.accounts[order_id] = event.account_id
                    elif name == "OrderFilled":
                        event = self.app.mapper.to_domain_event(n)
                        if event.status == OrderStatus.FILLED.value:
                            self.accounts.pop(order_id, None)
                    else:
                        self.accounts.pop(order_id, None)
                self._next = notifications[-1].id + 1
            return dict(self.accounts)


def account_ids(app: TradingApplication) -> list[UUID]:
    """Every registered account, from the notification log."""
    found: list[UUID] = []
    start = 1
    while True:
        page = app.recorder.select_notifications(
            start, 5000, topics=[ACCOUNT_TOPIC + "AccountRegistered"])
        if not page:
            return found
        found.extend(UUID(str(n.originator_id)) for n in page)
        start = page[-1].id + 1


class PaperKeys:
    """Issue paper-exchange keys to accounts that never had any (the embedded default)."""

    def __init__(self, app: TradingApplication, paper_url: str) -> None:
        self.app = app
        self.paper_url = paper_url
        self._locks: dict[UUID, threading.Lock] = {}
        self._guard = threading.Lock()

    def ensure(self, account_id: UUID) -> bool:
        """Connect fresh paper keys unless the account has or had keys; True if it got some."""
        from adapters.paper_exchange.runner import request_keys

        with self._guard:
            lock = self._locks.setdefault(account_id, threading.Lock())
        with lock:
            account = self.app.get_account(account_id)
            if account.has_exchange_keys:
                return False
            # Keys the user revoked stay revoked: only accounts that never had keys get some.
            if any(type(e).__name__ in KEY_EVENTS for e in self.app.events.get(account_id)):
                return False
            keys = request_keys(self.paper_url)
            self.app.handle(ConnectExchangeKeys(
                account_id=account_id, api_key=keys.api_key, secret_key=keys.secret_key,
                environment="paper"))
            log.info("issued paper-exchange keys to account %s", account_id)
            return True


class WorkerCredentials:
    """CredentialsProvider: decrypt just in time; in paper mode, issue keys on first need.

    Decrypted keys are kept for a few seconds (a burst of orders of one account then costs
    one account read, not one per order) and dropped at once when the account's keys change.
    """

    def __init__(self, app: TradingApplication, paper_keys: PaperKeys | None,
                 ttl: float = 5.0, environment: str | None = None) -> None:
        self.app = app
        self.paper_keys = paper_keys
        # Keys are used only against the environment they were connected for: paper keys
        # sent to the Testnet (or the reverse) fail every call with -2015.
        self.environment = environment
        self.ttl = ttl
        self._cache: dict[UUID, tuple[ExchangeCredentials, float]] = {}
        self._lock = threading.Lock()

    def credentials_for(self, account_id: UUID) -> ExchangeCredentials:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(account_id)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        try:
            creds = self.app.exchange_credentials(account_id)
        except ExchangeKeysMissing:
            if self.paper_keys is None:
                raise
            # Issues keys, or waits while another lane does (AccountRegistered and the
            # account's first order are handled concurrently); then read them again.
            self.paper_keys.ensure(account_id)
            creds = self.app.exchange_credentials(account_id)
        if self.environment is not None and creds.environment != self.environment:
            raise ExchangeKeysWrongEnvironment(
                f"the account's exchange keys are for {creds.environment} but this "
                f"installation trades on {self.environment}: connect {self.environment} keys "
                "(PUT /api/account/exchange-keys)",
                keysEnvironment=creds.environment, exchangeEnvironment=self.environment)
        with self._lock:
            self._cache[account_id] = (creds, now)
        return creds

    def forget(self, account_id: UUID) -> None:
        """Drop an account's cached keys (they were rotated or revoked)."""
        with self._lock:
            self._cache.pop(account_id, None)


class BalanceRecorder:
    """Keep the read model's balances current, coalesced to one write per account a second.

    Sources: outboundAccountPosition events of the user-data stream (the assets that changed)
    and, after fills, a full snapshot from the exchange's account endpoint.
    """

    def __init__(self, database_url: str, schema: str, gateway: BinanceGateway,
                 credentials: WorkerCredentials, min_interval: float = 1.0) -> None:
        self.database_url = database_url
        self.schema = schema
        self.gateway = gateway
        self.credentials = credentials
        self.min_interval = min_interval
        self._dirty: set[UUID] = set()
        self._updates: dict[UUID, dict[str, dict[str, Any]]] = {}
        self._cond = threading.Condition()
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The projector creates balances_view; a worker that starts first waits for it.
        self._table_missing_until = 0.0

    @property
    def enabled(self) -> bool:
        return time.monotonic() >= self._table_missing_until

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="balances", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
        if self._conn is not None:
            self._conn.close()

    def mark_dirty(self, account_id: UUID) -> None:
        """Ask for a full balance snapshot of the account soon."""
        if self.enabled:
            with self._cond:
                self._dirty.add(account_id)
                self._cond.notify()

    def offer(self, account_id: UUID, balances: list[dict[str, Any]]) -> None:
        """Take changed balances from the stream; the latest per asset is written soon."""
        if self.enabled:
            with self._cond:
                pending = self._updates.setdefault(account_id, {})
                pending.update({str(b["asset"]): b for b in balances})
                self._cond.notify()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(
                    lambda: bool(self._dirty or self._updates) or self._stop.is_set())
                dirty, self._dirty = self._dirty, set()
                updates, self._updates = self._updates, {}
            for account_id, assets in updates.items():
                if account_id not in dirty:  # a snapshot supersedes the partial update
                    self._write(account_id, list(assets.values()), replace_all=False)
            for account_id in dirty:
                try:
                    creds = self.credentials.credentials_for(account_id)
                    balances, commission = self.gateway.account_snapshot(creds)
                    self._write(account_id, balances, replace_all=True, commission=commission)
                except (ExchangeError, DomainError) as exc:
                    log.info("balances of account %s not refreshed: %s", account_id, exc)
            self._stop.wait(self.min_interval)

    def _write(self, account_id: UUID, balances: list[dict[str, Any]],
               replace_all: bool, commission: dict[str, Decimal] | None = None) -> None:
        if not self.enabled:
            return
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self.database_url, autocommit=True)
            with self._conn.transaction():
                record_balances(self._conn, account_id, balances, schema=self.schema,
                                replace_all=replace_all, commission=commission)
        except psycopg.errors.UndefinedTable:
            # The read side owns its tables; until the projector has created balances_view,
            # balances are skipped (the next fill or stream connect records them again).
            log.warning("no balances read model in schema %s yet (the projector creates it); "
                        "retrying in %d s", self.schema, BALANCES_TABLE_RETRY_SECONDS)
            self._table_missing_until = time.monotonic() + BALANCES_TABLE_RETRY_SECONDS
        except psycopg.Error:
            log.exception("balances of account %s not written", account_id)


class ExecutionWorker:
    """EventHandler "worker": drives orders on the exchange and follows user-data streams."""

    name = "worker"
    # What `handle` acts on; the consumer passes over the rest (most of the topic: every
    # order's acceptance and fills) by header, without decoding them.
    event_types = frozenset(("OrderPlaced", "OrderCancelRequested", "AccountRegistered",
                             *KEY_EVENTS))

    def __init__(
        self,
        runtime: Runtime,
        gateway: BinanceGateway,
        *,
        lanes: int = DEFAULT_LANES,
        instance: int = 0,
        instances: int = 1,
        partitions: int | None = None,
        follow_streams: bool = True,
        sweep_interval: float = 15.0,
        stuck_after: float = 10.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.runtime = runtime
        self.app = runtime.app
        self.gateway = gateway
        self.instance, self.instances = instance, instances
        settings = runtime.settings
        # The topic's partition count: an account belongs to the instance that consumes its
        # partition (_owns).
        self.partitions = partitions or settings.kafka_partitions
        self.paper_keys = (PaperKeys(self.app, settings.paper_exchange_url)
                           if gateway.environment == "paper" and settings.paper_exchange_url
                           else None)
        self.credentials = WorkerCredentials(self.app, self.paper_keys,
                                             environment=gateway.environment)
        # 429/418 back-offs reach every worker process through Postgres (ratelimit.py).
        self.shared_backoff: PgSharedBackoff | None = None
        if gateway.budget.shared is None:
            self.shared_backoff = PgSharedBackoff(runtime.database_url,
                                                  settings.database_schema)
            gateway.budget.shared = self.shared_backoff
        self.locks = PgOrderLocks(runtime.database_url, settings.database_schema)
        self.balances = BalanceRecorder(runtime.database_url, settings.database_schema,
                                        gateway, self.credentials)
        self.saver = GroupSaver(self.app)
        self.manager = ExecutionManager(
            self.app, gateway, self.credentials, locks=self.locks, policy=policy,
            on_fill=self.balances.mark_dirty, save=self.saver)
        self.lanes = Lanes(lanes, on_idle=self.locks.release_deferred)
        self.index = OpenOrderIndex(self.app)
        self.rechecks = Rechecks(lambda order_id: self._submit(order_id, self._recheck,
                                                                order_id))
        self.sweep_interval = sweep_interval
        self.stuck_after = stuck_after
        self.streams = self._build_streams() if follow_streams else None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._inflight: dict[UUID, int] = {}  # order id -> steps queued or running
        self._inflight_lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, reconcile: bool = True) -> None:
        """Start lanes, streams and the sweeper; provision keys; reconcile open orders."""
        self.lanes.start()
        self.rechecks.start()
        self.balances.start()
        if self.streams is not None:
            self.streams.start()
        for account_id in account_ids(self.app):
            if not self._owns(account_id):
                continue
            if self.paper_keys is not None:
                self.lanes.submit(account_id, self._provision, account_id)
            elif self.streams is not None:
                self.lanes.submit(account_id, self._follow_if_keys, account_id)
        if reconcile:
            self.reconcile_all(wait=False)
        if self.sweep_interval > 0:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="sweeper",
                                             daemon=True)
            self._sweeper.start()

    def stop(self) -> None:
        """Stop everything (steps in progress finish first)."""
        self._stop.set()
        self.rechecks.stop()
        if self.streams is not None:
            self.streams.stop()
        self.lanes.stop()
        self.saver.stop()
        self.balances.stop()
        self.locks.close()
        if self.shared_backoff is not None:
            self.shared_backoff.close()
        if self._sweeper is not None:
            self._sweeper.join(5)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued step has run."""
        return self.lanes.wait_idle(timeout)

    def _build_streams(self) -> Any:
        from adapters.binance.user_stream import UserStreams

        return UserStreams(
            self.credentials.credentials_for,
            environment=self.gateway.environment, api_url=self.gateway.api_url,
            ws_api_url=self.gateway.ws_api_url, on_report=self._on_execution_report,
            on_balances=self.balances.offer, on_connected=self._on_stream_connected,
            on_keys_rejected=self._on_keys_rejected)

    def _submit(self, order_id: UUID, fn: Callable[..., Any], *args: Any) -> None:
        """Queue a step for an order on its lane, remembering that it is in flight."""
        with self._inflight_lock:
            self._inflight[order_id] = self._inflight.get(order_id, 0) + 1
        self.lanes.submit(order_id, self._tracked, order_id, fn, args)

    def _tracked(self, order_id: UUID, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            with self.locks.lazily():  # the lane releases the order's lock with its next one
                fn(*args)
        finally:
            with self._inflight_lock:
                left = self._inflight.pop(order_id, 1) - 1
                if left:
                    self._inflight[order_id] = left

    def _owns(self, account_id: UUID) -> bool:
        """Whether this instance owns the account, and with it the account's orders.

        It is the instance whose consumer reads the account's partition (`p % N == i`, as
        ConsumerRunner assigns them; every event is keyed by its account): the one that sees
        the account's OrderPlaced also follows its user-data stream, so an exchange report
        reaches the process that recorded the order (docs/scaling.md).
        """
        return owns_partition(account_partition(account_id, self.partitions), self.instance,
                              self.instances)

    # ---- the EventHandler ---------------------------------------------------------------
    def handle(self, conn: psycopg.Connection[Any], envelope: EventEnvelope) -> None:
        """Hand the event's work to a lane; the effect happens there (see the module doc)."""
        kind = envelope.event_type
        if envelope.aggregate_type == "Order":
            if kind in ("OrderPlaced", "OrderCancelRequested"):
                order_id = UUID(envelope.aggregate_id)
                self._submit(order_id, self._drive, order_id)
            return
        if envelope.aggregate_type != "Account":
            return
        account_id = UUID(envelope.aggregate_id)
        if kind == "AccountRegistered" and self.paper_keys is not None:
            self.lanes.submit(account_id, self._provision, account_id)
        elif kind in KEY_EVENTS:
            self.credentials.forget(account_id)
            if self.streams is None:
                return
            if kind == "ExchangeKeysRevoked":
                self.streams.unfollow(account_id)
            else:
                # New keys: a stream signed with the old ones would follow the wrong account.
                self.streams.follow(account_id, restart=kind == "ExchangeKeysRotated")

    # ---- steps (on lanes) -----------------------------------------------------------------
    def _drive(self, order_id: UUID) -> DriveResult:
        result = self.manager.drive(order_id)
        log.debug("order %s: %s -> %s (%s)", order_id, result.before.value,
                  result.after.value, result.note)
        self._later(result)
        return result

    def _recheck(self, order_id: UUID) -> None:
        result = self.manager.recheck(order_id)
        if result.changed:
            log.info("order %s: %s -> %s (%s)", order_id, result.before.value,
                     result.after.value, result.note)
        self._later(result)

    def _later(self, result: DriveResult) -> None:
        # Throttled (waits in PENDING) or its outcome not proven yet: ask again then.
        if result.recheck_after is not None:
            self.rechecks.at(result.order_id, result.recheck_after)

    def _reconcile(self, order_id: UUID, results: list[DriveResult] | None = None) -> None:
        result = self.manager.reconcile(order_id)
        self._later(result)
        if result.changed:
            log.info("reconciled order %s: %s -> %s (%s)", order_id, result.before.value,
                     result.after.value, result.note)
        if results is not None:
            results.append(result)

    def _provision(self, account_id: UUID) -> None:
        assert self.paper_keys is not None
        try:
            self.paper_keys.ensure(account_id)
        except (OSError, DomainError) as exc:
            log.warning("could not issue paper keys to account %s: %s", account_id, exc)
        self._follow_if_keys(account_id)

    def _follow_if_keys(self, account_id: UUID) -> None:
        if self.streams is None:
            return
        account = self.app.get_account(account_id)
        # Keys the exchange refused for good stay unfollowed until they change (a restart
        # must not start the refusals again).
        if account.has_exchange_keys and account.keys_rejection is None:
            self.streams.follow(account_id)

    def _on_execution_report(self, account_id: UUID, event: dict[str, Any]) -> None:
        from adapters.binance.user_stream import report_from_execution

        report = report_from_execution(event)
        order_id = order_id_from_client_order_id(report.client_order_id)
        if order_id is None:
            return  # an order placed elsewhere (web UI, another tool): not ours to record
        if self.manager.recorded(order_id, report, account_id):
            # The echo of a submit whose answer was recorded already (most reports): no need
            # to wake the order's lane. A report that arrives first still goes through it.
            return
        self._submit(order_id, self._apply_report, account_id, order_id, report)

    def _apply_report(self, account_id: UUID, order_id: UUID,
                      report: ExchangeOrderReport) -> None:
        try:
            self.manager.apply_report(order_id, report, account_id)
        except OrderNotFound:
            pass  # a clientOrderId of ours from another deployment sharing these keys

    def _on_stream_connected(self, account_id: UUID, first: bool) -> None:
        # A new account (or one back after an outage) gets its balances recorded at once,
        # so the order ticket shows what is available before the first fill.
        self.balances.mark_dirty(account_id)
        # Every subscription, the first included: a fill between the start-up reconcile and
        # the subscription reached no stream, so only a query finds it.
        for order_id, owner in self.index.refresh().items():
            if owner == account_id:
                self._submit(order_id, self._reconcile, order_id)

    def _on_keys_rejected(self, account_id: UUID, keys_digest: str, code: int,
                          reason: str) -> None:
        """Record on the account that the exchange refuses its keys (GET /api/me shows it)."""
        try:
            self.app.handle(RecordExchangeKeysRejection(
                account_id=account_id, keys_digest=keys_digest, code=code, reason=reason))
        except DomainError as exc:
            log.warning("could not record the rejection of account %s's keys: %s",
                        account_id, exc)

    # ---- reconciliation ---------------------------------------------------------------------
    def reconcile_all(self, wait: bool = True, timeout: float = 120.0) -> list[DriveResult]:
        """Reconcile every open order of this instance's share with the exchange."""
        results: list[DriveResult] = []
        for order_id, account_id in self.index.refresh().items():
            if self._owns(account_id):
                self._submit(order_id, self._reconcile, order_id, results if wait else None)
        if wait:
            self.lanes.wait_idle(timeout)
        return results

    def sweep(self) -> int:
        """Re-drive open orders stuck before the exchange's answer; return how many.

        An order waiting for its recheck (throttled, or its outcome being proven) is left to
        it: driving it here too only repeated the same queries.
        """
        count = 0
        now = time.time()
        for order_id, account_id in self.index.refresh().items():
            if (not self._owns(account_id) or order_id in self._inflight
                    or order_id in self.rechecks):
                continue  # in hand, or due to be driven again by its own recheck
            try:
                order = self.app.get_order(order_id)
            except DomainError:
                continue
            stale = now - order.modified_on.timestamp() > self.stuck_after
            unfollowed = self.streams is not None and account_id not in self.streams.connected
            if stale and (order.status in NOT_RESTING or unfollowed):
                self._submit(order_id, self._reconcile, order_id)
                count += 1
        return count

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_interval):
            try:
                swept = self.sweep()
                if swept:
                    log.info("sweeper re-drove %d open orders", swept)
            except Exception:
                log.exception("sweep failed")


def run_worker(instance: int | None = None, instances: int | None = None,
               lanes: int = DEFAULT_LANES) -> int:
    """Run one worker replica until SIGTERM/SIGINT."""
    from adapters.kafka.consumer import ConsumerRunner
    from adapters.platform.crypto import ConfigurationError
    from adapters.platform.runtime import consumer_process, open_runtime

    if not get_settings().kafka_bootstrap_servers:
        raise ConfigurationError(
            "the worker consumes the event topic: set TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS to a "
            "Kafka (or Tansu) broker, or run everything with `tradeledger up`, which starts "
            "an embedded one")
    with consumer_process("worker", instance, instances) as (settings, stop, index, count):
        assert settings.kafka_bootstrap_servers is not None  # checked above
        gateway = BinanceGateway.from_settings(settings)
        with open_runtime(settings) as rt:
            worker = ExecutionWorker(rt, gateway, lanes=lanes, instance=index, instances=count,
                                     partitions=settings.kafka_partitions)
            runner = ConsumerRunner(
                database_url=rt.database_url, schema=settings.database_schema,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic=settings.kafka_topic, handler=worker, instance=index, instances=count)
            worker.start()
            log.info("worker %d/%d trading on the %s exchange", index, count,
                     gateway.environment)
            try:
                runner.run(stop)
            finally:
                worker.stop()
                gateway.close()
    return 0
