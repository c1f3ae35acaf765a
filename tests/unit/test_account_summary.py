"""The wallet and PnL summary's maths (projections/summary.py), no I/O."""

from __future__ import annotations

from decimal import Decimal

from projections.positions import Fill, Position, fold_fills
from projections.summary import summarize

D = Decimal
MARKS = {"BTCUSDT": D("110"), "ETHUSDT": D("20"), "BNBUSDT": D("500"), "ETHBTC": D("0.05")}


def marks(symbol: str) -> Decimal | None:
    return MARKS.get(symbol)


def btc(*fills: Fill) -> Position:
    return fold_fills("BTCUSDT", fills)


def test_equity_values_every_balance_at_its_mark_and_lists_the_unpriced() -> None:
    s = summarize([], {}, {"USDT": D("1000"), "BTC": D("0.5"), "XYZ": D("3"), "ETH": D(0)},
                  marks, {}, 0, 0)
    assert s.equity == D("1055")  # 1000 + 0.5 x 110
    assert s.unpriced_assets == ("XYZ",)


def test_a_round_trip_today_is_realized_today_and_in_total() -> None:
    now = btc(Fill("BUY", D("100"), D("2")), Fill("SELL", D("105"), D("1"), D("0.105"), "USDT"))
    s = summarize([now], {}, {}, marks, {}, 1, 0)
    assert (s.realized.today, s.realized.total) == (D("5"), D("5"))
    assert (s.fees.today, s.fees.total) == (D("0.105"), D("0.105"))
    # One BTC left at 100, marked at 110.
    assert (s.unrealized.today, s.unrealized.total) == (D("10"), D("10"))
    assert s.net.today == D("14.895")
    assert s.win_rate == D(1)


def test_today_counts_only_what_happened_since_the_day_start() -> None:
    start = btc(Fill("BUY", D("100"), D("2")), Fill("SELL", D("104"), D("1")))
    now = btc(Fill("BUY", D("100"), D("2")), Fill("SELL", D("104"), D("1")),
              Fill("SELL", D("108"), D("0.5")))
    # Opened the day at 106: the half BTC still held gained 110 - 106 since midnight.
    s = summarize([now], {"BTCUSDT": start}, {}, marks, {"BTCUSDT": D("106")}, 2, 0)
    assert s.realized.total == D("8")  # 4 + 0.5 x 8
    assert s.realized.today == D("4")
    assert s.unrealized.total == D("5")  # 0.5 x (110 - 100)
    # Day start: 1 BTC at 100 opened at 106 (+6); now 0.5 at 100 marked 110 (+5): -1, and
    # realized +4 today: the day's change of the book is +3 = 0.5 x (108 - 106) + 0.5 x (110 - 106)
    assert s.unrealized.today == D("-1")
    assert s.realized.today + s.unrealized.today == D("3")


def test_fees_in_base_and_in_a_third_asset_are_converted_to_the_quote() -> None:
    now = btc(Fill("BUY", D("100"), D("1"), D("0.001"), "BTC"),
              Fill("SELL", D("100"), D("0.5"), D("0.01"), "BNB"))
    s = summarize([now], {}, {}, marks, {}, 0, 0)
    assert s.fees.total == D("0.1") + D("5")  # 0.001 BTC at the fill price; 0.01 BNB at 500


def test_a_quote_other_than_usdt_is_converted_at_its_mark() -> None:
    pos = fold_fills("ETHBTC", [Fill("BUY", D("0.04"), D("10")), Fill("SELL", D("0.06"), D("5"))])
    s = summarize([pos], {}, {}, marks, {}, 1, 0)
    assert s.realized.total == D("0.1") * D("110")  # 5 x 0.02 BTC, BTC at 110 USDT
    assert s.unrealized.total == D("5") * D("0.01") * D("110")


def test_missing_prices_make_only_the_figures_that_need_them_unknown() -> None:
    held = fold_fills("DOGEUSDT", [Fill("BUY", D("1"), D("10"))])
    s = summarize([held], {"DOGEUSDT": held}, {}, marks, {}, 0, 0)
    assert s.unrealized.total is None and s.unrealized.today is None and s.net.total is None
    assert s.realized.total == 0 and s.fees.total == 0


def test_win_rate_is_wins_over_closing_fills_and_unknown_without_any() -> None:
    assert summarize([], {}, {}, marks, {}, 3, 1).win_rate == D("0.75")
    assert summarize([], {}, {}, marks, {}, 0, 0).win_rate is None
