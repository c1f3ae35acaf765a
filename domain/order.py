"""The Order aggregate: an order's whole life, decided by public methods, recorded as events.

Public methods validate and decide; the private `@event` methods only mutate, because they
run again on every replay. The lifecycle is the explicit table `TRANSITIONS`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, Overfill
from domain.values import TERMINAL_STATUSES, OrderStatus, OrderType, Side, TimeInForce

ORDER_NAMESPACE = uuid5(NAMESPACE_URL, "https://tradeledger.dev/order")
# An OCO list's legs: their clientOrderIds are the list's plus these suffixes; the first
# (the stop-loss leg) names the list and sends it.
LIST_LEG_SUFFIXES = ("-sl", "-tp")


class Trigger(StrEnum):
    SUBMIT = "SUBMIT"
    ACCEPT = "ACCEPT"
    FILL_PARTIAL = "FILL_PARTIAL"
    FILL_COMPLETE = "FILL_COMPLETE"
    REJECT = "REJECT"
    REQUEST_CANCEL = "REQUEST_CANCEL"
    CANCEL = "CANCEL"
    EXPIRE = "EXPIRE"
    # The exchange refused a send before executing it (rate limit, clock): back to waiting.
    SEND_REFUSED = "SEND_REFUSED"
    # A stop order's stopPrice was reached: it now works as a LIMIT order. Binance keeps
    # reporting it NEW (no distinct status), so the status stays; `triggered` records it.
    STOP_TRIGGER = "STOP_TRIGGER"


S = OrderStatus
T = Trigger

# (status, trigger) -> next status. Anything not listed is an IllegalTransition.
# Exchange reports may race a cancel request, so CANCEL_REQUESTED still takes acks and fills.
TRANSITIONS: dict[tuple[OrderStatus, Trigger], OrderStatus] = {
    (S.PENDING, T.SUBMIT): S.SUBMITTED,
    (S.PENDING, T.REJECT): S.REJECTED,
    (S.PENDING, T.REQUEST_CANCEL): S.CANCEL_REQUESTED,
    (S.SUBMITTED, T.ACCEPT): S.NEW,
    (S.SUBMITTED, T.FILL_PARTIAL): S.PARTIALLY_FILLED,
    (S.SUBMITTED, T.FILL_COMPLETE): S.FILLED,
    (S.SUBMITTED, T.REJECT): S.REJECTED,
    (S.SUBMITTED, T.REQUEST_CANCEL): S.CANCEL_REQUESTED,
    (S.SUBMITTED, T.CANCEL): S.CANCELED,
    (S.SUBMITTED, T.EXPIRE): S.EXPIRED,
    (S.NEW, T.FILL_PARTIAL): S.PARTIALLY_FILLED,
    (S.NEW, T.FILL_COMPLETE): S.FILLED,
    (S.NEW, T.REQUEST_CANCEL): S.CANCEL_REQUESTED,
    (S.NEW, T.CANCEL): S.CANCELED,
    (S.NEW, T.EXPIRE): S.EXPIRED,
    (S.PARTIALLY_FILLED, T.FILL_PARTIAL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.FILL_COMPLETE): S.FILLED,
    (S.PARTIALLY_FILLED, T.REQUEST_CANCEL): S.CANCEL_REQUESTED,
    (S.PARTIALLY_FILLED, T.CANCEL): S.CANCELED,
    (S.PARTIALLY_FILLED, T.EXPIRE): S.EXPIRED,
    (S.CANCEL_REQUESTED, T.SUBMIT): S.CANCEL_REQUESTED,
    (S.CANCEL_REQUESTED, T.ACCEPT): S.CANCEL_REQUESTED,
    (S.CANCEL_REQUESTED, T.FILL_PARTIAL): S.CANCEL_REQUESTED,
    (S.CANCEL_REQUESTED, T.FILL_COMPLETE): S.FILLED,
    (S.CANCEL_REQUESTED, T.REJECT): S.REJECTED,
    (S.CANCEL_REQUESTED, T.CANCEL): S.CANCELED,
    (S.CANCEL_REQUESTED, T.EXPIRE): S.EXPIRED,
    (S.SUBMITTED, T.SEND_REFUSED): S.PENDING,
    (S.CANCEL_REQUESTED, T.SEND_REFUSED): S.CANCEL_REQUESTED,
    # Only an acknowledged, untouched stop order triggers; a trigger may race a cancel.
    (S.NEW, T.STOP_TRIGGER): S.NEW,
    (S.CANCEL_REQUESTED, T.STOP_TRIGGER): S.CANCEL_REQUESTED,
}


def order_id_for(account_id: UUID, client_order_id: str) -> UUID:
    """Derive the order id from its account and clientOrderId, so duplicates collide."""
    return uuid5(ORDER_NAMESPACE, f"{account_id}/{client_order_id}")


class Order(Aggregate):
    """One trader's order, from placement to a terminal status."""

    # Defaults for orders loaded from snapshots taken before these attributes existed.
    send_attempts: int = 0
    last_send_at: datetime | None = None
    outcome_unknown: bool = False
    quote_order_qty: Decimal | None = None
    stop_price: Decimal | None = None
    triggered: bool = False
    order_list_id: UUID | None = None
    list_client_order_id: str | None = None

    @staticmethod
    def create_id(account_id: UUID, client_order_id: str, **_: Any) -> UUID:
        return order_id_for(account_id, client_order_id)

    @event("OrderPlaced")
    def __init__(
        self,
        account_id: UUID,
        client_order_id: str,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal,
        price: Decimal | None,
        time_in_force: str | None,
        actor: str,
        # Spend-amount MARKET orders: the quote to spend; `quantity` is then 0 until the
        # exchange reports what it bought or sold (OrderQuantityFixed). Defaulted, so
        # OrderPlaced events stored before it existed still load.
        quote_order_qty: Decimal | None = None,
        # STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT: the price that makes the order work.
        stop_price: Decimal | None = None,
        # A leg of an OCO order list: the list's id (its stop-loss leg's order id, the leg
        # that sends the list) and the list's clientOrderId.
        order_list_id: UUID | None = None,
        list_client_order_id: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.quote_order_qty = quote_order_qty
        self.stop_price = stop_price
        self.triggered = False
        self.order_list_id = order_list_id
        self.list_client_order_id = list_client_order_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.price = price
        self.time_in_force = time_in_force
        self._status = OrderStatus.PENDING.value
        self.exchange_order_id: str | None = None
        self.submitted = False
        self.filled_quantity = Decimal(0)
        self.filled_quote = Decimal(0)
        self.commissions: dict[str, Decimal] = {}
        self.trade_ids: list[str] = []
        self.reject_code: str | None = None
        self.reject_reason: str | None = None
        self.cancel_rejections = 0
        # Each send to the exchange is one OrderSubmitted (attempt n is the n-th); the time
        # the last one left bounds when a lost request could still execute.
        self.send_attempts = 0
        self.last_send_at = None
        self.outcome_unknown = False

    # ---- derived state -------------------------------------------------------------
    @property
    def status(self) -> OrderStatus:
        return OrderStatus(self._status)

    @property
    def side_enum(self) -> Side:
        return Side(self.side)

    @property
    def type_enum(self) -> OrderType:
        return OrderType(self.order_type)

    @property
    def time_in_force_enum(self) -> TimeInForce | None:
        return TimeInForce(self.time_in_force) if self.time_in_force else None

    @property
    def sends_its_list(self) -> bool:
        """Tell whether this order sends its order list (both legs) to the exchange."""
        return self.order_list_id == self.id

    @property
    def list_leg_ids(self) -> tuple[UUID, ...]:
        """Return the order ids of this order's list legs, the sending leg first (none for
        an order that is in no list)."""
        if self.list_client_order_id is None:
            return ()
        return tuple(order_id_for(self.account_id, self.list_client_order_id + suffix)
                     for suffix in LIST_LEG_SUFFIXES)

    @property
    def sent_with_its_list(self) -> bool:
        """Tell whether this order is a leg that another leg sends with its list."""
        return self.order_list_id is not None and self.order_list_id != self.id

    @property
    def working(self) -> bool:
        """Tell whether the order is on the book (a stop order only once triggered)."""
        return not self.type_enum.has_stop or self.triggered

    @property
    def quantity_known(self) -> bool:
        """Tell whether the base quantity is known (a spend-amount order's is not, at first)."""
        return self.quote_order_qty is None or self.quantity > 0

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def average_price(self) -> Decimal | None:
        if self.filled_quantity == 0:
            return None
        return self.filled_quote / self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def _next(self, trigger: Trigger) -> OrderStatus:
        try:
            return TRANSITIONS[(self.status, trigger)]
        except KeyError:
            raise IllegalTransition(
                f"order {self.id} is {self.status.value}; cannot {trigger.value.lower()}",
                orderId=str(self.id),
                status=self.status.value,
                trigger=trigger.value,
            ) from None

    def can(self, trigger: Trigger) -> bool:
        """Tell whether the lifecycle allows `trigger` now."""
        return (self.status, trigger) in TRANSITIONS

    # ---- commands ------------------------------------------------------------------
    def submit(self, actor: str) -> None:
        """Record that the order was sent to the exchange."""
        if self.submitted:
            return
        self._next(Trigger.SUBMIT)
        self._submitted(account_id=self.account_id, actor=actor)

    def refuse_send(self, code: str, message: str, actor: str) -> None:
        """Record that the exchange refused the last send before executing it (rate limit,
        clock): the order waits to be sent again, as if never sent."""
        if not self.submitted:
            return
        if self.outcome_unknown:
            raise IllegalTransition(
                f"order {self.id} has a send of unknown outcome; it is never sent again",
                orderId=str(self.id))
        self._next(Trigger.SEND_REFUSED)
        self._send_refused(account_id=self.account_id, attempt=self.send_attempts, code=code,
                           message=message, actor=actor)

    def mark_outcome_unknown(self, sent_at: datetime, reason: str, actor: str) -> None:
        """Record that the last send's outcome is unknown: shown as "checking" until proven."""
        if self.outcome_unknown or not self.submitted or self.exchange_order_id is not None:
            return
        if self.status not in (OrderStatus.SUBMITTED, OrderStatus.CANCEL_REQUESTED):
            return
        self._outcome_unknown(account_id=self.account_id, attempt=self.send_attempts,
                              sent_at=sent_at, reason=reason, actor=actor)

    def accept(self, exchange_order_id: str, actor: str) -> None:
        """Record the exchange's acknowledgement; a repeated ack is a no-op."""
        if self.exchange_order_id == exchange_order_id:
            return
        if self.exchange_order_id is not None:
            raise IllegalTransition(
                f"order {self.id} is already known to the exchange as {self.exchange_order_id}",
                orderId=str(self.id),
            )
        if self.status is OrderStatus.PENDING:
            self.submit(actor)
        if not self.can(Trigger.ACCEPT):
            # The ack lost a race with a fill or a cancel: keep the id, not the status.
            self._exchange_id_learned(
                account_id=self.account_id, exchange_order_id=exchange_order_id, actor=actor
            )
            return
        self._accepted(
            account_id=self.account_id, exchange_order_id=exchange_order_id, actor=actor
        )

    def fill(
        self,
        trade_id: str,
        price: Decimal,
        quantity: Decimal,
        commission: Decimal,
        commission_asset: str | None,
        actor: str,
        is_maker: bool = False,
    ) -> bool:
        """Record one execution. Returns False when the trade id was already applied."""
        if trade_id in self.trade_ids:
            return False
        if quantity <= 0 or price <= 0:
            raise Overfill(f"fill {trade_id} must have a positive price and quantity")
        new_filled = self.filled_quantity + quantity
        if self.quantity_known and new_filled > self.quantity:
            raise Overfill(
                f"fill {trade_id} of {quantity} would fill {new_filled} of an order for "
                f"{self.quantity}",
                orderId=str(self.id),
                tradeId=trade_id,
            )
        if self.status is OrderStatus.PENDING:
            self.submit(actor)
        # A spend-amount order is complete when the exchange fixes its quantity, not before.
        complete = self.quantity_known and new_filled == self.quantity
        status = self._next(Trigger.FILL_COMPLETE if complete else Trigger.FILL_PARTIAL)
        self._filled(
            account_id=self.account_id,
            trade_id=trade_id,
            price=price,
            quantity=quantity,
            commission=commission,
            commission_asset=commission_asset,
            is_maker=is_maker,
            status=status.value,
            actor=actor,
        )
        return True

    def fix_quantity(self, quantity: Decimal, actor: str) -> None:
        """Record the base quantity the exchange executed for a spend-amount order (its
        final executedQty); fills that already reach it complete the order."""
        if self.quote_order_qty is None:
            raise IllegalTransition(
                f"order {self.id} has a quantity; only a spend-amount order gets one fixed",
                orderId=str(self.id))
        if self.quantity_known:
            if quantity == self.quantity:
                return
            raise IllegalTransition(
                f"order {self.id} already has the quantity {self.quantity}",
                orderId=str(self.id))
        if quantity <= 0 or quantity < self.filled_quantity:
            raise Overfill(
                f"order {self.id} has {self.filled_quantity} filled; its quantity cannot be "
                f"{quantity}", orderId=str(self.id))
        status = self.status
        if self.filled_quantity == quantity:
            status = self._next(Trigger.FILL_COMPLETE)
        self._quantity_fixed(account_id=self.account_id, quantity=quantity,
                             status=status.value, actor=actor)

    def trigger(self, actor: str) -> None:
        """Record that a stop order's stopPrice was reached; repeated reports are no-ops."""
        if not self.type_enum.has_stop:
            raise IllegalTransition(
                f"order {self.id} is a {self.order_type} order; only stop orders trigger",
                orderId=str(self.id))
        if self.triggered:
            return
        self._next(Trigger.STOP_TRIGGER)
        self._stop_triggered(account_id=self.account_id, actor=actor)

    def reject(self, code: str, message: str, actor: str) -> None:
        """Record that the exchange (or our pre-trade checks) refused the order."""
        if self.status is OrderStatus.REJECTED:
            return
        self._next(Trigger.REJECT)
        self._rejected(account_id=self.account_id, code=code, message=message, actor=actor)

    def request_cancel(self, actor: str) -> None:
        """Ask for the order to be canceled; repeated requests are no-ops."""
        if self.status is OrderStatus.CANCEL_REQUESTED:
            return
        self._next(Trigger.REQUEST_CANCEL)
        self._cancel_requested(account_id=self.account_id, actor=actor)

    def reject_cancel(self, code: str, message: str, actor: str) -> None:
        """Record that the exchange refused the cancel; the order returns to its open status."""
        if self.status is not OrderStatus.CANCEL_REQUESTED:
            return
        self._cancel_rejected(
            account_id=self.account_id,
            code=code,
            message=message,
            status=self._status_before_cancel().value,
            actor=actor,
        )

    def cancel(self, actor: str, reason: str = "") -> None:
        """Record that the exchange canceled the order; repeated reports are no-ops."""
        if self.status is OrderStatus.CANCELED:
            return
        self._next(Trigger.CANCEL)
        self._canceled(account_id=self.account_id, reason=reason, actor=actor)

    def expire(self, actor: str, reason: str = "") -> None:
        """Record that the exchange expired the order (IOC/FOK remainder, or time)."""
        if self.status is OrderStatus.EXPIRED:
            return
        self._next(Trigger.EXPIRE)
        self._expired(account_id=self.account_id, reason=reason, actor=actor)

    def _status_before_cancel(self) -> OrderStatus:
        if self.filled_quantity > 0:
            return OrderStatus.PARTIALLY_FILLED
        if self.exchange_order_id is not None:
            return OrderStatus.NEW
        if self.submitted:
            return OrderStatus.SUBMITTED
        return OrderStatus.PENDING

    # ---- events (mutation only) ----------------------------------------------------
    @event("OrderSubmitted")
    def _submitted(self, account_id: UUID, actor: str,
                   timestamp: datetime | None = None) -> None:
        # `timestamp` is the event's own (not a payload field): when this send left.
        self.submitted = True
        self.send_attempts += 1
        self.last_send_at = timestamp
        self.outcome_unknown = False
        if self._status == OrderStatus.PENDING.value:
            self._status = OrderStatus.SUBMITTED.value

    @event("OrderSendRefused")
    def _send_refused(self, account_id: UUID, attempt: int, code: str, message: str,
                      actor: str) -> None:
        self.submitted = False
        if self._status == OrderStatus.SUBMITTED.value:
            self._status = OrderStatus.PENDING.value

    @event("OrderOutcomeUnknown")
    def _outcome_unknown(self, account_id: UUID, attempt: int, sent_at: datetime, reason: str,
                         actor: str) -> None:
        self.outcome_unknown = True
        self.last_send_at = sent_at

    @event("OrderAccepted")
    def _accepted(self, account_id: UUID, exchange_order_id: str, actor: str) -> None:
        self.exchange_order_id = exchange_order_id
        self.outcome_unknown = False
        if self._status in (OrderStatus.SUBMITTED.value, OrderStatus.PENDING.value):
            self._status = OrderStatus.NEW.value

    @event("OrderExchangeIdLearned")
    def _exchange_id_learned(self, account_id: UUID, exchange_order_id: str, actor: str) -> None:
        self.exchange_order_id = exchange_order_id
        self.outcome_unknown = False

    @event("OrderFilled")
    def _filled(
        self,
        account_id: UUID,
        trade_id: str,
        price: Decimal,
        quantity: Decimal,
        commission: Decimal,
        commission_asset: str | None,
        is_maker: bool,
        status: str,
        actor: str,
    ) -> None:
        self.trade_ids.append(trade_id)
        self.outcome_unknown = False
        if self.stop_price is not None:
            self.triggered = True  # a stop order trades only once its stop was reached
        self.filled_quantity += quantity
        self.filled_quote += price * quantity
        # No asset means no commission was charged (Binance's N = null).
        if commission_asset is not None:
            self.commissions[commission_asset] = (
                self.commissions.get(commission_asset, Decimal(0)) + commission
            )
        self._status = status

    @event("OrderStopTriggered")
    def _stop_triggered(self, account_id: UUID, actor: str) -> None:
        self.triggered = True

    @event("OrderQuantityFixed")
    def _quantity_fixed(self, account_id: UUID, quantity: Decimal, status: str,
                        actor: str) -> None:
        self.quantity = quantity
        self._status = status

    @event("OrderRejected")
    def _rejected(self, account_id: UUID, code: str, message: str, actor: str) -> None:
        self.reject_code = code
        self.reject_reason = message
        self.outcome_unknown = False
        self._status = OrderStatus.REJECTED.value

    @event("OrderCancelRequested")
    def _cancel_requested(self, account_id: UUID, actor: str) -> None:
        self._status = OrderStatus.CANCEL_REQUESTED.value

    @event("OrderCancelRejected")
    def _cancel_rejected(
        self, account_id: UUID, code: str, message: str, status: str, actor: str
    ) -> None:
        self.cancel_rejections += 1
        self._status = status

    @event("OrderCanceled")
    def _canceled(self, account_id: UUID, reason: str, actor: str) -> None:
        self.outcome_unknown = False
        self._status = OrderStatus.CANCELED.value

    @event("OrderExpired")
    def _expired(self, account_id: UUID, reason: str, actor: str) -> None:
        self.outcome_unknown = False
        self._status = OrderStatus.EXPIRED.value
