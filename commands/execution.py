"""The execution process manager: brings the exchange in line with our orders and records
what the exchange reports back, as commands through the aggregate.

It is driven by an order's *state*, not by the event that woke it: `drive(order_id)` looks at
the order and does what that status still needs (PENDING: submit; CANCEL_REQUESTED: cancel;
SUBMITTED with no exchange id: resolve the unknown outcome). The same call serves a fresh
OrderPlaced, a redelivered one and start-up reconciliation, so every step is idempotent:

- the clientOrderId sent to the exchange is derived from our order id, so every send, query
  and cancel of one order names the same exchange order;
- OrderSubmitted is recorded *before* the order is sent, and a submitted order whose outcome
  is unknown is never sent again until the exchange says it does not have it and the lost
  request can no longer be executed (see `_resolve_unknown`);
- fills carry the exchange trade id and the aggregate ignores a trade id it already holds;
- one order is driven by one thread or process at a time (`OrderLocks`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from threading import Lock
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands.application import TradingApplication, apply_report
from commands.messages import (
    Command,
    RecordAcceptance,
    RecordCancellation,
    RecordCancelRejection,
    RecordExpiry,
    RecordFill,
    RecordRejection,
    RecordSubmission,
)
from commands.ports import (
    CredentialsProvider,
    ExchangeCredentials,
    ExchangeGateway,
    ExchangeOrderReport,
    ExchangeOrderRequest,
    ExchangeOrderStatus,
    OrderLocks,
)
from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    ExchangeDuplicateOrder,
    ExchangeKeysMissing,
    ExchangeOrderUnknown,
    ExchangeRejected,
    ExchangeUnavailable,
)
from domain.order import Order, Trigger
from domain.values import TERMINAL_STATUSES, OrderStatus

log = logging.getLogger(__name__)

SAVE_RETRIES = 8
KNOWN_ORDERS = 50_000
# Below this many events an order has no snapshot (TradingApplication snapshots Orders every
# 25 events), so loading it by its events alone is one query instead of two.
YOUNG_ORDER_EVENTS = 24
CLIENT_ORDER_ID_PREFIX = "tl"
NO_KEYS_CODE = "NO_KEYS"
NO_KEYS_MESSAGE = (
    "no exchange API keys are connected to this account: connect keys "
    "(PUT /api/account/exchange-keys) and place the order again"
)


def exchange_client_order_id(order_id: UUID) -> str:
    """Return the newClientOrderId sent for an order: 34 characters of [a-z0-9]."""
    return CLIENT_ORDER_ID_PREFIX + order_id.hex


def order_id_from_client_order_id(client_order_id: str) -> UUID | None:
    """Return our order id from an exchange clientOrderId, or None if we did not make it."""
    if len(client_order_id) != 34 or not client_order_id.startswith(CLIENT_ORDER_ID_PREFIX):
        return None
    try:
        return UUID(hex=client_order_id[2:])
    except ValueError:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How patiently the manager waits on an exchange that does not answer."""

    initial_delay: float = 0.1
    max_delay: float = 2.0
    # How long one drive keeps resolving an unknown outcome before leaving it to the next
    # reconciliation (the order then stays SUBMITTED; nothing is guessed).
    unknown_outcome_budget: float = 60.0
    # Added to the gateway's request validity for clock skew between us and the exchange.
    safety_margin: float = 1.0
    # Attempts for refusals that may pass later (rate limits, clock drift).
    transient_attempts: int = 5


@dataclass(frozen=True)
class DriveResult:
    """What one drive did to an order: its status before and after."""

    order_id: UUID
    before: OrderStatus
    after: OrderStatus
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.before is not self.after


@dataclass(frozen=True)
class Known:
    """What this process last saw recorded for an order (to skip reports with nothing new)."""

    account_id: UUID
    status: OrderStatus
    acknowledged: bool
    filled_quantity: Decimal
    trade_ids: frozenset[str]
    version: int = 0

    @classmethod
    def of(cls, order: Order) -> Known:
        return cls(order.account_id, order.status, order.exchange_order_id is not None,
                   order.filled_quantity, frozenset(order.trade_ids), order.version)

    def covers(self, report: ExchangeOrderReport) -> bool:
        """Tell whether recording `report` could change nothing (recorded facts never go)."""
        if report.cumulative_quantity > self.filled_quantity:
            return False
        if any(f.trade_id not in self.trade_ids for f in report.fills):
            return False
        if self.status in TERMINAL_STATUSES:
            return True
        if report.status in (ExchangeOrderStatus.CANCELED, ExchangeOrderStatus.EXPIRED,
                             ExchangeOrderStatus.REJECTED, ExchangeOrderStatus.FILLED):
            return False
        return self.acknowledged


