"""`tradeledger bench`'s load path against a real system: every market order it places is
seen FILLED on its user's SSE stream, the bare pipeline runs the same load beside it, and
the report adds up (its shape, never its timings)."""

from __future__ import annotations

import asyncio
import json

import psutil
import pytest

from adapters.cli.bench import (
    PostgresCounters,
    _system_env,
    process_usage,
    render,
    report,
    run_bare,
    run_load,
)
from tests.support.system import RunningSystem

pytestmark = pytest.mark.e2e

FIGURES = {"cpuMsPerOrder", "p50Ms", "p99Ms", "completedPerSecond"}


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


def test_bench_json_carries_tradeledger_and_the_bare_pipeline(
        running_system: RunningSystem) -> None:
    roots = [running_system.process.pid]
    postgres_dir = str(running_system.data_dir / "postgres")
    database = _system_env(running_system, "DATABASE_URL")
    broker = _system_env(running_system, "KAFKA_BOOTSTRAP_SERVERS")
    paper = _system_env(running_system, "PAPER_EXCHANGE_URL")
    assert database and broker and paper
    result = asyncio.run(run_load(
        running_system.api_url, users=2, rate=10.0, duration=1.0, limit_share=0.0,
        usage=lambda: process_usage(roots, postgres_dir),
        counters=PostgresCounters(database)))
    bare = run_bare(database, broker, paper, users=2, rate=10.0, duration=1.0,
                    system_roots=roots, postgres_dir=postgres_dir)
    # Every bare order went the whole way: POST, Kafka, exchange, Kafka, NOTIFY, SSE.
    assert bare["accepted"] == bare["market_orders"] == bare["filled_seen_on_sse"] == 10
    bare_names = {row["name"] for row in bare["processes"]}
    assert {"bare-api", "bare-executor", "bare-projector", "postgres", "broker"} <= bare_names
    assert not bare_names & {"api", "worker", "projector", "relay"}
    # TradeLedger's processes were paused for the bare run and run again afterwards.
    statuses = {p.status() for p in psutil.Process(roots[0]).children(recursive=True)}
    assert psutil.STATUS_STOPPED not in statuses

    doc = json.loads(json.dumps(report(result, bare, {})))
    assert FIGURES <= set(doc) and set(doc["bare"]) == FIGURES
    assert all(isinstance(doc[k], float | int) and isinstance(doc["bare"][k], float | int)
               for k in FIGURES)
    assert set(doc["ratio"]) == {"cpuMsPerOrder", "p50Ms", "p99Ms"}
    assert doc["cpuMsPerOrder"] == result["cpu_ms_per_order"] > 0
    assert doc["bare"]["cpuMsPerOrder"] == bare["cpu_ms_per_order"] > 0
    assert "bare pipeline" in render(result, {}, bare)
    # Each order commits at least its placement and the worker's record of the fill; the
    # bare pipeline at least its three inserts (API, executor, projector).
    assert result["postgres_per_order"]["commits"] >= 2
    assert bare["postgres_per_order"]["commits"] >= 3
    ours, theirs = result["postgres_per_order"], bare["postgres_per_order"]
    assert ours["rowsWritten"] > theirs["rowsWritten"] > 0
    assert "Postgres per completed order" in render(result, {}, bare)


def test_postgres_counters_that_cannot_connect_leave_the_figures_out() -> None:
    # After a load the server may have no connection to spare: the bench goes on without
    # the counters instead of failing (as it once did, "too many clients already").
    counters = PostgresCounters("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert counters.read() == {}
    counters.close()
