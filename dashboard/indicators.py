"""Chart indicators computed on the Dash server: SMA 20, EMA 20, Bollinger (20, 2), RSI 14.

`dashboard/chart.py` computes the series the user turned on from the history it reads from
the API (and the live candles, at most once a second), keyed by candle time. Closes are
display floats like the candles Plotly draws; no money is computed here.
"""

from __future__ import annotations

import math
from typing import Any

Series = list[float | None]
PERIOD = 20
RSI_PERIOD = 14
BB_WIDTH = 2.0


def sma(values: list[float], n: int = PERIOD) -> Series:
    """Simple moving average; None until n values are in."""
    out: Series = [None] * len(values)
    total = 0.0
    for i, v in enumerate(values):
        total += v
        if i >= n:
            total -= values[i - n]
        if i >= n - 1:
            out[i] = total / n
    return out


def ema(values: list[float], n: int = PERIOD) -> Series:
    """Exponential moving average seeded with the first n values' mean."""
    out: Series = [None] * len(values)
    if len(values) < n:
        return out
    k = 2 / (n + 1)
    prev = sum(values[:n]) / n
    out[n - 1] = prev
    for i in range(n, len(values)):
        prev = values[i] * k + prev * (1 - k)
        out[i] = prev
    return out


def bollinger(values: list[float], n: int = PERIOD,
              width: float = BB_WIDTH) -> tuple[Series, Series]:
    """(upper, lower) bands: the SMA plus and minus `width` population standard deviations."""
    mid = sma(values, n)
    upper: Series = [None] * len(values)
    lower: Series = [None] * len(values)
    for i, m in enumerate(mid):
        if m is None:
            continue
        sd = math.sqrt(sum((v - m) ** 2 for v in values[i - n + 1:i + 1]) / n)
        upper[i], lower[i] = m + width * sd, m - width * sd
    return upper, lower


def rsi(values: list[float], n: int = RSI_PERIOD) -> Series:
    """Wilder's RSI; None for the first n values."""
    out: Series = [None] * len(values)
    gain = loss = 0.0
    for i in range(1, len(values)):
        d = values[i] - values[i - 1]
        g, lo = max(d, 0.0), max(-d, 0.0)
        if i <= n:
            gain += g
            loss += lo
            if i < n:
                continue
            gain, loss = gain / n, loss / n
        else:
            gain = (gain * (n - 1) + g) / n
            loss = (loss * (n - 1) + lo) / n
        out[i] = 100.0 if loss == 0 else 100 - 100 / (1 + gain / loss)
    return out


def compute(data: dict[str, Any] | None) -> dict[str, Any]:
    """The requested series for the candles in `data` ({key, t, c, want})."""
    if not data:
        return {}
    times = list(data.get("t") or [])
    closes = [float(c) for c in (data.get("c") or [])][: len(times)]
    want = set(data.get("want") or [])
    out: dict[str, Any] = {"key": data.get("key"), "t": times[: len(closes)]}
    if "sma" in want:
        out["sma"] = sma(closes)
    if "ema" in want:
        out["ema"] = ema(closes)
    if "bb" in want:
        out["bbUpper"], out["bbLower"] = bollinger(closes)
    if "rsi" in want:
        out["rsi"] = rsi(closes)
    return out

