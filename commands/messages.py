"""Commands: imperative, frozen, one handler each (commands/application.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True)
class Command:
    """Base of every command; `actor` says who or what issued it, for the audit trail."""


@dataclass(frozen=True)
class RegisterAccount(Command):
    email: str
    password: str = field(repr=False)  # a command may reach a log line or a traceback


@dataclass(frozen=True)
class ConnectExchangeKeys(Command):
    account_id: UUID
    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    environment: str = "paper"


@dataclass(frozen=True)
class ChangePassword(Command):
    account_id: UUID
    current_password: str = field(repr=False)
    new_password: str = field(repr=False)


@dataclass(frozen=True)
class RevokeExchangeKeys(Command):
    account_id: UUID


@dataclass(frozen=True)
class RecordExchangeKeysRejection(Command):
    """The exchange refused an account's keys for good (-2014/-2015/-1022).

    `keys_digest` names the refused pair (ExchangeCredentials.digest): a refusal of keys the
    account has since replaced is not recorded against the new ones.
    """

    account_id: UUID
    keys_digest: str
    code: int
    reason: str


@dataclass(frozen=True)
class ReencryptExchangeKeys(Command):
    """Re-encrypt an account's keys under the cipher's current master key."""

    account_id: UUID


@dataclass(frozen=True)
class PlaceOrder(Command):
    account_id: UUID
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: object | None  # None with quote_order_qty: a spend-amount MARKET order
    price: object | None = None
    time_in_force: str | None = None
    actor: str = "user"
    quote_order_qty: object | None = None
    stop_price: object | None = None  # STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT only


@dataclass(frozen=True)
class PlaceOrderList(Command):
    """An OCO order list: a LIMIT_MAKER take-profit leg at `price` and a STOP_LOSS_LIMIT leg
    (`stop_price`, `stop_limit_price`), one on each side of the market; the exchange
    cancels one leg when the other starts to execute."""

    account_id: UUID
    client_order_id: str
    symbol: str
    side: str
    quantity: object
    price: object
    stop_price: object
    stop_limit_price: object
    stop_limit_time_in_force: str | None = None
    list_type: str = "OCO"
    actor: str = "user"


@dataclass(frozen=True)
class RequestCancel(Command):
    account_id: UUID
    order_id: UUID
    actor: str = "user"


@dataclass(frozen=True)
class RecordSubmission(Command):
    order_id: UUID
    actor: str = "worker"


@dataclass(frozen=True)
class RecordAcceptance(Command):
    order_id: UUID
    exchange_order_id: str
    actor: str = "worker"


@dataclass(frozen=True)
class RecordFill(Command):
    order_id: UUID
    trade_id: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str | None
    is_maker: bool = False
    actor: str = "worker"


@dataclass(frozen=True)
class RecordStopTrigger(Command):
    """The exchange reports a stop order working: its stopPrice was reached."""

    order_id: UUID
    actor: str = "worker"


@dataclass(frozen=True)
class RecordExecutedQuantity(Command):
    """The exchange's final executed quantity of a spend-amount order."""

    order_id: UUID
    quantity: Decimal
    actor: str = "worker"


@dataclass(frozen=True)
class RecordRejection(Command):
    order_id: UUID
    code: str
    message: str
    actor: str = "worker"


@dataclass(frozen=True)
class RecordCancelRejection(Command):
    order_id: UUID
    code: str
    message: str
    actor: str = "worker"


@dataclass(frozen=True)
class RecordCancellation(Command):
    order_id: UUID
    reason: str = ""
    actor: str = "worker"


@dataclass(frozen=True)
class RecordExpiry(Command):
    order_id: UUID
    reason: str = ""
    actor: str = "worker"


@dataclass(frozen=True)
class RecordSendRefusal(Command):
    """The exchange refused a send before executing it (429, 418, -1021): send it later."""

    order_id: UUID
    code: str
    message: str
    actor: str = "worker"


@dataclass(frozen=True)
class RecordOutcomeUnknown(Command):
    """A send got no answer and the exchange does not show the order (yet)."""

    order_id: UUID
    sent_at: datetime
    reason: str
    actor: str = "worker"