class LocalOrderLocks:
    """OrderLocks for one process: a striped set of thread locks."""

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, order_id: UUID) -> Iterator[None]:
        with self._locks[order_id.int % len(self._locks)]:
            yield


class ExecutionManager:
    """Submit, cancel and reconcile orders on the exchange; record its reports as commands.

    The Record* commands of one step (a submission; one exchange report's acceptance, fills
    and final status) are applied to one loaded Order with the same aggregate calls as their
    TradingApplication handlers, and saved together: one transaction per step instead of one
    per command, which is what lets the worker keep up (docs/execution.md, benchmark).
    """

    def __init__(
        self,
        app: TradingApplication,
        gateway: ExchangeGateway,
        credentials: CredentialsProvider,
        *,
        locks: OrderLocks | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_fill: Callable[[UUID], None] | None = None,
        actor: str = "worker",
        save: Callable[[Order], object] | None = None,
    ) -> None:
        self.app = app
        # How a changed order is saved: the application's save, or a group-committing one
        # (the worker's) that shares transactions between lanes. Either raises IntegrityError
        # when another writer saved the order first.
        self._save: Callable[[Order], object] = save or app.save
        self.gateway = gateway
        self.credentials = credentials
        self.locks: OrderLocks = locks or LocalOrderLocks()
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.on_fill = on_fill
        self.actor = actor
        self._known: OrderedDict[UUID, Known] = OrderedDict()
        self._known_lock = Lock()

    # ---- entry points --------------------------------------------------------------
    def drive(self, order_id: UUID) -> DriveResult:
        """Do what the order's status still needs on the exchange (hot path, no queries)."""
        return self._locked(order_id, reconcile=False)

    def reconcile(self, order_id: UUID) -> DriveResult:
        """Ask the exchange about an open order and record the truth; submit if never sent."""
        return self._locked(order_id, reconcile=True)

    def apply_report(self, order_id: UUID, report: ExchangeOrderReport,
                     account_id: UUID | None = None) -> None:
        """Record an exchange report (user-data stream) about one of our orders.

        With `account_id`, a report about another account's order is ignored.
        """
        if self.recorded(order_id, report, account_id):
            return  # typically the echo of the submit that recorded it
        order = self._load(order_id)
        if account_id is not None and order.account_id != account_id:
            return
        self._apply(order, report, complete_from_exchange=True)

    def recorded(self, order_id: UUID, report: ExchangeOrderReport,
                 account_id: UUID | None = None) -> bool:
        """Tell whether this process already recorded everything the report says."""
        known = self.known(order_id)
        return (known is not None and known.covers(report)
                and account_id in (None, known.account_id))

    def known(self, order_id: UUID) -> Known | None:
        """Return what this process last saw recorded for the order."""
        with self._known_lock:
            return self._known.get(order_id)

    # ---- loading and recording -------------------------------------------------------
    def _remember(self, order: Order) -> Order:
        with self._known_lock:
            self._known[order.id] = Known.of(order)
            self._known.move_to_end(order.id)
            while len(self._known) > KNOWN_ORDERS:
                self._known.popitem(last=False)
        return order

    def _load(self, order_id: UUID) -> Order:
        known = self.known(order_id)
        if known is None or known.version < YOUNG_ORDER_EVENTS:
            # No snapshot can exist yet: skip asking for one (a round trip per order).
            return self._remember(self.app.get_young_order(order_id))
        return self._remember(self.app.get_order(order_id))

    def _record(self, order: Order, *commands: Command, tolerant: bool = False) -> Order:
        """Apply commands to the order and save them in one go; return the saved order.

        A concurrent writer (the stream, another process) makes the save fail: reload and
        apply again, which is safe because every command is idempotent on the aggregate.
        With `tolerant`, a command the order refuses is logged and skipped: an exchange
        report is a fact, and one contradiction must not lose the rest of it.
        """
        for _ in range(SAVE_RETRIES):
            for command in commands:
                try:
                    apply_report(order, command)
                except DomainError as exc:
                    if not tolerant:
                        raise
                    log.error("order %s: cannot record %s: %s", order.id,
                              type(command).__name__, exc.message)
            if not order.pending_events:
                return self._remember(order)
            try:
                self._save(order)
            except IntegrityError:
                order = self.app.get_order(order.id)
                continue
            return self._remember(order)
        raise ConcurrencyConflict(f"order {order.id} kept changing while recording",
                                  orderId=str(order.id))

    # ---- the state machine ---------------------------------------------------------
    def _locked(self, order_id: UUID, reconcile: bool) -> DriveResult:
        with self.locks.hold(order_id):
            order = self._load(order_id)
            before = order.status
            note = self._step(order, reconcile)
            known = self.known(order_id)
            after = known.status if known is not None else before
            return DriveResult(order_id, before, after, note)

    def _step(self, order: Order, reconcile: bool) -> str:
        status = order.status
        if order.is_terminal:
            return "nothing to do"
        if status is OrderStatus.CANCEL_REQUESTED:
            return self._cancel(order)
        if status is OrderStatus.PENDING:
            if reconcile:
                return self._reconcile_pending(order)
            return self._submit(order)
        if status is OrderStatus.SUBMITTED:
            # Submitted but never acknowledged: a worker stopped (or gave up) between
            # sending and hearing back. The order's last change bounds when it was sent.
            creds = self._credentials(order)
            if creds is None:
                return "no keys to ask the exchange with"
            return self._resolve_unknown(order, creds, sent_at=order.modified_on.timestamp())
        if reconcile:  # NEW / PARTIALLY_FILLED: resting; the stream normally reports it
            creds = self._credentials(order)
            if creds is None:
                return "no keys to ask the exchange with"
            return self._query_and_apply(order, creds)
        return "nothing to do"

    def _credentials(self, order: Order) -> ExchangeCredentials | None:
        try:
            return self.credentials.credentials_for(order.account_id)
        except ExchangeKeysMissing:
            return None

    def _submit(self, order: Order) -> str:
        creds = self._credentials(order)
        if creds is None:
            self._record(order, RecordRejection(
                order.id, NO_KEYS_CODE, NO_KEYS_MESSAGE, self.actor))
            return "rejected: no exchange keys"
        # Recorded before sending: from here on, a restart must ask before sending again.
        order = self._record(order, RecordSubmission(order.id, self.actor))
        return self._send(order, creds)

    def _send(self, order: Order, creds: ExchangeCredentials) -> str:
        request = ExchangeOrderRequest(
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price,
            time_in_force=order.time_in_force,
            client_order_id=exchange_client_order_id(order.id),
        )
        attempts = 0
        while True:
            sent_at = self.clock()
            try:
                report = self.gateway.submit_order(creds, request)
            except ExchangeDuplicateOrder:
                # The exchange holds an open order under our id: an earlier send got through.
                return self._query_and_apply(order, creds)
            except ExchangeRejected as exc:
                attempts += 1
                if exc.transient and attempts < self.policy.transient_attempts:
                    # Refused before execution (rate limit, clock): sending again is safe.
                    self.sleep(self._delay(attempts))
                    continue
                self._record(order, RecordRejection(
                    order.id, str(exc.exchange_code), exc.message, self.actor))
                return f"rejected by the exchange: {exc.exchange_code} {exc.message}"
            except ExchangeUnavailable as exc:
                log.warning("order %s: outcome of the send is unknown (%s); asking the exchange",
                            order.id, exc.message)
                if not exc.maybe_sent:
                    sent_at = 0.0  # provably never left: no lost request can arrive later
                return self._resolve_unknown(order, creds, sent_at=sent_at)
            self._apply(order, report, complete_from_exchange=False)
            return f"submitted: exchange says {report.status.value}"

    def _resolve_unknown(self, order: Order, creds: ExchangeCredentials, sent_at: float) -> str:
        """Find out what happened to a send that got no answer, without ever sending twice.

        Ask the exchange for the order by its clientOrderId until it answers. If it has the
        order, record what it says. If it says the order does not exist, sending again is safe
        only once the lost request can no longer be executed: Binance refuses a request that
        arrives more than recvWindow after its timestamp, so after sent_at + recvWindow (plus
        a margin for clock skew) a "does not exist" answer is final. Before that, wait and ask
        again rather than risk two orders.
        """
        deadline = self.clock() + self.policy.unknown_outcome_budget
        safe_after = sent_at + self.gateway.request_validity_seconds + self.policy.safety_margin
        attempt = 0
        while True:
            try:
                report = self.gateway.query_order(
                    creds, order.symbol, exchange_client_order_id(order.id))
            except ExchangeUnavailable as exc:
                attempt += 1
                if self.clock() >= deadline:
                    log.warning("order %s: exchange still unreachable (%s); left SUBMITTED for "
                                "the next reconciliation", order.id, exc.message)
                    return "outcome still unknown: exchange unreachable"
                self.sleep(self._delay(attempt))
                continue
            except ExchangeRejected as exc:
                attempt += 1
                if exc.transient and self.clock() < deadline:
                    self.sleep(self._delay(attempt))
                    continue
                log.error("order %s: the exchange refused the status query: %s %s",
                          order.id, exc.exchange_code, exc.message)
                return f"outcome still unknown: query refused ({exc.exchange_code})"
            if report is not None:
                self._apply(order, report, complete_from_exchange=False)
                return f"resolved: exchange says {report.status.value}"
            now = self.clock()
            if now >= safe_after:
                fresh = self._load(order.id)
                if fresh.status is OrderStatus.CANCEL_REQUESTED:
                    self._record(fresh, RecordCancellation(
                        order.id, "canceled before it reached the exchange", self.actor))
                    return "canceled: never reached the exchange"
                log.info("order %s never reached the exchange; sending it again", order.id)
                return self._send(fresh, creds)
            if now >= deadline:
                return "outcome still unknown: the lost request may still arrive"
            self.sleep(min(safe_after - now, deadline - now))

    def _reconcile_pending(self, order: Order) -> str:
        # PENDING means we never recorded a send, and we always record before sending; ask
        # anyway, it costs one query and protects against a send recorded nowhere.
        creds = self._credentials(order)
        if creds is not None:
            try:
                report = self.gateway.query_order(
                    creds, order.symbol, exchange_client_order_id(order.id))
            except (ExchangeUnavailable, ExchangeRejected) as exc:
                return f"left PENDING: could not ask the exchange ({exc.message})"
            if report is not None:
                self._apply(order, report, complete_from_exchange=False)
                return f"found on the exchange: {report.status.value}"
        return self._submit(order)

    def _cancel(self, order: Order) -> str:
        if not order.submitted:
            self._record(order, RecordCancellation(
                order.id, "canceled before submission", self.actor))
            return "canceled before submission"
        creds = self._credentials(order)
        if creds is None:
            self._record(order, RecordCancelRejection(
                order.id, NO_KEYS_CODE, "the account's exchange keys were removed; cancel the "
                "order on the exchange directly", self.actor))
            return "cancel rejected: no exchange keys"
        if order.exchange_order_id is None:
            # The send's outcome is unknown: find out first (it may never have arrived).
            note = self._resolve_unknown(order, creds, order.modified_on.timestamp())
            order = self._load(order.id)
            if order.status is not OrderStatus.CANCEL_REQUESTED:
                return note
        attempt = 0
        deadline = self.clock() + self.policy.unknown_outcome_budget
        while True:
            try:
                report = self.gateway.cancel_order(
                    creds, order.symbol, exchange_client_order_id(order.id))
            except ExchangeOrderUnknown:
                # Not open on the exchange: filled, canceled elsewhere or expired. Ask.
                return self._query_and_apply(order, creds, cancel_if_missing=True)
            except ExchangeRejected as exc:
                attempt += 1
                if exc.transient and attempt < self.policy.transient_attempts:
                    self.sleep(self._delay(attempt))
                    continue
                self._record(order, RecordCancelRejection(
                    order.id, str(exc.exchange_code), exc.message, self.actor))
                return f"cancel rejected: {exc.exchange_code} {exc.message}"
            except ExchangeUnavailable:
                # A cancel is safe to repeat: a second one answers "unknown order" and we ask.
                attempt += 1
                if self.clock() >= deadline:
                    return "cancel outcome unknown: exchange unreachable"
                self.sleep(self._delay(attempt))
                continue
            self._apply(order, report, complete_from_exchange=True, creds=creds)
            return f"cancel sent: exchange says {report.status.value}"

    def _query_and_apply(self, order: Order, creds: ExchangeCredentials,
                         cancel_if_missing: bool = False) -> str:
        attempt = 0
        deadline = self.clock() + self.policy.unknown_outcome_budget
        while True:
            try:
                report = self.gateway.query_order(
                    creds, order.symbol, exchange_client_order_id(order.id))
                break
            except ExchangeUnavailable:
                attempt += 1
                if self.clock() >= deadline:
                    return "exchange unreachable"
                self.sleep(self._delay(attempt))
            except ExchangeRejected as exc:
                return f"query refused: {exc.exchange_code} {exc.message}"
        if report is None:
            if cancel_if_missing:
                self._record(order, RecordCancellation(
                    order.id, "the exchange has no such order", self.actor))
                return "canceled: the exchange has no such order"
            log.error("order %s is %s here but unknown to the exchange", order.id,
                      order.status.value)
            return "the exchange has no such order"
        self._apply(order, report, complete_from_exchange=False)
        return f"exchange says {report.status.value}"

    # ---- recording a report --------------------------------------------------------
    def _apply(self, order: Order, report: ExchangeOrderReport, *,
               complete_from_exchange: bool, creds: ExchangeCredentials | None = None) -> None:
        """Record a report: acknowledgement, then each new fill, then a final status."""
        terminal = report.status in (ExchangeOrderStatus.FILLED, ExchangeOrderStatus.CANCELED,
                                     ExchangeOrderStatus.EXPIRED)
        known = set(order.trade_ids)
        new_fills = [f for f in report.fills if f.trade_id not in known]
        covered = order.filled_quantity + sum((f.quantity for f in new_fills), Decimal(0))
        if complete_from_exchange and covered < report.cumulative_quantity:
            # Some trades are missing (a stream event lost while disconnected): fetch them
            # all before recording, so a final status never lands ahead of its fills.
            creds = creds or self._credentials(order)
            full = self._query_quietly(order, creds) if creds else None
            if full is not None:
                self._apply(order, full, complete_from_exchange=False)
                return
            if terminal:
                log.error("order %s: %s on the exchange but trades are missing; left for "
                          "reconciliation", order.id, report.status.value)
                return

        commands: list[Command] = []
        if report.exchange_order_id and order.exchange_order_id is None and (
                report.status is not ExchangeOrderStatus.REJECTED):
            commands.append(RecordAcceptance(order.id, report.exchange_order_id, self.actor))
        commands.extend(
            RecordFill(order_id=order.id, trade_id=fill.trade_id, price=fill.price,
                       quantity=fill.quantity, commission=fill.commission,
                       commission_asset=fill.commission_asset, is_maker=fill.is_maker,
                       actor=self.actor)
            for fill in new_fills)
        if report.status is ExchangeOrderStatus.CANCELED:
            commands.append(RecordCancellation(order.id, "canceled on the exchange", self.actor))
        elif report.status is ExchangeOrderStatus.EXPIRED:
            commands.append(RecordExpiry(order.id, "expired on the exchange", self.actor))
        elif report.status is ExchangeOrderStatus.REJECTED and order.can(Trigger.REJECT):
            commands.append(RecordRejection(
                order.id, "EXCHANGE_REJECTED", "rejected by the exchange", self.actor))
        if commands:
            # Tolerant: the exchange's account may contradict ours (a report about a closed
            # order); events are facts, so log loudly and record the rest, invent nothing.
            self._record(order, *commands, tolerant=True)
        if new_fills and self.on_fill is not None:
            self.on_fill(order.account_id)

    def _query_quietly(self, order: Order, creds: ExchangeCredentials
                       ) -> ExchangeOrderReport | None:
        try:
            return self.gateway.query_order(
                creds, order.symbol, exchange_client_order_id(order.id))
        except (ExchangeUnavailable, ExchangeRejected) as exc:
            log.warning("order %s: could not fetch its trades: %s", order.id, exc.message)
            return None

    def _delay(self, attempt: int) -> float:
        return float(min(self.policy.initial_delay * 2 ** max(attempt - 1, 0),
                         self.policy.max_delay))
