"""`tradeledger place-order` from the shell: quantity or spend amount, and clear refusals."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest

from adapters.cli import main
from adapters.platform.bootstrap import Runtime

pytestmark = pytest.mark.integration


def test_place_order_with_a_spend_amount_sends_quote_order_qty(
        runtime: Runtime, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["place-order", "--email", "cli@example.com", "--type", "MARKET",
                 "--quote-order-qty", "100"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"order ([0-9a-f-]{36}) is PENDING; its events:", out)
    assert match, out
    order = runtime.app.get_order(uuid.UUID(match.group(1)))
    assert order.quote_order_qty == Decimal("100")
    assert order.quantity == 0  # fixed by the exchange's fill, not by the trader


def test_place_order_refuses_a_spend_amount_on_a_limit_order(
        runtime: Runtime, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["place-order", "--email", "cli@example.com", "--type", "LIMIT",
                 "--quote-order-qty", "100"]) == 2
    assert "--quote-order-qty is for MARKET orders" in capsys.readouterr().err


def test_place_order_takes_quantity_or_spend_amount_not_both(
        runtime: Runtime, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["place-order", "--type", "MARKET", "--quantity", "1", "--quote-order-qty", "100"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
