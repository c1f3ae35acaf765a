"""The ports the write side needs; adapters/ implements them."""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from domain.account import mask_api_key
from domain.symbols import SymbolRules


@dataclass(frozen=True)
class ExchangeCredentials:
    """Decrypted keys, made just in time for one exchange call and never logged."""

    api_key: str
    secret_key: str
    environment: str

    def __repr__(self) -> str:
        return f"ExchangeCredentials(api_key={mask_api_key(self.api_key)!r}, secret_key='***')"

    @property
    def digest(self) -> str:
        """Name this key pair without revealing it (which keys a refusal was about)."""
        return hashlib.sha256(f"{self.api_key}\0{self.secret_key}".encode()).hexdigest()


class SymbolCatalog(Protocol):
    """Trading rules and a reference price per symbol."""

    def rules(self, symbol: str) -> SymbolRules | None: ...

    def reference_price(self, symbol: str) -> Decimal | None: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class SecretCipher(Protocol):
    """Authenticated encryption with a key ring: the key id travels with each ciphertext."""

    @property
    def current_key_id(self) -> str: ...

    def encrypt(self, plaintext: str, associated_data: str) -> tuple[str, str]:
        """Return (ciphertext, key id)."""
        ...

    def decrypt(self, ciphertext: str, key_id: str, associated_data: str) -> str: ...


# ---- the exchange port (the execution process manager's only way out) -------------------


class ExchangeOrderStatus(StrEnum):
    """An order's status as an exchange reports it, in our words (adapters map theirs)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class ExchangeFill:
    """One execution (trade) of an order on the exchange."""

    trade_id: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str | None  # None: no commission charged (Binance's N = null)
    is_maker: bool = False


@dataclass(frozen=True)
class ExchangeOrderReport:
    """What the exchange says about one order: its status and the fills it knows of."""

    exchange_order_id: str
    client_order_id: str
    symbol: str
    status: ExchangeOrderStatus
    cumulative_quantity: Decimal
    cumulative_quote: Decimal
    # The trades this report carries: all of them from a submit or query, the latest one
    # from a stream event. `cumulative_quantity` tells whether any are missing.
    fills: tuple[ExchangeFill, ...] = ()
    # False while a stop order waits for its stopPrice (Binance's isWorking / `w`); a
    # stop order reported open and working has triggered.
    working: bool = True


@dataclass(frozen=True)
class ExchangeOrderRequest:
    """A new order as sent to the exchange."""

    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str | None
    client_order_id: str
    # A spend-amount MARKET order: sent as quoteOrderQty instead of quantity.
    quote_order_qty: Decimal | None = None
    # STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT: sent as stopPrice.
    stop_price: Decimal | None = None


@dataclass(frozen=True)
class ExchangeOrderListRequest:
    """An OCO order list as sent to the exchange: both legs in one request, the stop-loss
    leg first (the adapter places each above or below the market by the side)."""

    symbol: str
    side: str
    quantity: Decimal
    list_client_order_id: str
    legs: tuple[ExchangeOrderRequest, ExchangeOrderRequest]


@dataclass(frozen=True)
class ExchangeOrderHistory:
    """What the exchange lists for one symbol (allOrders, myTrades) from a point on: the
    evidence that an order is, or is not, on the exchange."""

    client_order_ids: frozenset[str]
    order_ids: frozenset[str]
    # The order id of every trade listed: a trade of an order missing from the order list
    # means the lists disagree (one of them lags), so they prove nothing.
    trade_order_ids: frozenset[str]
    # False when a page limit cut the listing short.
    complete: bool = True

    @property
    def consistent(self) -> bool:
        """Tell whether every trade listed belongs to an order listed."""
        return self.trade_order_ids <= self.order_ids


class ExchangeGateway(Protocol):
    """The exchange, seen from the execution process manager.

    Raises domain.errors.ExchangeRejected when the exchange refused a request (nothing
    happened), ExchangeOrderUnknown when it knows no such order, and ExchangeUnavailable when
    the outcome is unknown (timeout, 5xx, connection lost after sending).
    """

    @property
    def request_validity_seconds(self) -> float:
        """How long after being sent a lost request could still be executed (recvWindow)."""
        ...

    @property
    def unknown_outcome_window_seconds(self) -> float:
        """How long after it left a request whose answer was lost may still be executed:
        the exchange's own backend timeout, our read timeout and recvWindow, added up."""
        ...

    def order_delay(self, credentials: ExchangeCredentials) -> float:
        """Return the seconds until a new order of these keys may be sent under the rate
        limits (0: it may go now, and its slot is taken)."""
        ...

    def submit_order_list(
        self, credentials: ExchangeCredentials, request: ExchangeOrderListRequest
    ) -> list[ExchangeOrderReport]: ...

    def submit_order(
        self, credentials: ExchangeCredentials, request: ExchangeOrderRequest
    ) -> ExchangeOrderReport: ...

    def order_history(
        self, credentials: ExchangeCredentials, symbol: str, *, since: float | None = None,
        from_order_id: str | None = None,
    ) -> ExchangeOrderHistory:
        """List the symbol's orders and trades from `since` (epoch seconds) or from the
        exchange order id `from_order_id` on."""
        ...

    def cancel_order(
        self, credentials: ExchangeCredentials, symbol: str, client_order_id: str
    ) -> ExchangeOrderReport: ...

    def query_order(
        self, credentials: ExchangeCredentials, symbol: str, client_order_id: str
    ) -> ExchangeOrderReport | None: ...

    def open_orders(self, credentials: ExchangeCredentials) -> list[ExchangeOrderReport]: ...


class CredentialsProvider(Protocol):
    """Decrypted exchange keys of an account, just in time; ExchangeKeysMissing if none."""

    def credentials_for(self, account_id: UUID) -> ExchangeCredentials: ...


class OrderLocks(Protocol):
    """Mutual exclusion per order, so one order is driven by one thread (or process) at once."""

    def hold(self, order_id: UUID) -> AbstractContextManager[None]: ...
