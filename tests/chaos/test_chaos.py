"""The chaos suite: orders flow through a whole `tradeledger up` while its processes are
SIGKILLed, the broker restarts empty, and the exchange times out, executes orders late, lags
its order queries, squeezes its rate limit, shuts a WS-API server down and changes a symbol's
filters; afterwards nothing is lost, doubled or out of line with the exchange, no order was
rejected or banned for a rate limit, and every MARKET order is one exchange order
(docs/chaos.md).

Size and randomness come from the environment: TRADELEDGER_CHAOS_ORDERS (600),
TRADELEDGER_CHAOS_USERS, TRADELEDGER_CHAOS_RATE (orders/s offered), TRADELEDGER_CHAOS_KILLS
(SIGKILLs per child), TRADELEDGER_CHAOS_SEED (printed on every run; set it to replay one).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.platform.launcher import RunningSystem, start_system, stop_system
from tests.chaos import checks
from tests.chaos.processes import ChaosMonkey, child_env, restarts_reported
from tests.chaos.traders import (
    CallStats,
    PlannedOrder,
    Prices,
    Trader,
    call,
    follow,
    make_plan,
    place,
    register,
    with_list_legs,
)

pytestmark = pytest.mark.chaos

ORDERS = int(os.environ.get("TRADELEDGER_CHAOS_ORDERS", "600"))
USERS = int(os.environ.get("TRADELEDGER_CHAOS_USERS", str(max(4, min(20, ORDERS // 75)))))
RATE = float(os.environ.get("TRADELEDGER_CHAOS_RATE", "10"))
KILLS = int(os.environ.get("TRADELEDGER_CHAOS_KILLS", "3"))
SEED = int(os.environ.get("TRADELEDGER_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
VICTIMS = ("api", "relay", "worker", "projector")
FLOW_SECONDS = ORDERS / RATE
SETTLE_SECONDS = 180.0
STALL_SECONDS = 45.0
SCHEMA = "tradeledger"
# Binance's PERCENT_PRICE_BY_SIDE on BTCUSDT: prices within 0.2x-5x of the average price.
BINANCE_BAND = {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2",
                "avgPriceMins": 5}


def chaos_schedule(rng: random.Random) -> list[tuple[float, str, dict[str, Any]]]:
    """When to do what, seeded: KILLS SIGKILLs per child spread over the flow (one in each
    of KILLS equal slices, so they never bunch); one empty broker restart two seconds after
    a projector kill, so it lands while the projector is behind and catching up (the
    hardest moment for the consumers' rewind); two exchange outages, `timeout` that still
    executes (status unknown) and `hang`; and Binance's harsher habits: `late` execution up to
    12 s after a -1007 answer, `query_lag`, the ORDERS limit squeezed to 2 per 10 s per key
    for 15 s, one `serverShutdown` of every WS-API connection, and one exchangeInfo change
    (Binance's own PERCENT_PRICE_BY_SIDE band on a symbol)."""
    plan: list[tuple[float, str, dict[str, Any]]] = []
    slice_ = 0.85 * FLOW_SECONDS / KILLS
    for victim in VICTIMS:
        for k in range(KILLS):
            plan.append((0.05 * FLOW_SECONDS + slice_ * (k + rng.random()), "kill",
                         {"child": victim}))
    projector_kills = sorted(t for t, _, g in plan if g["child"] == "projector")
    plan.append((projector_kills[len(projector_kills) // 2] + 2.0, "broker", {}))
    plan.append((rng.uniform(0.1, 0.45) * FLOW_SECONDS, "fault",
                 {"mode": "timeout", "seconds": 6, "execute": True}))
    plan.append((rng.uniform(0.5, 0.85) * FLOW_SECONDS, "fault",
                 {"mode": "hang", "seconds": 8, "execute": False}))
    plan.append((rng.uniform(0.1, 0.4) * FLOW_SECONDS, "fault",
                 {"mode": "late", "seconds": 6, "delayMs": rng.randint(2000, 12000)}))
    plan.append((rng.uniform(0.4, 0.7) * FLOW_SECONDS, "fault",
                 {"mode": "query_lag", "seconds": 8, "lagMs": rng.randint(1000, 4000)}))
    squeeze = rng.uniform(0.2, 0.6) * FLOW_SECONDS
    plan.append((squeeze, "limits", {"ordersPer10s": 2}))
    plan.append((squeeze + 15, "limits", {"ordersPer10s": 100}))
    plan.append((rng.uniform(0.2, 0.8) * FLOW_SECONDS, "ws", {"event": "serverShutdown"}))
    plan.append((rng.uniform(0.1, 0.9) * FLOW_SECONDS, "exchange-info",
                 {"symbol": rng.choice(["BTCUSDT", "ETHUSDT"]), "filters": [BINANCE_BAND]}))
    return sorted(plan, key=lambda item: item[0])


async def run_action(monkey: ChaosMonkey, client: httpx.AsyncClient, exchange_url: str,
                     action: str, args: dict[str, Any]) -> None:
    if action == "kill":
        await asyncio.to_thread(monkey.kill, args["child"])
    elif action == "broker":
        await asyncio.to_thread(monkey.restart_broker_empty)
    elif action == "limits":
        # New limits restart the exchange's counters, bans included: count them first.
        before = await client.get(exchange_url + "/admin/limits", timeout=10)
        response = await client.post(exchange_url + "/admin/limits", json=args, timeout=10)
        monkey.note("exchange-limits", status=response.status_code,
                    bans_before=before.json().get("bans"),
                    rejected_before=before.json().get("rejected"), **args)
    else:
        path = {"fault": "/admin/faults", "ws": "/admin/ws",
                "exchange-info": "/admin/exchange-info"}[action]
        response = await client.post(exchange_url + path, json=args, timeout=10)
        monkey.note(f"exchange-{action}", status=response.status_code, **args)


async def at(delay: float, job: Callable[[], Awaitable[None]]) -> None:
    await asyncio.sleep(delay)
    await job()


async def wait_for_keys(client: httpx.AsyncClient, stats: CallStats,
                        traders: list[Trader]) -> None:
    """The worker gives every new account paper-exchange keys; wait for all of them."""
    deadline = time.monotonic() + 60
    pending = list(traders)
    while pending and time.monotonic() < deadline:
        me = [await call(client, stats, "GET", "/api/me", t) for t in pending]
        pending = [t for t, r in zip(pending, me, strict=True)
                   if not (r.json().get("exchangeKeys") or {}).get("connected")]
        if pending:
            await asyncio.sleep(0.5)
    assert not pending, f"{len(pending)} accounts got no paper-exchange keys within 60 s"


def settle_state(db_url: str, plan: list[PlannedOrder],
                 traders: list[Trader]) -> tuple[bool, str]:
    """Whether every order has settled, the projector has caught up with the event store,
    and every stream has caught up with its change log; and why not."""
    orders = checks.read_orders(db_url, SCHEMA, [o.order_id for o in plan if o.order_id])
    unsettled = [o for o in plan if o.order_id and not checks.settled(orders.get(o.order_id))]
    lag = checks.projector_lag(db_url, SCHEMA)
    latest = checks.latest_seq(db_url, SCHEMA, [t.account_id for t in traders])
    behind = [t.index for t in traders if t.last_seq < latest.get(t.account_id, 0)]
    ok = not unsettled and lag == 0 and not behind
    statuses = sorted({orders[o.order_id]["status"] if o.order_id in orders else "missing"
                       for o in unsettled if o.order_id})
    return ok, (f"{len(unsettled)} orders unsettled {statuses}, projector {lag} behind, "
                f"streams behind: {behind}")


async def drive(system: RunningSystem, monkey: ChaosMonkey, rng: random.Random,
                report: dict[str, Any]) -> tuple[list[PlannedOrder], list[Trader], CallStats]:
    env = child_env(system)
    exchange_url = env["TRADELEDGER_PAPER_EXCHANGE_URL"]
    db_url = env["TRADELEDGER_DATABASE_URL"]
    stats = CallStats()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30, limits=limits) as client:
        tag = f"{SEED}-{rng.randrange(10**6)}"
        traders = [await register(client, stats, i, tag) for i in range(USERS)]
        await wait_for_keys(client, stats, traders)
        stop = asyncio.Event()
        streams = [asyncio.create_task(follow(system.api_url, t, stop)) for t in traders]
        deadline = time.monotonic() + 30
        while any(t.connects == 0 for t in traders) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        plan = make_plan(rng, ORDERS, USERS, str(SEED % 100_000))
        prices = Prices(exchange_url)
        monkey.started = time.monotonic()
        chaos = [asyncio.create_task(at(t, lambda a=a, g=g: run_action(
            monkey, client, exchange_url, a, g))) for t, a, g in chaos_schedule(rng)]
        started = time.monotonic()
        placing = []
        for n, order in enumerate(plan):
            delay = started + n / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            placing.append(asyncio.create_task(place(client, stats, traders[order.trader],
                                                     order, prices)))
        await asyncio.gather(*placing)
        plan = with_list_legs(plan)
        report["flow_seconds"] = round(time.monotonic() - started, 1)
        await asyncio.gather(*chaos)
        await client.post(exchange_url + "/admin/faults", json={"mode": "none"})
        limits = (await client.get(exchange_url + "/admin/limits", timeout=10)).json()
        report["bans"] = limits.get("bans", 0) + sum(
            a.get("bans_before") or 0 for a in monkey.actions if a["action"] == "exchange-limits")
        report["rate_limited_requests"] = limits.get("rejected", 0) + sum(
            a.get("rejected_before") or 0 for a in monkey.actions
            if a["action"] == "exchange-limits")
        settle_started = last_change = time.monotonic()
        why = ""
        # Wait until everything settled; give up early once nothing has moved for a while
        # (a read model that lost events never settles, and waiting longer proves nothing).
        while time.monotonic() - settle_started < SETTLE_SECONDS:
            ok, now_why = await asyncio.to_thread(settle_state, db_url, plan, traders)
            if ok:
                why = now_why
                break
            if now_why != why:
                why, last_change = now_why, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                break
            await asyncio.sleep(1.0)
        report["settle_seconds"] = round(time.monotonic() - settle_started, 1)
        report["settled"] = why
        stop.set()
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    return plan, traders, stats


@pytest.mark.timeout(int(900 + 3 * FLOW_SECONDS))
def test_nothing_is_lost_doubled_or_banned_under_sigkills_broker_loss_and_binance_faults(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    print(f"\nchaos seed {SEED}: {ORDERS} orders, {USERS} users, {RATE:g} orders/s, "
          f"{KILLS} SIGKILLs per child (replay with TRADELEDGER_CHAOS_SEED={SEED})", flush=True)
    rng = random.Random(SEED)
    data_dir = tmp_path_factory.mktemp("chaos")
    began = time.monotonic()
    system = start_system(data_dir, with_dashboard=False)
    monkey = ChaosMonkey(system)
    report: dict[str, Any] = {"seed": SEED, "orders": ORDERS, "users": USERS, "rate": RATE,
                              "kills_per_child": KILLS, "data_dir": str(data_dir)}
    problems: list[str] = []
    try:
        plan, traders, stats = asyncio.run(drive(system, monkey, rng, report))
        env = child_env(system)
        snap = checks.snapshot(env, SCHEMA,
                               data_dir / "paper-exchange" / "paper_exchange.sqlite3",
                               plan, traders)
        order_problems, order_stats = checks.check_orders(plan, snap)
        stream_problems, stream_stats = checks.check_streams(plan, traders, snap)
        problems += order_problems + stream_problems
        problems += [f"API answered {e}" for e in stats.server_errors]
        if report.get("bans"):
            problems.append(f"the exchange banned us {report['bans']} times (418)")
        failed_actions = [a for a in monkey.actions if a["action"].startswith("exchange-")
                          and a.get("status") not in (200, 204)]
        problems += [f"exchange control failed: {a}" for a in failed_actions]
        for args in (["replay", "--verify"], ["audit", "verify"]):
            code, output = checks.run_cli(args, env)
            report[" ".join(args)] = {"exit": code, "output": output[-600:]}
            if code != 0:
                problems.append(f"`tradeledger {' '.join(args)}` exited {code}:\n{output}")
        for victim in VICTIMS:
            if monkey.kills.get(victim, 0) < KILLS:
                problems.append(f"{victim} was SIGKILLed {monkey.kills.get(victim, 0)} "
                                f"times, not {KILLS}")
            if restarts_reported(system, victim) < monkey.kills.get(victim, 0):
                problems.append(f"the supervisor reported fewer restarts of {victim} than kills")
        if not any(a["action"] == "broker-restarted-empty" for a in monkey.actions):
            problems.append("the broker was not restarted")
        report.update(order_stats | stream_stats)
        report.update(kills=monkey.kills, transport_errors=stats.transport_errors,
                      retried_statuses=stats.retried_statuses, relogins=stats.relogins,
                      cancels=sum(1 for o in plan if o.cancel_status is not None),
                      cancel_refusals=dict(sorted(
                          {c: sum(1 for o in plan if o.cancel_code == c)
                           for c in {o.cancel_code for o in plan if o.cancel_code}}.items())))
    finally:
        stop_system(system)
        monkey.close()
        report["actions"] = monkey.actions
        report["total_seconds"] = round(time.monotonic() - began, 1)
        report["problems"] = problems
        text = json.dumps(report, indent=2, default=str)
        (data_dir / "chaos-report.json").write_text(text)
        if os.environ.get("TRADELEDGER_CHAOS_REPORT"):
            Path(os.environ["TRADELEDGER_CHAOS_REPORT"]).write_text(text)
        print(text, flush=True)
    assert not problems, (f"chaos seed {SEED}: {len(problems)} problems (logs in "
                          f"{data_dir / 'logs'}):\n" + "\n".join(problems[:60]))
