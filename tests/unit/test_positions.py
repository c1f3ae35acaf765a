"""Average-cost position math against hand-computed cases (docs/read-side.md)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from projections.positions import Fill, Position, apply_fill, fold_fills, split_symbol


def buy(qty: str, price: str, fee: str = "0", asset: str = "USDT") -> Fill:
    return Fill("BUY", D(price), D(qty), D(fee), asset)


def sell(qty: str, price: str, fee: str = "0", asset: str = "USDT") -> Fill:
    return Fill("SELL", D(price), D(qty), D(fee), asset)


def test_buy_partial_sell_sell_all_buy_again_with_quote_fees() -> None:
    p = Position("BTCUSDT")
    p = apply_fill(p, buy("1", "100", "0.1"))
    assert (p.quantity, p.average_entry_price, p.realized_pnl, p.fees) == (1, 100, 0, D("0.1"))
    p = apply_fill(p, buy("1", "120", "0.12"))
    assert (p.quantity, p.average_entry_price, p.fees) == (2, 110, D("0.22"))
    p = apply_fill(p, sell("0.5", "130", "0.065"))  # (130 - 110) * 0.5 = 10
    assert (p.quantity, p.average_entry_price, p.realized_pnl) == (D("1.5"), 110, 10)
    p = apply_fill(p, sell("1.5", "100", "0.15"))  # (100 - 110) * 1.5 = -15
    assert (p.quantity, p.average_entry_price, p.realized_pnl) == (0, 0, -5)
    assert p.fees == D("0.435")
    # Flat: realized - fees equals the cash result: paid 220.22, received 214.785.
    assert p.net_pnl == D("214.785") - D("220.22")
    p = apply_fill(p, buy("2", "90", "0.18"))
    assert (p.quantity, p.average_entry_price, p.realized_pnl, p.fees) == (
        2, 90, -5, D("0.615"))
    assert p.trade_count == 5


def test_buy_commission_in_base_asset_reduces_quantity_received() -> None:
    p = apply_fill(Position("BTCUSDT"), buy("1", "100", "0.001", "BTC"))
    assert (p.quantity, p.average_entry_price, p.fees) == (D("0.999"), 100, D("0.1"))
    p = apply_fill(p, sell("0.999", "110", "1.0989"))
    assert p.quantity == 0
    assert p.realized_pnl == D("9.99")
    assert p.fees == D("1.1989")
    # Paid 100, received 109.89 - 1.0989.
    assert p.net_pnl == D("108.7911") - D("100")


def test_sell_commission_in_base_asset_leaves_with_the_sale() -> None:
    p = fold_fills("BTCUSDT", [buy("1", "100"), sell("0.5", "110", "0.0005", "BTC")])
    assert p.quantity == D("0.4995")
    assert p.realized_pnl == D("5.005")
    assert p.fees == D("0.055")
    p = apply_fill(p, sell("0.4995", "110"))
    # Paid 100, received 55 + 54.945: net 9.945.
    assert p.quantity == 0 and p.net_pnl == D("9.945")


def test_commission_in_a_third_asset_is_kept_apart() -> None:
    p = apply_fill(Position("BTCUSDT"), buy("1", "100", "0.01", "BNB"))
    assert p.fees == 0 and p.other_fees == {"BNB": D("0.01")}
    assert p.quantity == 1


def test_sell_larger_than_long_flips_short_and_buys_realize_symmetrically() -> None:
    p = fold_fills("BTCUSDT", [buy("1", "100"), sell("3", "120")])
    assert (p.quantity, p.average_entry_price, p.realized_pnl) == (-2, 120, 20)
    p = apply_fill(p, buy("1", "110"))  # short covered 10 lower: +10
    assert (p.quantity, p.average_entry_price, p.realized_pnl) == (-1, 120, 30)
    p = apply_fill(p, buy("2", "130"))  # covers 1 at a 10 loss, then long 1 at 130
    assert (p.quantity, p.average_entry_price, p.realized_pnl) == (1, 130, 20)


def test_adding_to_a_short_averages_its_entry() -> None:
    p = fold_fills("ETHUSDT", [sell("1", "100"), sell("1", "200")])
    assert (p.quantity, p.average_entry_price) == (-2, 150)


def test_unrealized_pnl_long_and_short() -> None:
    long = fold_fills("BTCUSDT", [buy("1", "100"), buy("1", "120")])
    assert long.unrealized_pnl(D("120")) == 20
    short = fold_fills("BTCUSDT", [sell("1", "120")])
    assert short.unrealized_pnl(D("110")) == 10


@pytest.mark.parametrize("symbol,expected", [
    ("BTCUSDT", ("BTC", "USDT")), ("ETHBTC", ("ETH", "BTC")), ("BNBFDUSD", ("BNB", "FDUSD")),
    ("XYZ", ("XYZ", "")),
])
def test_split_symbol(symbol: str, expected: tuple[str, str]) -> None:
    assert split_symbol(symbol) == expected
