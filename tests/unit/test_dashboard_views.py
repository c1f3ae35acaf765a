"""The dashboard's server-side view helpers (pure functions: no API, no browser)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from dashboard.analytics_view import build_figures, pnl_series
from dashboard.audit_view import check_trail, export_csv, export_json


def _trade(side: str, qty: str, price: str, time: str, fee: str = "0",
           fee_asset: str = "USDT") -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": side, "quantity": qty, "price": price, "time": time,
            "commission": fee, "commissionAsset": fee_asset}


def test_pnl_over_time_sums_the_servers_position_history() -> None:
    history = [
        {"symbol": "BTCUSDT", "realizedPnl": "0", "netPnl": "-0.1", "updatedAt": "t1"},
        {"symbol": "ETHUSDT", "realizedPnl": "0", "netPnl": "-0.2", "updatedAt": "t2"},
        {"symbol": "BTCUSDT", "realizedPnl": "-0.21", "netPnl": "-0.82", "updatedAt": "t3"},
    ]
    series = pnl_series(history)
    # The latest row of each symbol counts: the same realized PnL as Positions, not re-derived.
    assert series[-1] == ("t3", Decimal("-0.21"), Decimal("-1.02"))
    assert [r for _, r, _ in series] == [Decimal(0), Decimal(0), Decimal("-0.21")]


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
    # One column per payload field, not one JSON column.
    assert rows[0] == ["version", "type", "time", "actor", "quantity", "symbol"]
    assert rows[1] == ["1", "OrderPlaced", "t1", "user:1", "0.001", "BTCUSDT"]
    assert json.loads(export_json({"orderId": "x"}, events))["events"] == events
