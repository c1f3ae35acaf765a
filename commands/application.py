"""The write-side application: one handler per command, aggregates saved through eventsourcing.

Concurrency: every save is optimistic (a version may be written once). PlaceOrder and
RegisterAccount derive their aggregate ids deterministically, so a duplicate collides at
version 1 and is answered with the existing aggregate. Exchange reports reload and retry
when they lose a race with another writer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.persistence import IntegrityError

from commands.group_commit import GroupCommit
from commands.messages import (
    ChangePassword,
    Command,
    ConnectExchangeKeys,
    PlaceOrder,
    PlaceOrderList,
    RecordAcceptance,
    RecordCancellation,
    RecordCancelRejection,
    RecordExchangeKeysRejection,
    RecordExecutedQuantity,
    RecordExpiry,
    RecordFill,
    RecordOutcomeUnknown,
    RecordRejection,
    RecordSendRefusal,
    RecordStopTrigger,
    RecordSubmission,
    ReencryptExchangeKeys,
    RegisterAccount,
    RequestCancel,
    RevokeExchangeKeys,
)
from commands.ports import ExchangeCredentials, PasswordHasher, SecretCipher, SymbolCatalog
from domain.account import Account, account_id_for, mask_api_key, normalize_email
from domain.errors import (
    AccountNotFound,
    AuthenticationFailed,
    ClientOrderIdReused,
    ConcurrencyConflict,
    EmailAlreadyRegistered,
    ExchangeKeysMissing,
    OrderNotFound,
    UnknownSymbol,
    ValidationFailed,
)
from domain.order import LIST_LEG_SUFFIXES, Order, order_id_for
from domain.symbols import SymbolRules
from domain.values import OrderType, Side, TimeInForce, parse_enum, to_decimal

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_CLIENT_ORDER_ID = 36
# Binance's newClientOrderId rule; str.isalnum() would let any Unicode letter through.
CLIENT_ORDER_ID = re.compile(r"[a-zA-Z0-9_-]{1,36}")
RETRIES = 8
GROUP_COMMIT_MAX = 100
A = TypeVar("A")


ReportCommand = (
    RecordSubmission | RecordAcceptance | RecordFill | RecordRejection | RecordCancelRejection
    | RecordCancellation | RecordExpiry | RecordSendRefusal | RecordOutcomeUnknown
    | RecordExecutedQuantity | RecordStopTrigger
)
REPORT_COMMANDS: tuple[type[Command], ...] = (
    RecordSubmission, RecordAcceptance, RecordFill, RecordRejection, RecordCancelRejection,
    RecordCancellation, RecordExpiry, RecordSendRefusal, RecordOutcomeUnknown,
    RecordExecutedQuantity, RecordStopTrigger,
)


def apply_report(order: Order, command: Command) -> None:
    """Apply an exchange-report (Record*) command to a loaded order.

    The one mapping from report commands to aggregate calls: the handlers below use it, and
    so does the execution worker when it records a whole exchange answer in one save.
    """
    if isinstance(command, RecordSubmission):
        order.submit(command.actor)
    elif isinstance(command, RecordAcceptance):
        order.accept(command.exchange_order_id, command.actor)
    elif isinstance(command, RecordFill):
        order.fill(trade_id=command.trade_id, price=Decimal(command.price),
                   quantity=Decimal(command.quantity), commission=Decimal(command.commission),
                   commission_asset=command.commission_asset, is_maker=command.is_maker,
                   actor=command.actor)
    elif isinstance(command, RecordStopTrigger):
        order.trigger(command.actor)
    elif isinstance(command, RecordExecutedQuantity):
        order.fix_quantity(Decimal(command.quantity), command.actor)
    elif isinstance(command, RecordRejection):
        order.reject(command.code, command.message, command.actor)
    elif isinstance(command, RecordCancelRejection):
        order.reject_cancel(command.code, command.message, command.actor)
    elif isinstance(command, RecordCancellation):
        order.cancel(command.actor, command.reason)
    elif isinstance(command, RecordExpiry):
        order.expire(command.actor, command.reason)
    elif isinstance(command, RecordSendRefusal):
        order.refuse_send(command.code, command.message, command.actor)
    elif isinstance(command, RecordOutcomeUnknown):
        order.mark_outcome_unknown(command.sent_at, command.reason, command.actor)
    else:
        raise TypeError(f"not an exchange report command: {type(command).__name__}")


class TradingApplication(Application[UUID]):
    """Order and Account aggregates, and the command handlers that change them."""

    name = "tradeledger"
    group_commit = True  # save concurrent new orders in one transaction (see _save_new_order)
    snapshotting_intervals = {Order: 25, Account: 25}

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        symbols: SymbolCatalog,
        hasher: PasswordHasher,
        cipher: SecretCipher,
    ) -> None:
        super().__init__(env=env)
        self.symbols = symbols
        self.hasher = hasher
        self._dummy: str | None = None
        self.cipher = cipher
        # One leader: concurrent placements are many small saves, and a duplicate order id
        # is the one failure that must reach only its own caller.
        self._group = GroupCommit(self.save, max_batch=GROUP_COMMIT_MAX,
                                  alone_on=(IntegrityError,))
        self._handlers: dict[type[Command], Callable[[Any], Any]] = {
            RegisterAccount: self.register_account,
            ConnectExchangeKeys: self.connect_exchange_keys,
            RevokeExchangeKeys: self.revoke_exchange_keys,
            ReencryptExchangeKeys: self.reencrypt_exchange_keys,
            RecordExchangeKeysRejection: self.record_keys_rejection,
            PlaceOrder: self.place_order,
            PlaceOrderList: self.place_order_list,
            RequestCancel: self.request_cancel,
            ChangePassword: self.change_password,
            # Exchange reports share one handler: apply_report maps each to its aggregate call.
            **{report: self.record_report for report in REPORT_COMMANDS},
        }

    def handle(self, command: Command) -> Any:
        """Dispatch a command to its one handler."""
        return self._handlers[type(command)](command)

    # ---- accounts ------------------------------------------------------------------
    def register_account(self, cmd: RegisterAccount) -> UUID:
        email = normalize_email(cmd.email)
        if not MIN_PASSWORD_LENGTH <= len(cmd.password) <= MAX_PASSWORD_LENGTH:
            raise ValidationFailed(
                f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
                field="password",
            )
        account = Account(email=email, password_hash=self.hasher.hash(cmd.password))
        try:
            self.save(account)
        except IntegrityError:
            raise EmailAlreadyRegistered(
                f"{email} is already registered", field="email"
            ) from None
        return account.id

    def authenticate(self, email: str, password: str) -> UUID:
        """Return the account id for good credentials; raise AuthenticationFailed otherwise."""
        try:
            account = self.get_account(account_id_for(email))
        except (AccountNotFound, ValidationFailed):
            # Spend the same time as a real check (one verify, against a hash made once)
            # so timing does not reveal whether the email is registered.
            self.hasher.verify(self._dummy_hash(), password)
            raise AuthenticationFailed("email or password is wrong") from None
        if not self.hasher.verify(account.password_hash, password):
            raise AuthenticationFailed("email or password is wrong")
        return account.id

    def _dummy_hash(self) -> str:
        """Return a hash of no one's password, made once per application."""
        if self._dummy is None:
            self._dummy = self.hasher.hash("timing-equaliser")
        return self._dummy

    def change_password(self, cmd: ChangePassword) -> None:
        """Replace the password after checking the current one."""
        account = self.get_account(cmd.account_id)
        if not self.hasher.verify(account.password_hash, cmd.current_password):
            raise AuthenticationFailed("the current password is wrong")
        if not MIN_PASSWORD_LENGTH <= len(cmd.new_password) <= MAX_PASSWORD_LENGTH:
            raise ValidationFailed(
                f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
                field="newPassword",
            )
        account.change_password(self.hasher.hash(cmd.new_password))
        self.save(account)

    def get_account(self, account_id: UUID) -> Account:
        try:
            account: object = self.repository.get(account_id)
        except AggregateNotFoundError:
            raise AccountNotFound(f"account {account_id} not found") from None
        if not isinstance(account, Account):
            raise AccountNotFound(f"account {account_id} not found")
        return account

    def connect_exchange_keys(self, cmd: ConnectExchangeKeys) -> None:
        api_key, secret = cmd.api_key.strip(), cmd.secret_key.strip()
        if not api_key or not secret:
            raise ValidationFailed("apiKey and secretKey are both required", field="apiKey")
        if len(api_key) > 256 or len(secret) > 256:
            raise ValidationFailed("apiKey and secretKey must be at most 256 characters")

        def change(account: Account) -> None:
            api_ct, key_id = self.cipher.encrypt(api_key, f"{account.id}:api_key")
            secret_ct, _ = self.cipher.encrypt(secret, f"{account.id}:secret_key")
            account.connect_exchange_keys(
                api_ct, secret_ct, key_id, mask_api_key(api_key), cmd.environment
            )

        self._update(cmd.account_id, self.get_account, change)

    def revoke_exchange_keys(self, cmd: RevokeExchangeKeys) -> None:
        self._update(cmd.account_id, self.get_account, lambda a: a.revoke_exchange_keys())

    def reencrypt_exchange_keys(self, cmd: ReencryptExchangeKeys) -> bool:
        """Re-encrypt under the current master key; return whether anything changed."""
        changed = False

        def change(account: Account) -> None:
            nonlocal changed
            if not account.has_exchange_keys or account.key_id == self.cipher.current_key_id:
                return
            creds = self._decrypt(account)
            api_ct, key_id = self.cipher.encrypt(creds.api_key, f"{account.id}:api_key")
            secret_ct, _ = self.cipher.encrypt(creds.secret_key, f"{account.id}:secret_key")
            account.reencrypt_exchange_keys(api_ct, secret_ct, key_id)
            changed = True

        self._update(cmd.account_id, self.get_account, change)
        return changed

    def record_keys_rejection(self, cmd: RecordExchangeKeysRejection) -> bool:
        """Mark the account's keys rejected if they are still the refused ones; return that."""
        recorded = False

        def change(account: Account) -> None:
            nonlocal recorded
            if not account.has_exchange_keys or self._decrypt(account).digest != cmd.keys_digest:
                return  # the keys changed since: the refusal was about the old ones
            recorded = account.reject_exchange_keys(cmd.code, cmd.reason[:300])

        self._update(cmd.account_id, self.get_account, change)
        return recorded

    def exchange_credentials(self, account_id: UUID) -> ExchangeCredentials:
        """Decrypt an account's exchange keys for immediate use."""
        account = self.get_account(account_id)
        if not account.has_exchange_keys:
            raise ExchangeKeysMissing(f"account {account_id} has no exchange keys connected")
        return self._decrypt(account)

    def _decrypt(self, account: Account) -> ExchangeCredentials:
        assert account.api_key_ciphertext and account.secret_ciphertext and account.key_id
        return ExchangeCredentials(
            api_key=self.cipher.decrypt(
                account.api_key_ciphertext, account.key_id, f"{account.id}:api_key"
            ),
            secret_key=self.cipher.decrypt(
                account.secret_ciphertext, account.key_id, f"{account.id}:secret_key"
            ),
            environment=account.exchange_environment or "paper",
        )

    # ---- orders --------------------------------------------------------------------
    def place_order(self, cmd: PlaceOrder) -> UUID:
        """Validate and place an order; the same (account, clientOrderId) yields the same id."""
        client_order_id = _client_order_id(cmd.client_order_id, MAX_CLIENT_ORDER_ID)
        symbol, rules = self._symbol_rules(cmd.symbol)
        side = parse_enum(Side, cmd.side, "side")
        order_type = parse_enum(OrderType, cmd.order_type, "type")
        if order_type is OrderType.LIMIT_MAKER:
            raise ValidationFailed(
                "LIMIT_MAKER is the take-profit leg of an OCO order list: place it with "
                "POST /api/trading/order-lists", field="type")
        if (cmd.quantity is None) == (cmd.quote_order_qty is None):
            raise ValidationFailed(
                "give exactly one of quantity (how much to buy or sell) and quoteOrderQty "
                "(how much to spend or receive, MARKET orders only)", field="quantity")
        quote = None if cmd.quote_order_qty is None else to_decimal(cmd.quote_order_qty,
                                                                    "quoteOrderQty")
        quantity = Decimal(0) if quote is not None else to_decimal(cmd.quantity, "quantity")
        price = None if cmd.price is None else to_decimal(cmd.price, "price")
        stop = None if cmd.stop_price is None else to_decimal(cmd.stop_price, "stopPrice")
        if order_type.has_time_in_force:
            tif = parse_enum(TimeInForce, cmd.time_in_force or "GTC", "timeInForce")
        elif cmd.time_in_force is not None:
            raise ValidationFailed("timeInForce applies to orders with a price only (LIMIT, "
                                   "STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT)", field="timeInForce")
        else:
            tif = None
        reference = self.symbols.reference_price(symbol)
        rules.check_stop(order_type, side, stop, reference)
        if quote is not None:
            rules.check_quote(order_type, quote, reference, side)
            if price is not None:
                raise ValidationFailed("price must not be given for MARKET orders",
                                       field="price")
        else:
            rules.check(order_type, quantity, price, reference, side)

        order_id = order_id_for(cmd.account_id, client_order_id)
        order = Order(
            account_id=cmd.account_id,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side.value,
            order_type=order_type.value,
            quantity=quantity,
            price=price,
            time_in_force=tif.value if tif else None,
            actor=cmd.actor if cmd.actor != "user" else f"user:{cmd.account_id}",
            quote_order_qty=quote,
            stop_price=stop,
        )
        self._save_new_orders(client_order_id, order)
        return order_id

    def place_order_list(self, cmd: PlaceOrderList) -> tuple[UUID, list[UUID]]:
        """Validate and place an OCO order list as two orders saved together; return the
        list's id (its stop-loss leg's order id) and the legs' ids (stop-loss leg first).

        The same (account, clientOrderId) yields the same list, as for orders.
        """
        if str(cmd.list_type).upper() != "OCO":
            raise ValidationFailed(f"type must be OCO, got {cmd.list_type!r}", field="type")
        # The legs' clientOrderIds are the list's plus "-sl" / "-tp", within Binance's 36.
        list_cid = _client_order_id(cmd.client_order_id, MAX_CLIENT_ORDER_ID - 3)
        symbol, rules = self._symbol_rules(cmd.symbol)
        side = parse_enum(Side, cmd.side, "side")
        quantity = to_decimal(cmd.quantity, "quantity")
        price = to_decimal(cmd.price, "price")
        stop = to_decimal(cmd.stop_price, "stopPrice")
        stop_limit = to_decimal(cmd.stop_limit_price, "stopLimitPrice")
        tif = parse_enum(TimeInForce, cmd.stop_limit_time_in_force or "GTC",
                         "stopLimitTimeInForce")
        reference = self.symbols.reference_price(symbol)
        rules.check_oco(side, quantity, price, stop, stop_limit, reference)
        actor = cmd.actor if cmd.actor != "user" else f"user:{cmd.account_id}"
        list_id = order_id_for(cmd.account_id, list_cid + LIST_LEG_SUFFIXES[0])
        legs = [Order(
            account_id=cmd.account_id, client_order_id=list_cid + suffix, symbol=symbol,
            side=side.value, order_type=leg_type.value, quantity=quantity, price=leg_price,
            time_in_force=leg_tif, actor=actor, stop_price=leg_stop, order_list_id=list_id,
            list_client_order_id=list_cid)
            for suffix, leg_type, leg_price, leg_stop, leg_tif in (
                (LIST_LEG_SUFFIXES[0], OrderType.STOP_LOSS_LIMIT, stop_limit, stop, tif.value),
                (LIST_LEG_SUFFIXES[1], OrderType.LIMIT_MAKER, price, None, None))]
        self._save_new_orders(list_cid, *legs)
        return list_id, [leg.id for leg in legs]

    def _symbol_rules(self, symbol: object) -> tuple[str, SymbolRules]:
        """Return a symbol's normal form and its rules; an unknown symbol is a 422."""
        name = str(symbol).strip().upper()
        rules = self.symbols.rules(name)
        if rules is None:
            raise UnknownSymbol(f"unknown symbol {symbol!r}", field="symbol")
        return name, rules

    def _save_new_orders(self, client_order_id: str, *orders: Order) -> None:
        """Save new orders together; when their ids exist already (the same clientOrderId
        again), succeed if they are the same orders, else raise ClientOrderIdReused."""
        try:
            self._save_new_order(*orders)
        except IntegrityError:
            for order in orders:
                if not _same_order(self.get_order(order.id), order):
                    raise ClientOrderIdReused(
                        f"clientOrderId {client_order_id!r} already names a different order",
                        field="clientOrderId", orderId=str(order.id)) from None

    def get_order(self, order_id: UUID, version: int | None = None) -> Order:
        try:
            order: object = self.repository.get(order_id, version=version)
        except AggregateNotFoundError:
            raise OrderNotFound(f"order {order_id} not found") from None
        if not isinstance(order, Order):
            raise OrderNotFound(f"order {order_id} not found")
        return order

    def get_young_order(self, order_id: UUID) -> Order:
        """Load an order by folding all its events, without asking for a snapshot first.

        One query instead of two (snapshot, then events since it). For an order with fewer
        events than the snapshotting interval -- every order the execution worker sees on
        its hot path -- there is no snapshot to find, so this is the same aggregate for
        half the round trips; for an older order it is still right, only slower.
        """
        events = self.events.get(order_id)
        order: object = project_aggregate(None, events)
        if not isinstance(order, Order):
            raise OrderNotFound(f"order {order_id} not found")
        return order

    def get_order_for(self, account_id: UUID, order_id: UUID) -> Order:
        """Load an order owned by `account_id`; another account's order is 'not found'."""
        order = self.get_order(order_id)
        if order.account_id != account_id:
            raise OrderNotFound(f"order {order_id} not found")
        return order

    def request_cancel(self, cmd: RequestCancel) -> None:
        def load(order_id: UUID) -> Order:
            return self.get_order_for(cmd.account_id, order_id)

        actor = cmd.actor if cmd.actor != "user" else f"user:{cmd.account_id}"
        self._update(cmd.order_id, load, lambda o: o.request_cancel(actor))

    def record_report(self, cmd: ReportCommand) -> None:
        """Apply one exchange-report command to its order, retrying on a concurrent write."""
        self._update(cmd.order_id, self.get_order, lambda order: apply_report(order, cmd))

    # ---- plumbing ------------------------------------------------------------------
    def _save_new_order(self, *orders: Order) -> None:
        """Save a new order, sharing one transaction with orders placed at the same moment.

        Group commit: the first caller becomes the leader and saves everything queued while
        the previous transaction ran, so under load many orders share one round trip and
        one fsync, and at low load an order is saved at once, with no timer to wait for.
        Raises IntegrityError when an order with this id already exists.
        """
        if not self.group_commit:
            self.save(*orders)
            return
        # Collect the events now: a failed save() would drain them from the aggregate, and
        # the one-by-one retry after a failed shared save needs them.
        self._group.commit([e for order in orders for e in order.collect_events()])

    def _update(
        self, aggregate_id: UUID, load: Callable[[UUID], A], change: Callable[[A], Any]
    ) -> None:
        """Load, change and save, retrying when another writer saved the aggregate first."""
        for attempt in range(RETRIES):
            aggregate = load(aggregate_id)
            change(aggregate)
            try:
                self.save(aggregate)  # type: ignore[arg-type]
                return
            except IntegrityError:
                log.debug("retrying %s after a concurrent write (%d)", aggregate_id, attempt)
        raise ConcurrencyConflict(
            f"{aggregate_id} kept changing under this command; try again",
            aggregateId=str(aggregate_id),
        )


def _client_order_id(value: str, longest: int) -> str:
    """Check a clientOrderId by Binance's rule (1 to `longest` of [a-zA-Z0-9_-])."""
    client_order_id = value.strip()
    if not client_order_id or len(client_order_id) > longest:
        raise ValidationFailed(f"clientOrderId must be 1 to {longest} characters",
                               field="clientOrderId")
    if not CLIENT_ORDER_ID.fullmatch(client_order_id):
        raise ValidationFailed(
            "clientOrderId may hold only ASCII letters, digits, '-' and '_' (as Binance)",
            field="clientOrderId")
    return client_order_id


def _same_order(existing: Order, order: Order) -> bool:
    """Tell whether a stored order is the one `order` would place (a retried placement)."""
    return (
        existing.symbol == order.symbol
        and existing.side == order.side
        and existing.order_type == order.order_type
        # A spend-amount order's quantity is fixed by the exchange later.
        and (existing.quantity == order.quantity or order.quote_order_qty is not None)
        and existing.price == order.price
        and existing.quote_order_qty == order.quote_order_qty
        and existing.stop_price == order.stop_price
        and existing.order_list_id == order.order_list_id
    )
