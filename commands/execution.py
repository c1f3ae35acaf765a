"""The execution process manager: brings the exchange in line with our orders and records
what the exchange reports back, as commands through the aggregate.

It is driven by an order's *state*, not by the event that woke it: `drive(order_id)` looks at
the order and does what that status still needs (PENDING: submit; CANCEL_REQUESTED: cancel;
SUBMITTED with no exchange id: resolve the unknown outcome). The same call serves a fresh
OrderPlaced, a redelivered one and start-up reconciliation, so every step is idempotent:

- the clientOrderId sent to the exchange is derived from our order id, so every send, query
  and cancel of one order names the same exchange order;
- OrderSubmitted is recorded *before* each send (one per attempt), and an order whose send
  got no answer is never sent again: it ends with what the exchange has, or REJECTED
  NOT_SENT once the exchange provably never got it (see `_resolve_unknown`); only a send the
  exchange refused before executing it (429, 418, -1021) returns the order to PENDING;
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
from datetime import UTC, datetime
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
    RecordExecutedQuantity,
    RecordExpiry,
    RecordFill,
    RecordOutcomeUnknown,
    RecordRejection,
    RecordSendRefusal,
    RecordStopTrigger,
    RecordSubmission,
    RequestCancel,
)
from commands.ports import (
    CredentialsProvider,
    ExchangeCredentials,
    ExchangeGateway,
    ExchangeOrderListRequest,
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
    ExchangeThrottled,
    ExchangeUnavailable,
)
from domain.order import Order, Trigger
from domain.values import TERMINAL_STATUSES, OrderStatus

log = logging.getLogger(__name__)

SAVE_RETRIES = 8
# An absence proof still blocked after this long is logged (then once per this long).
UNPROVEN_LOG_AFTER = 60.0
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
NOT_SENT_CODE = "NOT_SENT"
NOT_SENT_MESSAGE = (
    "the order never reached the exchange: its send got no answer, and the exchange "
    "confirmed it has no such order once the request could no longer execute. It was not "
    "sent again (a later fill would be at a price you never saw): place it again if you "
    "still want it"
)
GONE_REASON = (
    "the exchange no longer has this order (it was wiped on the exchange, as the Binance "
    "Testnet does about once a month)"
)


class Later(str):
    """A drive's note that also asks for the order to be driven again in `after` seconds."""

    after: float

    def __new__(cls, note: str, after: float) -> Later:
        self = super().__new__(cls, note)
        self.after = max(after, 0.0)
        return self


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
    # How long one cancel or query keeps retrying an unreachable exchange before leaving
    # the order to the next reconciliation (nothing is guessed).
    unknown_outcome_budget: float = 60.0
    # Added to the gateway's unknown-outcome window: clock skew, a process paused between
    # recording a send and sending it.
    safety_margin: float = 5.0
    # "Does not exist" counts once two such answers this far apart agree (query lag).
    confirm_gap: float = 3.0
    # An order the exchange acknowledged counts as gone (a Testnet reset) only once every
    # answer for this long has said so: query lag can hide an order for seconds (the chaos
    # suite saw 3.8 s), a reset is monthly, and a resting order wrongly recorded CANCELED
    # would stay open on the exchange with nobody watching it.
    gone_confirm: float = 60.0
    # How often an order of unknown outcome is asked about while a late execution may
    # still show up.
    recheck_interval: float = 3.0
    # A rate-limit wait up to this long is slept in the drive; a longer one leaves the
    # order PENDING and asks to be driven again then.
    max_inline_wait: float = 1.0
    # Sends refused for our clock (-1021) before the order is rejected.
    transient_attempts: int = 5


