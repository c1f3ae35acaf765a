"""The chart's indicators, computed on the Dash server."""

from __future__ import annotations

import math

from dashboard.indicators import bollinger, compute, ema, rsi, sma


def test_sma_and_ema_start_after_their_period() -> None:
    values = [float(v) for v in range(1, 26)]
    s = sma(values)
    assert s[:19] == [None] * 19 and s[19] == sum(range(1, 21)) / 20 and s[24] == 15.5
    e = ema(values)
    assert e[18] is None and e[19] == 10.5
    assert math.isclose(e[20] or 0, 21 * 2 / 21 + 10.5 * (1 - 2 / 21))
    assert sma(values[:5]) == [None] * 5 and ema(values[:5]) == [None] * 5


def test_bollinger_is_symmetric_and_flat_prices_have_no_width() -> None:
    upper, lower = bollinger([100.0] * 25)
    assert upper[24] == lower[24] == 100.0
    upper, lower = bollinger([float(v % 3) for v in range(25)])
    mid = sma([float(v % 3) for v in range(25)])
    assert math.isclose((upper[24] or 0) + (lower[24] or 0), 2 * (mid[24] or 0))


def test_rsi_is_100_when_prices_only_rise_and_between_0_and_100_otherwise() -> None:
    assert rsi([float(v) for v in range(20)])[14:] == [100.0] * 6
    mixed = rsi([100.0, 101.0, 99.0, 102.0, 98.0, 103.0] * 4)
    assert mixed[13] is None and all(0 <= (v or 0) <= 100 for v in mixed[14:])


def test_compute_answers_only_what_was_asked_keyed_by_time() -> None:
    out = compute({"key": "BTCUSDT:1m", "t": list(range(30)), "c": [str(v) for v in range(30)],
                   "want": ["sma", "rsi"]})
    assert set(out) == {"key", "t", "sma", "rsi"} and len(out["sma"]) == 30
    assert compute(None) == {}
