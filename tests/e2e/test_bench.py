"""`tradeledger bench`'s load path against a real system: every market order it places is
seen FILLED on its user's SSE stream, and the report adds up."""

from __future__ import annotations

import asyncio

import pytest

from adapters.cli.bench import render, run_load
from tests.support.system import RunningSystem

pytestmark = pytest.mark.e2e


def test_bench_sees_every_fill_of_a_small_load(running_system: RunningSystem) -> None:
    result = asyncio.run(run_load(running_system.api_url, users=3, rate=10.0, duration=2.0,
                                  limit_share=0.2))
    assert result["accepted"] == 20 and result["refused"] == 0
    assert result["market_orders"] == 16  # 4 of 20 were limit orders, canceled at once
    assert result["filled_seen_on_sse"] == result["market_orders"]
    assert 0 < result["fill_latency_ms"]["p50"] <= result["fill_latency_ms"]["p99"]
    names = {row["name"] for row in result["processes"]}
    assert {"api", "worker", "projector", "relay"} <= names
    assert "completed 16/16 market orders" in render(result, {})
