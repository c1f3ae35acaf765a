"""Issue 19's domain rules: rounding a position down to what one MARKET order can close."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from adapters.paper_exchange.markets import DEFAULT_MARKETS

D = Decimal
ETH = DEFAULT_MARKETS["ETHUSDT"].rules  # step 0.0001, min 0.0001


@pytest.mark.parametrize(("held", "closable"), [
    ("0.49950000", "0.4995"),
    ("0.49959999", "0.4995"),  # down, never up: never sell more than is held
    ("0.0001", "0.0001"),
    ("0.00009999", "0"),  # below the minimum: nothing one order may close
    ("0", "0"),
])
def test_floor_quantity_rounds_down_onto_the_lot_grid(held: str, closable: str) -> None:
    assert ETH.floor_quantity(D(held)) == D(closable)


def test_floor_quantity_keeps_to_both_the_market_and_the_lot_grid() -> None:
    rules = replace(ETH, market_step_size=D("0.001"), market_min_qty=D("0.001"))
    assert rules.floor_quantity(D("0.4995")) == D("0.499")
    assert rules.floor_quantity(D("0.4995"), market=False) == D("0.4995")
    assert rules.floor_quantity(D("0.0009")) == D("0")
    offset = replace(ETH, step_size=D("0.5"), min_qty=D("0.2"), market_step_size=None)
    assert offset.floor_quantity(D("1.3")) == D("1.2")  # the grid starts at minQty
