"""The dashboard's server-side view helpers (pure functions: no API, no browser)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from dashboard.analytics_view import build_figures, realized_pnl_series
from dashboard.audit_view import check_trail, export_csv, export_json


def _trade(side: str, qty: str, price: str, time: str, fee: str = "0",
           fee_asset: str = "USDT") -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": side, "quantity": qty, "price": price, "time": time,
            "commission": fee, "commissionAsset": fee_asset}


def test_realized_pnl_uses_average_cost_and_quote_fees() -> None:
    trades = [
        _trade("BUY", "1", "100", "2026-01-01T00:00:01"),
        _trade("BUY", "1", "200", "2026-01-01T00:00:02", fee="0.001", fee_asset="BTC"),
        _trade("SELL", "1", "180", "2026-01-01T00:00:03", fee="0.5"),
    ]
    series = realized_pnl_series(trades)
    # average cost 150; sold 1 at 180 -> +30, minus the 0.5 USDT fee; the BTC fee is not USDT
    assert series[-1] == ("2026-01-01T00:00:03", Decimal("29.5"))
    assert [v for _, v in series[:2]] == [Decimal(0), Decimal(0)]


def test_selling_more_than_held_opens_no_short() -> None:
    series = realized_pnl_series([_trade("SELL", "1", "100", "2026-01-01T00:00:01")])
    assert series == [("2026-01-01T00:00:01", Decimal(0))]


def test_figures_are_built_from_empty_and_from_real_data() -> None:
    figures, summary = build_figures({}, [], [], [])
    assert len(figures) == 5
    assert summary.startswith("0 orders")
    analytics = {
        "ordersPerMinute": [{"symbol": "BTCUSDT", "minute": "2026-01-01T00:00:00+00:00",
                             "orders": 1, "fills": 1, "volume": "96.5"}],
        "fillLatencyHistogram": [{"leMs": "50", "count": 1}, {"leMs": "+Inf", "count": 0}],
        "eventsPerMinute": [{"minute": "2026-01-01T00:00:00+00:00", "events": 4}],
    }
    trades = [_trade("BUY", "0.001", "96500", "2026-01-01T00:00:01")]
    figures, summary = build_figures(analytics, [{"status": "FILLED"}], trades, [])
    assert figures[1].data[0].y == (96.5,)
    assert list(figures[2].data[0].x) == ["≤ 50 ms", "> 50 ms"]
    assert figures[3].data[0].labels == ("FILLED",)
    assert summary == "1 orders · 1 fills · 0 rejections"


def test_trail_check_finds_gaps_and_a_wrong_start() -> None:
    good = [{"version": 1, "type": "OrderPlaced", "time": "2026-01-01T00:00:01"},
            {"version": 2, "type": "OrderAccepted", "time": "2026-01-01T00:00:02"}]
    assert check_trail(good)[0]
    assert not check_trail([good[0], {**good[1], "version": 3}])[0]
    assert not check_trail([{**good[0], "type": "OrderFilled"}])[0]
    assert not check_trail([])[0]


def test_exports_carry_every_event() -> None:
    events = [{"version": 1, "type": "OrderPlaced", "time": "t1", "actor": "user:1",
               "payload": {"symbol": "BTCUSDT", "quantity": "0.001"}}]
    rows = list(csv.reader(io.StringIO(export_csv(events))))
    assert rows[0] == ["version", "type", "time", "actor", "payload"]
    assert rows[1][:4] == ["1", "OrderPlaced", "t1", "user:1"]
    assert json.loads(rows[1][4]) == {"quantity": "0.001", "symbol": "BTCUSDT"}
    assert json.loads(export_json({"orderId": "x"}, events))["events"] == events
