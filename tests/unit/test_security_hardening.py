"""Issue 16: hostile numbers, placeholder secrets, key rings, command reprs, client order ids."""

from __future__ import annotations

import base64
import os
import time
import uuid
from decimal import Decimal

import pytest

from adapters.platform.crypto import ConfigurationError, check_jwt_secret, parse_key_ring
from commands.messages import ChangePassword, ConnectExchangeKeys, RegisterAccount
from domain.errors import ValidationFailed
from domain.symbols import SymbolRules, is_multiple
from domain.values import OrderType, to_decimal

RULES = SymbolRules(
    symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", step_size=Decimal("0.00001"),
    tick_size=Decimal("0.01"), min_qty=Decimal("0.00001"), max_qty=Decimal("9000"),
    min_price=Decimal("0.01"), max_price=Decimal("1000000"), min_notional=Decimal("5"))

HOSTILE = ["1e999999999", "1e-999999999", "-1e999999999", "9" * 200, "0." + "0" * 100 + "1",
           "1" + "0" * 60, "1E+5000", "0e-9999", "1." + "0" * 60, "\u00b2",
           "\u0661\u0662\u0663", "1_000", " 1 2 ",
           "0x10", "1e", "NaN", "sNaN", "-Infinity"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_numbers_are_refused_at_once_without_echo(text: str) -> None:
    start = time.process_time()
    with pytest.raises(ValidationFailed) as caught:
        value = to_decimal(text, "quantity")
        # Anything that parses must still be checkable in no time, and fail the rules.
        RULES.check(OrderType.LIMIT, value, Decimal("100"))
    assert time.process_time() - start < 0.5
    if len(text.strip()) > 3:
        assert text.strip() not in caught.value.message


def test_huge_json_integers_and_floats_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        to_decimal(10**5000, "quantity")
    with pytest.raises(ValidationFailed):
        to_decimal(float("inf"), "quantity")
    with pytest.raises(ValidationFailed):
        to_decimal(1e300, "quantity")


@pytest.mark.parametrize("text", ["0.001", "90000.00", "1e-5", "12345678.12345678", "-1",
                                  "0", "1E+3", ".5", "5.", 0.1, 3])
def test_ordinary_numbers_still_parse(text: object) -> None:
    assert to_decimal(text, "quantity") == Decimal(str(text))


def test_rule_messages_never_echo_the_users_number() -> None:
    for quantity in ("0.000001", "123456.789", "0.123456789"):
        with pytest.raises(ValidationFailed) as caught:
            RULES.check(OrderType.LIMIT, Decimal(quantity), Decimal("100"))
        assert quantity not in caught.value.message


def test_step_check_is_exact_past_28_significant_digits() -> None:
    # 28 significant digits round 1.0000000000000000000000000001 onto the grid of 1
    # in the default context; the check must see the remainder.
    assert not is_multiple(Decimal("12345678901234567890.00001"), Decimal("1"))
    assert not is_multiple(Decimal("1.000000000000000000000000001"), Decimal("1"))
    with pytest.raises(ValidationFailed):
        to_decimal("1.00000000000000000000000000001", "quantity")


def test_placeholder_and_low_entropy_jwt_secrets_are_refused() -> None:
    for secret in ("REPLACE_WITH_A_LONG_RANDOM_STRING", "a" * 64, "change-me-" * 4,
                   "0123456789" * 4, "abababababababababababababababab"):
        with pytest.raises(ConfigurationError, match="TRADELEDGER_JWT_SECRET"):
            check_jwt_secret(secret)
    check_jwt_secret(base64.urlsafe_b64encode(os.urandom(36)).decode())


def test_the_documented_example_secret_cannot_start_a_process(tmp_path: object) -> None:
    from pathlib import Path

    from adapters.platform.bootstrap import bootstrap
    from adapters.platform.settings import Settings

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    placeholder = next(line.split("=", 1)[1] for line in example.splitlines()
                       if line.startswith("TRADELEDGER_JWT_SECRET="))
    settings = Settings(_env_file=None, database_url="postgresql://nowhere.invalid/x",  # type: ignore[call-arg]
                        master_keys="k1:" + base64.b64encode(os.urandom(32)).decode(),
                        jwt_secret=placeholder, data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="TRADELEDGER_JWT_SECRET"):
        bootstrap(settings, "postgresql://nowhere.invalid/x")


def test_duplicate_master_key_ids_are_refused() -> None:
    one, two = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    with pytest.raises(ConfigurationError, match="twice"):
        parse_key_ring(f"k1:{one},k1:{two}")
    assert list(parse_key_ring(f"k2:{one},k1:{two}")) == ["k2", "k1"]


def test_commands_hide_passwords_and_secrets_in_their_repr() -> None:
    texts = [repr(RegisterAccount(email="a@example.com", password="pw-SECRET-1")),
             repr(ConnectExchangeKeys(account_id=uuid.uuid4(), api_key="AK-SECRET-2",
                                      secret_key="SK-SECRET-3")),
             repr(ChangePassword(account_id=uuid.uuid4(), current_password="old-SECRET-4",
                                 new_password="new-SECRET-5"))]
    assert "a@example.com" in texts[0]
    assert not any("SECRET" in text for text in texts), texts


def test_client_order_ids_follow_binances_rule() -> None:
    from commands.messages import PlaceOrder
    from tests.unit.fakes import make_app

    app = make_app()
    account = uuid.uuid4()
    cyrillic, fullwidth = "\u043e\u0440\u0434\u0435\u04401", "\uff46\uff55\uff4c\uff4c"
    for bad in (cyrillic, "a.b", "a b", "x" * 37, fullwidth):
        with pytest.raises(ValidationFailed, match="clientOrderId"):
            app.handle(PlaceOrder(account_id=account, client_order_id=bad, symbol="BTCUSDT",
                                  side="BUY", order_type="LIMIT", quantity="0.001",
                                  price="90000.00"))
    app.handle(PlaceOrder(account_id=account, client_order_id="Ok_id-1", symbol="BTCUSDT",
                          side="BUY", order_type="LIMIT", quantity="0.001", price="90000.00"))


SECRET_LINES = {
    "json secretKey": 'body {"apiKey": "AKV-SECRET-01", "secretKey": "SKV-SECRET-02"}',
    "python dict": "payload {'password': 'PWV-SECRET-03', 'refreshToken': 'RTV-SECRET-04'}",
    "access cookie": "Cookie: tl_access=eyJ.CKV-SECRET-05.sig; theme=dark",
    "refresh cookie": "Set-Cookie: tl_refresh=RCV-SECRET-06; HttpOnly",
    "basic auth": "Authorization: Basic QkFWLVNFQ1JFVC0wNzpwdw==",
    "bearer": "Authorization: Bearer eyJ.BRV-SECRET-08.sig",
    "database url": "connecting to postgresql://tl:DBV-SECRET-09@db:5432/tradeledger",
    "broker url": "sasl://user:KFV-SECRET-10@kafka:9092",
    "query string": "GET /api/stream?token=QSV-SECRET-11&x=1",
    "signature": "GET /api/v3/order?symbol=BTCUSDT&signature=SGV-SECRET-12",
}
MASKED = ["SECRET-0", "SECRET-1", "QkFWLVNFQ1JFVC0wNzpwdw"]


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("kind", sorted(SECRET_LINES))
def test_both_log_formats_mask_every_kind_of_secret(as_json: bool, kind: str) -> None:
    import io
    import json
    import logging

    from adapters.platform.logs import setup_logging

    setup_logging("INFO", as_json=as_json)
    handler = logging.getLogger().handlers[0]
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        logging.getLogger("probe").info("%s", SECRET_LINES[kind])
        try:
            raise ValueError(SECRET_LINES[kind])
        except ValueError:
            logging.getLogger("probe").exception("failed")
    finally:
        logging.getLogger().handlers.clear()
    written = stream.getvalue()
    assert written.strip()
    if as_json:
        for line in written.strip().splitlines():
            json.loads(line)  # still valid JSON after masking
    assert not any(marker in written for marker in MASKED), written



def test_the_dashboard_sends_a_strict_csp_that_allows_each_of_its_inline_scripts() -> None:
    import hashlib
    import re

    from dashboard.app import create_dash_app

    app = create_dash_app("http://api.internal:8000", "https://api.example.com")
    response = app.server.test_client().get("/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    script_src = directives["script-src"]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "https://api.example.com" in directives["connect-src"]
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    html = response.get_data(as_text=True)
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        if not body.strip() or "application/json" in attrs:
            continue  # data blocks never run
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src, body[:80]


def test_the_dashboard_puts_only_real_order_ids_into_api_paths() -> None:
    from dashboard.audit_view import valid_order_id

    good = str(uuid.uuid4())
    assert valid_order_id(good) == good
    assert valid_order_id(good.upper()) == good
    for bad in ("../account/exchange-keys", f"{good}/../../me", f"{good}?asOf=1", "", None, 7):
        assert valid_order_id(bad) is None


def test_dashboard_scripts_never_keep_the_refresh_token() -> None:
    from pathlib import Path

    assets = Path(__file__).resolve().parents[2] / "dashboard" / "assets"
    code = "\n".join(p.read_text() for p in sorted(assets.glob("*.js")))
    assert "refreshToken" not in code and "refresh_token" not in code
    assert "X-Refresh-Cookie" in code
