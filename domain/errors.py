"""Domain errors: one small hierarchy, each with a stable machine-readable code.

The API maps the classes to HTTP status codes; the messages are written for traders.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every business-rule failure."""

    code: str = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


class ValidationFailed(DomainError):
    """A command's input breaks a rule (HTTP 422)."""

    code = "validation_failed"


class UnknownSymbol(ValidationFailed):
    """The symbol is not traded."""

    code = "unknown_symbol"


class InvalidQuantity(ValidationFailed):
    """Quantity is not positive, off the step size or outside the lot limits."""

    code = "invalid_quantity"


class InvalidPrice(ValidationFailed):
    """Price is missing, off the tick size or outside the price limits."""

    code = "invalid_price"


class StopWouldTrigger(InvalidPrice):
    """A stop order's stopPrice is already reached: it would trigger on arrival."""

    code = "stop_would_trigger"


class NotionalTooSmall(ValidationFailed):
    """Quantity times price is below the symbol's minimum notional."""

    code = "notional_too_small"


class SymbolNotTrading(ValidationFailed):
    """The exchange does not take new orders on the symbol now (status BREAK, HALT, ...)."""

    code = "symbol_not_trading"


class TooManyOpenOrders(ValidationFailed):
    """The account already has the exchange's maximum of open orders on the symbol."""

    code = "too_many_open_orders"


class NothingToClose(ValidationFailed):
    """A position close was asked for where there is no open position."""

    code = "nothing_to_close"


class ExchangeKeysRejected(ValidationFailed):
    """The exchange refused the keys given (bad key, signature, IP or permissions)."""

    code = "exchange_keys_rejected"


class NotFound(DomainError):
    """The thing asked for does not exist for this caller (HTTP 404)."""

    code = "not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class AccountNotFound(NotFound):
    code = "account_not_found"


class Conflict(DomainError):
    """The command contradicts the current state (HTTP 409)."""

    code = "conflict"


class IllegalTransition(Conflict):
    """The order's lifecycle does not allow this move from its current status."""

    code = "illegal_transition"


class Overfill(Conflict):
    """A fill would take the filled quantity above the order quantity."""

    code = "overfill"


class ClientOrderIdReused(Conflict):
    """The clientOrderId already names a different order of this account."""

    code = "client_order_id_reused"


class EmailAlreadyRegistered(Conflict):
    code = "email_already_registered"


class ExchangeKeysMissing(Conflict):
    """The account has no exchange keys connected."""

    code = "exchange_keys_missing"


class ExchangeKeysWrongEnvironment(ExchangeKeysMissing):
    """The account's keys belong to another exchange environment than the one in use."""

    code = "exchange_keys_wrong_environment"


class ConcurrencyConflict(Conflict):
    """Another writer changed the aggregate first and retries ran out."""

    code = "concurrency_conflict"


class AuthenticationFailed(DomainError):
    """Bad credentials (HTTP 401)."""

    code = "authentication_failed"


class ExchangeError(DomainError):
    """The exchange did not do what was asked (raised by exchange gateways)."""

    code = "exchange_error"


class ExchangeRejected(ExchangeError):
    """The exchange refused the request; nothing happened there.

    `exchange_code` is the exchange's own code (Binance: -2010...). `transient` marks refusals
    that may succeed when sent again later (rate limits, clock drift): still nothing happened.
    """

    code = "exchange_rejected"

    def __init__(self, exchange_code: int | str, message: str, *, transient: bool = False,
                 **details: Any) -> None:
        super().__init__(message, exchangeCode=exchange_code, **details)
        self.exchange_code = exchange_code
        self.transient = transient


class ExchangeOrderUnknown(ExchangeRejected):
    """The exchange knows no (open) order by that id (Binance -2011 on cancel, -2013)."""

    code = "exchange_order_unknown"


class ExchangeUnavailable(ExchangeError):
    """No answer (timeout, 5xx, connection lost): the outcome of the request is unknown.

    `maybe_sent` is False only when the request provably never left (connection refused).
    """

    code = "exchange_unavailable"

    def __init__(self, message: str, *, maybe_sent: bool = True, **details: Any) -> None:
        super().__init__(message, **details)
        self.maybe_sent = maybe_sent


class ExchangeDuplicateOrder(ExchangeRejected):
    """The exchange already has an open order with this clientOrderId: it got an earlier send."""

    code = "exchange_duplicate_order"


class ExchangeThrottled(ExchangeRejected):
    """A rate limit stops the request (Binance 429 / 418, or our own budget): nothing
    happened, and nothing may be sent to that exchange for `retry_after` seconds."""

    code = "exchange_throttled"

    def __init__(self, exchange_code: int | str, message: str, *, retry_after: float,
                 **details: Any) -> None:
        super().__init__(exchange_code, message, transient=True, retryAfter=retry_after,
                         **details)
        self.retry_after = retry_after
