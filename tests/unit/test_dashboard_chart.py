"""The price chart drawn on the Dash server (dashboard/chart.py): figure, overlays, indicators
with live candles, the "needs N candles" note and the symbols' rules."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard import chart

MINUTE = 60_000


def candles(n: int, t0: int = 1_700_000_040_000, step: int = MINUTE) -> list[dict[str, float]]:
    return [{"t": t0 + i * step, "o": 100.0 + i, "h": 102.0 + i, "l": 99.0 + i,
             "c": 101.0 + i if i % 3 else 99.5 + i, "v": 1.0 + i} for i in range(n)]


def meta_for(cs: list[dict[str, float]], interval: str = "1m") -> dict[str, Any]:
    return chart.figure("BTCUSDT", interval, cs, [], False)[1]


def test_candle_reads_the_api_kline_as_floats() -> None:
    k = {"time": 1_700_000_000_000, "open": "1.5", "high": "2", "low": "1", "close": "1.75",
         "volume": "10"}
    assert chart.candle(k) == {"t": 1_700_000_000_000, "o": 1.5, "h": 2.0, "l": 1.0,
                               "c": 1.75, "v": 10.0}
    assert chart.candle({**k, "time": None, "openTime": 5})["t"] == 5


def test_figure_keeps_fixed_trace_indices_so_ticks_and_overlays_can_patch_them() -> None:
    cs = candles(30)
    fig, meta = chart.figure("ETHUSDT", "1m", cs, ["sma", "bb", "rsi"], True)
    names = [t["name"] for t in fig["data"]]
    assert names[:4] == ["ETHUSDT", "Volume", "Buys", "Sells"]
    assert names[4:] == ["SMA 20", "BB upper", "BB lower", "RSI 14"]
    assert meta["traces"] == {"sma": 4, "bbUpper": 5, "bbLower": 6, "rsi": 7}
    candle_trace = fig["data"][chart.CANDLES]
    assert candle_trace["x"] == [k["t"] for k in cs]  # epoch ms, as the browser tests read
    assert fig["data"][4]["y"][18] is None and fig["data"][4]["y"][19] is not None
    assert fig["layout"]["paper_bgcolor"] == chart.palette(True)["bg"]
    assert fig["layout"]["yaxis3"]["range"] == [0, 100] and fig["layout"]["showlegend"]
    assert meta["key"] == "ETHUSDT:1m" and meta["last"] == cs[-1]["c"]
    assert meta["lo"] == 99.0 and meta["hi"] == cs[-1]["h"]
    plain, _ = chart.figure("ETHUSDT", "1m", cs, [], False)
    assert len(plain["data"]) == 4 and not plain["layout"]["showlegend"]


def test_the_note_says_which_indicators_the_timeframe_is_too_short_for() -> None:
    assert chart.indicator_note(["sma", "rsi"], 300) == ""
    assert chart.indicator_note(["sma"], 5) == (
        "SMA 20 needs at least 20 candles; this timeframe has 5. Pick a shorter timeframe.")
    assert chart.indicator_note(["sma", "rsi"], 10).startswith("SMA 20, RSI 14 need at least 20")
    assert chart.indicator_note(["sma"], 0) == ""


def test_fills_sit_on_the_candle_they_happened_in() -> None:
    cs = candles(10)
    meta = meta_for(cs)
    fills = [{"side": "BUY", "price": "101.5", "quantity": "0.001",
              "time": cs[-1]["t"] + 42_000},
             {"side": "SELL", "price": "100", "quantity": "0.002", "time": cs[3]["t"] + 1},
             {"side": "BUY", "price": "1", "quantity": "1", "time": cs[0]["t"] - 1}]  # too old
    markers = chart.fill_markers(fills, meta)
    assert markers["Buys"] == {"x": [cs[-1]["t"]], "y": [101.5],
                               "text": ["BUY 0.001 @ 101.5"]}
    assert markers["Sells"]["x"] == [cs[3]["t"]]
    iso = chart.fill_markers([{"side": "BUY", "price": "1", "quantity": "1",
                               "time": "2023-11-14T22:15:00Z"}], meta)
    assert iso["Buys"]["x"] and iso["Buys"]["x"][0] % MINUTE == cs[0]["t"] % MINUTE


def test_orders_near_the_market_are_lines_and_far_ones_edge_labels() -> None:
    cs = candles(10)
    meta = meta_for(cs)
    near = {"type": "LIMIT", "side": "BUY", "quantity": "0.001", "price": "100.5"}
    far = {"type": "LIMIT", "side": "SELL", "quantity": "0.001", "price": "1000"}
    stop = {"type": "STOP_LOSS_LIMIT", "side": "SELL", "quantity": "0.001", "price": "99",
            "stopPrice": "99.5", "stopTriggered": False, "orderListId": 7}
    market = {"type": "MARKET", "side": "BUY", "quantity": "1", "price": None}
    shapes, notes = chart.order_lines([near, far, stop, market], meta)
    assert [s["y0"] for s in shapes] == [100.5, 99.5]
    assert shapes[1]["line"]["dash"] == "dashdot"
    texts = [n["text"] for n in notes]
    assert "BUY 0.001 @ 100.5" in texts and "SL SELL 0.001 stop 99.5 → 99" in texts
    assert "SELL 0.001 @ 1000 ↑" in texts


def test_live_candles_replace_the_last_or_append_and_a_gap_asks_for_history() -> None:
    cs = candles(5)
    last = cs[-1]
    live = [{"t": last["t"], "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 3},
            {"t": last["t"] + MINUTE, "o": 1.5, "h": 2, "l": 1, "c": 2, "v": 1}]
    merged = chart.merge_live(cs, live, MINUTE)
    assert merged is not None and len(merged) == 6
    assert merged[-2]["c"] == 1.5 and merged[-1]["t"] == last["t"] + MINUTE
    assert cs[-1] == last  # the cached history is never changed
    assert chart.merge_live(cs, [{"t": last["t"] + 3 * MINUTE, "o": 1, "h": 1, "l": 1,
                                  "c": 1, "v": 1}], MINUTE) is None
    assert chart.merge_live(cs, [{"t": "x"}], MINUTE) == cs


def test_refresh_computes_the_indicators_with_the_live_candle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cs = candles(30)
    monkeypatch.setattr(chart, "history", lambda *_a, **_k: cs)
    _, meta = chart.figure("BTCUSDT", "1m", cs, ["sma"], False)
    tick = {"t": cs[-1]["t"], "o": 1, "h": 500, "l": 1, "c": 400, "v": 1}
    out = chart.refresh_indicators({"key": "BTCUSDT:1m", "klines": [tick]}, meta, None)
    assert out["key"] == "BTCUSDT:1m" and out["traces"] == {"sma": 4}
    assert out["t"] == [k["t"] for k in cs] and set(out["series"]) == {"sma"}
    assert out["series"]["sma"][-1] == pytest.approx(
        sum(k["c"] for k in cs[-20:-1]) / 20 + 400 / 20)
    stale = chart.refresh_indicators({"key": "ETHUSDT:1m", "klines": [tick]}, meta, None)
    assert stale is chart.dash.no_update


def test_draw_reads_history_and_says_when_the_api_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    cs = candles(30)
    monkeypatch.setattr(chart, "history", lambda *_a, **_k: cs)
    view = {"symbol": "ETHUSDT", "interval": "1w", "indicators": ["sma", "nope"], "dark": False}
    fig, meta, note, error = chart.draw(view, None, None)
    assert fig["data"][0]["name"] == "ETHUSDT" and meta["indicators"] == ["sma"]
    assert note == "" and error == ""

    def down(*_a: Any, **_k: Any) -> Any:
        raise chart.ApiClientError(0, "network", "cannot reach the API")
    monkeypatch.setattr(chart, "history", down)
    fig, _, _, error = chart.draw(view, None, None)
    assert fig["data"][0]["x"] == [] and error == "Chart unavailable: cannot reach the API"
    with pytest.raises(chart.PreventUpdate):
        chart.draw({"symbol": "../etc"}, None, None)


def test_symbols_rules_keep_the_ticket_fields() -> None:
    rules = chart.normalise_symbol({"symbol": "ETHBTC", "quoteAsset": "BTC", "filters": [
        {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001"},
        {"filterType": "PRICE_FILTER", "tickSize": "0.00001"}]})
    assert rules["stepSize"] == "0.001" and rules["tickSize"] == "0.00001"
    assert rules["baseAsset"] == "ETH" and rules["quoteAsset"] == "BTC"
    assert chart.normalise_symbol({"symbol": "BTCUSDT", "stepSize": "0.00001"})["baseAsset"] \
        == "BTC"