@dataclass(frozen=True)
class DriveResult:
    """What one drive did to an order: its status before and after, and when to drive it
    again (`recheck_after` seconds: throttled, or its outcome not proven yet)."""

    order_id: UUID
    before: OrderStatus
    after: OrderStatus
    note: str = ""
    recheck_after: float | None = None

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
    # False for a stop order that has not triggered yet (a working report is news).
    working: bool = True

    @classmethod
    def of(cls, order: Order) -> Known:
        return cls(order.account_id, order.status, order.exchange_order_id is not None,
                   order.filled_quantity, frozenset(order.trade_ids), order.version,
                   order.working)

    def covers(self, report: ExchangeOrderReport) -> bool:
        """Tell whether recording `report` could change nothing (recorded facts never go)."""
        if report.cumulative_quantity > self.filled_quantity:
            return False
        if any(f.trade_id not in self.trade_ids for f in report.fills):
            return False
        if self.status in TERMINAL_STATUSES:
            return True
        if report.working and not self.working:
            return False
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
        # When the exchange first said it has no such order (evidence gathered per order
        # until the order is resolved; lost on restart, which only costs a few seconds).
        self._absent_since: dict[UUID, float] = {}
        # When each order's slow proof was last logged (see _still_unproven).
        self._unproven_logged: dict[UUID, float] = {}

    # ---- entry points --------------------------------------------------------------
    def drive(self, order_id: UUID) -> DriveResult:
        """Do what the order's status still needs on the exchange (hot path, no queries)."""
        return self._locked(order_id, reconcile=False)

    def reconcile(self, order_id: UUID) -> DriveResult:
        """Ask the exchange about an open order and record the truth; submit if never sent."""
        return self._locked(order_id, reconcile=True)

    def recheck(self, order_id: UUID) -> DriveResult:
        """Drive an order that asked for it (`recheck_after`): a PENDING one is submitted
        without a query first, any other one is reconciled."""
        return self._locked(order_id, reconcile=None)

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
    def _locked(self, order_id: UUID, reconcile: bool | None) -> DriveResult:
        with self.locks.hold(order_id):
            order = self._load(order_id)
            before = order.status
            if reconcile is None:
                reconcile = before is not OrderStatus.PENDING
            note = self._step(order, reconcile)
            known = self.known(order_id)
            after = known.status if known is not None else before
            if after in TERMINAL_STATUSES:
                self._forget_absence(order_id)
            recheck = note.after if isinstance(note, Later) else None
            return DriveResult(order_id, before, after, str(note), recheck)

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
            # sending and hearing back, or the send's outcome is still being proven.
            creds = self._credentials(order)
            if creds is None:
                return "no keys to ask the exchange with"
            return self._resolve_unknown(order, creds, sent_at=self._last_send(order))
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
        if order.order_list_id is not None:
            legs = self._legs(order)
            if not any(leg.submitted for leg in legs) and any(
                    leg.status is not OrderStatus.PENDING for leg in legs):
                # A leg was canceled (or refused) before its list was sent: a list goes
                # out whole or not at all, so this leg is canceled too.
                self.app.handle(RequestCancel(order.account_id, order.id, actor=self.actor))
                return self._cancel(self._load(order.id))
        if order.sent_with_its_list:
            # Its list's sending leg records and sends both; this leg has nothing to do.
            return "waits: sent with its order list"
        creds = self._credentials(order)
        if creds is None:
            self._record_each(self._legs(order), RecordRejection, NO_KEYS_CODE,
                              NO_KEYS_MESSAGE)
            return "rejected: no exchange keys"
        # Under the ORDERS limit before anything is recorded: a throttled order waits in
        # PENDING (it was never sent), and the recorded send time stays the real one.
        try:
            delay = self.gateway.order_delay(creds)
            if 0 < delay <= self.policy.max_inline_wait:
                self.sleep(delay)
                delay = self.gateway.order_delay(creds)
        except ExchangeRejected as exc:  # the budget could not even read the limits
            return Later(f"waiting in PENDING: {exc.message}", self.policy.recheck_interval)
        if delay > 0:
            return Later(f"throttled: waits in PENDING for {delay:.1f} s", delay)
        # Recorded before sending: from here on, a restart must ask before sending again.
        if order.sends_its_list:
            # Both legs in one save: they reach the exchange in one request or not at all,
            # so each is then proven (found, or never sent) by its own clientOrderId.
            legs = self._record_submissions(self._legs(order))
            list_request = ExchangeOrderListRequest(
                symbol=order.symbol, side=order.side, quantity=order.quantity,
                list_client_order_id=exchange_client_order_id(order.id),
                legs=(_request(legs[0]), _request(legs[1])))
            return self._send_legs(legs, creds, lambda: self.gateway.submit_order_list(
                creds, list_request))
        order = self._record(order, RecordSubmission(order.id, self.actor))
        return self._send(order, creds)

    def _legs(self, order: Order) -> list[Order]:
        """Return the order, or the legs of its order list (the sending leg first)."""
        if not order.list_leg_ids:
            return [order]
        return [order if leg_id == order.id else self._load(leg_id)
                for leg_id in order.list_leg_ids]

    def _record_each(self, orders: list[Order], command: Callable[..., Command],
                     code: str, message: str) -> None:
        """Record one report (`command(order_id, code, message, actor)`) on each order."""
        for order in orders:
            self._record(order, command(order.id, code, message, self.actor))

    def _record_submissions(self, legs: list[Order]) -> list[Order]:
        """Record the send of every leg of a list in one transaction; return them saved."""
        for _ in range(SAVE_RETRIES):
            for leg in legs:
                apply_report(leg, RecordSubmission(leg.id, self.actor))
            try:
                self.app.save(*legs)
            except IntegrityError:
                legs = [self.app.get_order(leg.id) for leg in legs]
                continue
            return [self._remember(leg) for leg in legs]
        raise ConcurrencyConflict(f"order list {legs[0].id} kept changing while recording",
                                  orderId=str(legs[0].id))

    def _send(self, order: Order, creds: ExchangeCredentials) -> str:
        request = _request(order)
        return self._send_legs([order], creds,
                               lambda: [self.gateway.submit_order(creds, request)])

    def _send_legs(self, orders: list[Order], creds: ExchangeCredentials,
                   send: Callable[[], list[ExchangeOrderReport]]) -> str:
        """Send an order (or an order list: `orders` are its legs) once and record the
        answer for each; refusals apply to all of them, as the request was one."""
        order = orders[0]
        sent_at = self.clock()
        try:
            reports = send()
        except ExchangeDuplicateOrder:
            # The exchange holds an open order under our id: an earlier send got through.
            notes = [self._query_and_apply(leg, creds) for leg in orders]
            return notes[0]
        except ExchangeThrottled as exc:
            # 429 / 418 / our own budget: refused before execution, so sending later is
            # safe. Never a rejection: the order waits in PENDING for the back-off.
            self._record_each(orders, RecordSendRefusal, str(exc.exchange_code), exc.message)
            return Later(f"throttled by the exchange ({exc.exchange_code}): waits in PENDING",
                         exc.retry_after)
        except ExchangeRejected as exc:
            if exc.transient and order.send_attempts < self.policy.transient_attempts:
                # Refused before execution (our clock): sending again is safe.
                self._record_each(orders, RecordSendRefusal, str(exc.exchange_code), exc.message)
                return Later(f"refused for now ({exc.exchange_code}): sent again soon",
                             self._delay(order.send_attempts))
            self._record_each(orders, RecordRejection, str(exc.exchange_code), exc.message)
            return f"rejected by the exchange: {exc.exchange_code} {exc.message}"
        except ExchangeUnavailable as exc:
            if not exc.maybe_sent:
                # Provably never left (connection refused): nothing can execute later.
                self._record_each(orders, RecordSendRefusal, "NOT_CONNECTED", exc.message)
                return Later(f"exchange unreachable ({exc.message}): waits in PENDING",
                             self._delay(order.send_attempts))
            log.warning("order %s: outcome of the send is unknown (%s); asking the exchange",
                        order.id, exc.message)
            for leg in orders[1:]:  # proven by their own drive (the sweeper brings it)
                self._mark_unknown(leg, sent_at, "the send of its order list got no answer")
            return self._resolve_unknown(order, creds, sent_at=sent_at)
        by_client_id = {report.client_order_id: report for report in reports}
        for leg in orders:
            report = by_client_id.get(exchange_client_order_id(leg.id))
            if report is not None:
                self._apply(leg, report, complete_from_exchange=False)
        return f"submitted: exchange says {reports[0].status.value}"

    def _last_send(self, order: Order) -> float:
        """When the order's last send left: recorded with it (or, for orders recorded
        before sends had times, its last change, which is no earlier)."""
        if order.last_send_at is not None:
            return order.last_send_at.timestamp()
        return order.modified_on.timestamp()

    def _resolve_unknown(self, order: Order, creds: ExchangeCredentials, sent_at: float) -> str:
        """Look once at a send that got no answer; never send it again.

        The exchange has the order: record what it says. It says "does not exist": that
        counts only once the window in which the lost request may still execute has closed
        (`unknown_outcome_window_seconds` after it left, plus a margin), and only when two
        such answers some seconds apart and the symbol's order and trade lists since the
        order was placed agree. Then the order ends REJECTED NOT_SENT (or CANCELED, if the
        user asked to cancel it). Until then it stays SUBMITTED, recorded as of unknown
        outcome, and the result asks to be driven again.
        """
        closes = (sent_at + self.gateway.unknown_outcome_window_seconds
                  + self.policy.safety_margin)
        try:
            report = self.gateway.query_order(
                creds, order.symbol, exchange_client_order_id(order.id))
        except (ExchangeUnavailable, ExchangeRejected) as exc:
            self._mark_unknown(order, sent_at, f"could not ask the exchange: {exc.message}")
            wait = (exc.retry_after if isinstance(exc, ExchangeThrottled)
                    else self.policy.recheck_interval)
            return Later(f"outcome still unknown: could not ask ({exc.message})", wait)
        if report is not None:
            self._forget_absence(order.id)
            self._apply(order, report, complete_from_exchange=False)
            return f"resolved: exchange says {report.status.value}"
        now = self.clock()
        if now < closes:
            # A lost or slow request may still execute: this answer proves nothing.
            self._forget_absence(order.id)
            self._mark_unknown(order, sent_at, "the send got no answer and the exchange "
                               "does not show the order yet")
            return Later("outcome unknown: the request may still execute",
                         min(self.policy.recheck_interval, closes - now))
        not_yet = self._prove_absent(order, creds, since=order.created_on.timestamp()
                                     - self.policy.safety_margin)
        if not_yet is not None:
            self._mark_unknown(order, sent_at, "the send got no answer; checking")
            return Later(f"outcome unknown: {not_yet}", self.policy.confirm_gap)
        self._forget_absence(order.id)
        fresh = self._load(order.id)
        if fresh.status is OrderStatus.CANCEL_REQUESTED:
            self._record(fresh, RecordCancellation(
                order.id, "canceled before it reached the exchange", self.actor))
            return "canceled: never reached the exchange"
        log.warning("order %s never reached the exchange: rejected %s, not sent again",
                    order.id, NOT_SENT_CODE)
        self._record(fresh, RecordRejection(order.id, NOT_SENT_CODE, NOT_SENT_MESSAGE,
                                            self.actor))
        return "rejected: never reached the exchange (not sent again)"

    def _prove_absent(self, order: Order, creds: ExchangeCredentials, *,
                      since: float | None = None, confirm: float | None = None) -> str | None:
        """Return None once the exchange provably has no such order, else why not yet.

        Called after a "does not exist" answer. Proof: such answers since at least `confirm`
        seconds (default `confirm_gap`; any answer showing the order starts over), and the
        symbol's allOrders / myTrades (from `since`, or from the order's exchange id) that
        neither list the order nor a trade of an unlisted order.
        """
        now = self.clock()
        with self._known_lock:
            first = self._absent_since.setdefault(order.id, now)
        if now - first < (self.policy.confirm_gap if confirm is None else confirm):
            return "the exchange says it has no such order; asking again to be sure"
        try:
            history = self.gateway.order_history(
                creds, order.symbol, since=since,
                from_order_id=order.exchange_order_id if since is None else None)
        except (ExchangeUnavailable, ExchangeRejected) as exc:
            return self._still_unproven(
                order, now - first, f"could not list the symbol's orders ({exc.message})")
        if (exchange_client_order_id(order.id) in history.client_order_ids
                or (order.exchange_order_id or "") in history.order_ids):
            with self._known_lock:
                self._absent_since.pop(order.id, None)
            return "the order list shows it while its query does not (lag); asking again"
        if not history.complete or not history.consistent:
            return self._still_unproven(
                order, now - first,
                "the exchange's order and trade lists disagree (lag); asking again")
        return None

    def _still_unproven(self, order: Order, waited: float, why: str) -> str:
        """Return `why`; past a minute of trying, also say so in the log once a minute, so
        an order whose proof never completes is seen (rechecks are otherwise silent)."""
        now = self.clock()
        if waited >= UNPROVEN_LOG_AFTER:
            with self._known_lock:
                due = now - self._unproven_logged.get(order.id, 0.0) >= UNPROVEN_LOG_AFTER
                if due:
                    self._unproven_logged[order.id] = now
            if due:
                log.warning("order %s (%s): the exchange says it has no such order, but "
                            "%.0f s of trying have not proven it: %s", order.id,
                            order.status.value, waited, why)
        return why

    def _forget_absence(self, order_id: UUID) -> None:
        with self._known_lock:
            self._absent_since.pop(order_id, None)
            self._unproven_logged.pop(order_id, None)

    def _mark_unknown(self, order: Order, sent_at: float, reason: str) -> None:
        """Record once that the send's outcome is unknown (the API shows "checking")."""
        if order.outcome_unknown:
            return
        try:
            self._record(order, RecordOutcomeUnknown(
                order.id, datetime.fromtimestamp(sent_at, UTC), reason[:300], self.actor))
        except DomainError as exc:  # the order moved on meanwhile: nothing to show
            log.debug("order %s: outcome not marked unknown: %s", order.id, exc.message)

    def _reconcile_pending(self, order: Order) -> str:
        # PENDING means we never recorded a send, and we always record before sending; ask
        # anyway, it costs one query and protects against a send recorded nowhere.
        creds = self._credentials(order)
        if creds is not None:
            try:
                report = self.gateway.query_order(
                    creds, order.symbol, exchange_client_order_id(order.id))
            except (ExchangeUnavailable, ExchangeRejected) as exc:
                wait = (exc.retry_after if isinstance(exc, ExchangeThrottled)
                        else self.policy.recheck_interval)
                return Later(f"left PENDING: could not ask the exchange ({exc.message})", wait)
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
            note = self._resolve_unknown(order, creds, self._last_send(order))
            order = self._load(order.id)
            if (order.status is not OrderStatus.CANCEL_REQUESTED
                    or order.exchange_order_id is None):
                return note  # resolved, or still unknown (nothing to cancel by id yet)
        attempt = 0
        deadline = self.clock() + self.policy.unknown_outcome_budget
        while True:
            try:
                report = self.gateway.cancel_order(
                    creds, order.symbol, exchange_client_order_id(order.id))
            except ExchangeOrderUnknown:
                # Not open on the exchange: filled, canceled elsewhere or expired. Ask.
                return self._query_and_apply(order, creds, cancel_if_missing=True)
            except ExchangeThrottled as exc:
                return Later(f"cancel waits for the rate limit ({exc.exchange_code})",
                             exc.retry_after)
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
            except ExchangeThrottled as exc:
                return Later(f"query waits for the rate limit ({exc.exchange_code})",
                             exc.retry_after)
            except ExchangeUnavailable:
                attempt += 1
                if self.clock() >= deadline:
                    return "exchange unreachable"
                self.sleep(self._delay(attempt))
            except ExchangeRejected as exc:
                return f"query refused: {exc.exchange_code} {exc.message}"
        if report is None and order.exchange_order_id is None:
            # Never acknowledged: whether it reached the exchange is what needs proving.
            return self._resolve_unknown(order, creds, self._last_send(order))
        if report is None:
            # An order the exchange acknowledged, and now says it does not have: wiped (a
            # Testnet reset), or a lagging query. Proven the same way as a lost send.
            not_yet = self._prove_absent(order, creds, confirm=self.policy.gone_confirm)
            if not_yet is not None:
                log.info("order %s is %s here but the exchange does not show it: %s",
                         order.id, order.status.value, not_yet)
                return Later(f"the exchange does not show it: {not_yet}",
                             self.policy.confirm_gap)
            self._forget_absence(order.id)
            reason = ("canceled: " + GONE_REASON) if cancel_if_missing else GONE_REASON
            self._record(order, RecordCancellation(order.id, reason, self.actor))
            log.warning("order %s: %s; recorded as canceled", order.id, GONE_REASON)
            return "canceled: the exchange no longer has it"
        self._forget_absence(order.id)
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
        if (report.status is ExchangeOrderStatus.FILLED and not order.quantity_known
                and covered == report.cumulative_quantity > 0):
            # A spend-amount order learns its quantity when it is done: before its fills,
            # so the last one completes it in this same save.
            commands.append(RecordExecutedQuantity(order.id, report.cumulative_quantity,
                                                   self.actor))
        if (report.working and order.stop_price is not None and not order.triggered
                and not new_fills and report.status is ExchangeOrderStatus.NEW):
            # Binance reports a triggered stop order NEW again, now working (a fill
            # records the trigger by itself).
            commands.append(RecordStopTrigger(order.id, self.actor))
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


def _request(order: Order) -> ExchangeOrderRequest:
    """Return the order as the exchange is sent it (by our clientOrderId)."""
    return ExchangeOrderRequest(
        symbol=order.symbol, side=order.side, order_type=order.order_type,
        quantity=order.quantity, price=order.price, time_in_force=order.time_in_force,
        client_order_id=exchange_client_order_id(order.id),
        quote_order_qty=order.quote_order_qty, stop_price=order.stop_price)
