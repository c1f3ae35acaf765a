"""PlaceOrder and the account commands against the in-memory event store."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from commands.messages import (
    ConnectExchangeKeys,
    PlaceOrder,
    RecordFill,
    RegisterAccount,
    RequestCancel,
    RevokeExchangeKeys,
)
from domain.errors import (
    AuthenticationFailed,
    ClientOrderIdReused,
    EmailAlreadyRegistered,
    IllegalTransition,
    InvalidPrice,
    InvalidQuantity,
    NotionalTooSmall,
    OrderNotFound,
    UnknownSymbol,
    ValidationFailed,
)
from domain.values import OrderStatus, to_decimal
from tests.unit.fakes import make_app


def limit(account_id, cid="c-1", **kw):  # type: ignore[no-untyped-def]
    args = dict(account_id=account_id, client_order_id=cid, symbol="BTCUSDT", side="BUY",
                order_type="LIMIT", quantity="0.01", price="50000")
    args.update(kw)
    return PlaceOrder(**args)


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    return make_app(BTCUSDT="96500")


@pytest.fixture
def account(app):  # type: ignore[no-untyped-def]
    return app.handle(RegisterAccount(email="Trader@Example.com ", password="correct horse"))


def test_same_client_order_id_yields_the_same_order_and_one_event(app, account) -> None:
    first = app.handle(limit(account))
    second = app.handle(limit(account))
    assert first == second
    assert len(list(app.events.get(first))) == 1


def test_same_client_order_id_with_other_parameters_is_a_conflict(app, account) -> None:
    app.handle(limit(account))
    with pytest.raises(ClientOrderIdReused):
        app.handle(limit(account, quantity="0.02"))


def test_same_client_order_id_on_two_accounts_gives_two_orders(app, account) -> None:
    other = app.handle(RegisterAccount(email="other@example.com", password="0123456789"))
    assert app.handle(limit(account)) != app.handle(limit(other))


@pytest.mark.parametrize("quantity,error", [
    ("0", InvalidQuantity), ("-1", InvalidQuantity), ("0.000001", InvalidQuantity),
    ("0.000015", InvalidQuantity), ("abc", ValidationFailed), ("NaN", ValidationFailed),
    ("Infinity", ValidationFailed), (True, ValidationFailed), ("10000", InvalidQuantity),
])
def test_bad_quantities_are_refused_with_named_errors(app, account, quantity, error) -> None:
    with pytest.raises(error):
        app.handle(limit(account, quantity=quantity))


def test_float_input_is_read_as_the_decimal_the_user_typed(app, account) -> None:
    # 0.1 + 0.2 as floats is 0.30000000000000004; as the typed decimals it is on the step.
    assert to_decimal(0.1, "q") + to_decimal(0.2, "q") == Decimal("0.3")
    order_id = app.handle(limit(account, symbol="ADAUSDT", quantity=0.3, price="20"))
    assert app.get_order(order_id).quantity == Decimal("0.3")
    # The float sum 0.1 + 0.2 is off the 0.1 step, so it must be refused, not rounded:
    with pytest.raises(InvalidQuantity, match=r"step size 0\.1"):
        app.handle(limit(account, cid="c-2", symbol="ADAUSDT", quantity="0.30000000000000004",
                         price="1"))


def test_quantity_on_step_multiples_is_accepted(app, account) -> None:
    for i, qty in enumerate(["0.00006", "0.00007", "1.23456", "0.10000"]):
        app.handle(limit(account, cid=f"s{i}", quantity=qty, price="96000"))


@pytest.mark.parametrize("price,error", [
    (None, InvalidPrice), ("50000.001", InvalidPrice), ("0", InvalidPrice), ("-5", InvalidPrice),
    ("2000000", InvalidPrice),
])
def test_bad_limit_prices_are_refused(app, account, price, error) -> None:
    with pytest.raises(error):
        app.handle(limit(account, price=price))


def test_tiny_notional_is_refused_for_limit_and_market(app, account) -> None:
    with pytest.raises(NotionalTooSmall, match="minimum notional 5"):
        app.handle(limit(account, quantity="0.00001", price="100"))
    with pytest.raises(NotionalTooSmall):
        app.handle(PlaceOrder(account_id=account, client_order_id="m", symbol="BTCUSDT",
                              side="SELL", order_type="MARKET", quantity="0.00002"))


def test_market_order_must_not_carry_a_price_and_limit_defaults_to_gtc(app, account) -> None:
    with pytest.raises(InvalidPrice):
        app.handle(PlaceOrder(account_id=account, client_order_id="m", symbol="BTCUSDT",
                              side="BUY", order_type="MARKET", quantity="0.01", price="1"))
    order = app.get_order(app.handle(limit(account)))
    assert order.time_in_force == "GTC" and order.status is OrderStatus.PENDING


def test_unknown_symbol_and_side_are_refused(app, account) -> None:
    with pytest.raises(UnknownSymbol):
        app.handle(limit(account, symbol="FOOBAR"))
    with pytest.raises(ValidationFailed, match="side must be one of BUY, SELL"):
        app.handle(limit(account, side="HOLD"))


def test_client_order_id_is_checked(app, account) -> None:
    for bad in ["", "x" * 37, "a b", "ümlaut!"]:
        with pytest.raises(ValidationFailed):
            app.handle(limit(account, cid=bad))


def test_cancel_of_another_accounts_order_is_not_found(app, account) -> None:
    order_id = app.handle(limit(account))
    with pytest.raises(OrderNotFound):
        app.handle(RequestCancel(account_id=uuid4(), order_id=order_id))
    app.handle(RequestCancel(account_id=account, order_id=order_id))
    assert app.get_order(order_id).status is OrderStatus.CANCEL_REQUESTED


def test_fill_after_cancel_is_an_illegal_transition(app, account) -> None:
    from commands.messages import RecordAcceptance, RecordCancellation

    order_id = app.handle(limit(account))
    app.handle(RecordAcceptance(order_id=order_id, exchange_order_id="1"))
    app.handle(RecordCancellation(order_id=order_id))
    with pytest.raises(IllegalTransition):
        app.handle(RecordFill(order_id=order_id, trade_id="t", price=Decimal("1"),
                              quantity=Decimal("0.01"), commission=Decimal(0),
                              commission_asset="USDT"))


def test_registration_normalizes_email_and_refuses_duplicates(app, account) -> None:
    assert app.authenticate("  TRADER@example.COM", "correct horse") == account
    with pytest.raises(EmailAlreadyRegistered):
        app.handle(RegisterAccount(email="trader@example.com", password="0123456789"))
    with pytest.raises(AuthenticationFailed):
        app.authenticate("trader@example.com", "wrong password")
    with pytest.raises(AuthenticationFailed):
        app.authenticate("nobody@example.com", "correct horse")
    with pytest.raises(ValidationFailed, match="password must be"):
        app.handle(RegisterAccount(email="short@example.com", password="short"))
    with pytest.raises(ValidationFailed, match="not a valid email"):
        app.handle(RegisterAccount(email="not-an-email", password="0123456789"))


def test_exchange_keys_are_stored_encrypted_and_revocable(app, account) -> None:
    app.handle(ConnectExchangeKeys(account_id=account, api_key="AKIA-public-key-1234",
                                   secret_key="very-secret-value"))
    acct = app.get_account(account)
    assert "very-secret-value" not in repr(acct.__dict__)
    assert acct.api_key_hint == "AKIA********1234"
    creds = app.exchange_credentials(account)
    assert creds.secret_key == "very-secret-value"
    assert "very-secret-value" not in repr(creds)
    app.handle(RevokeExchangeKeys(account_id=account))
    assert not app.get_account(account).has_exchange_keys
