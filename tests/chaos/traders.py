"""Simulated traders for the chaos suite: patient HTTP calls, resumable SSE, an order plan."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx

from adapters.paper_exchange.markets import DEFAULT_MARKETS

# The API restarts within seconds of a SIGKILL; a call waits this long for it at most.
CALL_PATIENCE = 120.0
RETRY_STATUSES = {502, 503, 504}


@dataclass
class Trader:
    """One simulated user: credentials, and what it has seen on its stream."""

    index: int
    email: str
    password: str
    token: str = ""
    account_id: str = ""
    # (seq, kind, data) in arrival order, over every (re)connection.
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    last_seq: int = 0
    connects: int = 0
    stream_errors: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class CallStats:
    """What the API answered across the run (5xx other than restarts are bugs)."""

    transport_errors: int = 0
    retried_statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    relogins: int = 0


async def call(client: httpx.AsyncClient, stats: CallStats, method: str, url: str,
               trader: Trader | None = None, *, json_body: Any = None,
               patience: float = CALL_PATIENCE) -> httpx.Response:
    """Call the API until it answers something final: retries connection errors (the API
    being killed), 503s (starting) and 429s; signs in again on a 401."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            headers = trader.headers if trader is not None else {}
            response = await client.request(method, url, json=json_body, headers=headers)
        except httpx.TransportError as exc:
            stats.transport_errors += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {url}: API unreachable for {patience}s: "
                                     f"{exc!r}") from exc
        else:
            code = response.status_code
            if code == 401 and trader is not None and trader.token:
                stats.relogins += 1
                await login(client, stats, trader)
                continue
            if code >= 500 and code not in RETRY_STATUSES:
                stats.server_errors.append(f"{method} {url} -> {code}: {response.text[:300]}")
            if code not in RETRY_STATUSES and code != 429:
                return response
            stats.retried_statuses[code] = stats.retried_statuses.get(code, 0) + 1
            if time.monotonic() > deadline:
                return response
            if code == 429:
                wait = float(response.headers.get("Retry-After", "1") or 1)
                await asyncio.sleep(min(wait, 5.0))
                continue
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)


async def login(client: httpx.AsyncClient, stats: CallStats, trader: Trader) -> None:
    trader.token = ""
    response = await call(client, stats, "POST", "/auth/login",
                          json_body={"email": trader.email, "password": trader.password})
    assert response.status_code == 200, f"login of {trader.email}: {response.text}"
    trader.token = response.json()["token"]


async def register(client: httpx.AsyncClient, stats: CallStats, index: int,
                   tag: str) -> Trader:
    trader = Trader(index=index, email=f"chaos-{tag}-{index}@example.com",
                    password="Chaos-" + secrets.token_urlsafe(12))
    response = await call(client, stats, "POST", "/auth/register",
                          json_body={"email": trader.email, "password": trader.password})
    if response.status_code == 409:  # registered by a call whose answer the kill swallowed
        await login(client, stats, trader)
    else:
        assert response.status_code == 201, f"register: {response.status_code} {response.text}"
        trader.token = response.json()["token"]
    me = await call(client, stats, "GET", "/api/me", trader)
    trader.account_id = str(me.json()["id"])
    return trader


async def follow(api_url: str, trader: Trader, stop: asyncio.Event) -> None:
    """Keep the trader's SSE stream open from the first change on; after any drop,
    reconnect with Last-Event-ID so nothing is missed and nothing is repeated."""
    timeout = httpx.Timeout(5.0, read=45.0)  # the API pings every 15 s
    async with httpx.AsyncClient(base_url=api_url, timeout=timeout) as client:
        while not stop.is_set():
            headers = {**trader.headers, "Last-Event-ID": str(trader.last_seq)}
            try:
                async with client.stream("GET", "/api/stream", headers=headers) as response:
                    if response.status_code != 200:
                        trader.stream_errors.append(f"HTTP {response.status_code}")
                        if response.status_code == 401:
                            await login(client, CallStats(), trader)
                        await asyncio.sleep(0.3)
                        continue
                    trader.connects += 1
                    await _read_events(response, trader, stop)
            except (httpx.TransportError, httpx.StreamError) as exc:
                trader.stream_errors.append(type(exc).__name__)
            if not stop.is_set():
                await asyncio.sleep(0.2)


async def _read_events(response: httpx.Response, trader: Trader, stop: asyncio.Event) -> None:
    event_id, kind, data = "", "", ""
    async for line in response.aiter_lines():
        if stop.is_set():
            return
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "":
            if event_id and data:
                seq = int(event_id)
                trader.events.append((seq, kind, json.loads(data)))
                trader.last_seq = max(trader.last_seq, seq)
            event_id, kind, data = "", "", ""


# ---- the order plan -----------------------------------------------------------------------

# symbol -> (small quantity, large quantity: notional >= 1,000 USDT, so 3 fills)
QUANTITIES = {
    "BTCUSDT": (Decimal("0.0002"), Decimal("0.012")),
    "ETHUSDT": (Decimal("0.006"), Decimal("0.35")),
    "SOLUSDT": (Decimal("0.1"), Decimal("5")),
    "DOGEUSDT": (Decimal("60"), Decimal("3000")),
}
# kind -> share of the orders
KINDS = {"market": 35, "market_large": 10, "limit_cross": 15, "limit_rest": 20, "limit_ioc": 10,
         "stop_race": 5, "oco": 5}
# A stop_race order's stop sits this far beyond the market (about one 4 s move of the price
# walk), and it is always canceled 0-4 s later: its trigger and its cancel race.
STOP_GAP = Decimal("0.0002")
# The one refusal a planned order may get: its stop (or an OCO's take profit) was passed
# before it arrived (422 stop_would_trigger, or invalid_price "... would take at once").
STOP_PASSED = "stop_would_trigger"
TAKE_PASSED = "would take at once"


@dataclass
class PlannedOrder:
    """One order of the plan; filled in as it is placed and canceled."""

    n: int
    trader: int
    symbol: str
    side: str
    kind: str
    quantity: Decimal
    client_order_id: str
    cancel_after: float | None
    order_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    place_status: int | None = None
    place_error: str = ""
    cancel_status: int | None = None
    cancel_code: str = ""
    # An OCO: the planned order is its stop-loss leg (whose id names the list); the
    # take-profit leg is added to the plan once placed (`leg_of` names the list).
    leg_ids: list[str] = field(default_factory=list)
    leg_of: str | None = None


def make_plan(rng: random.Random, orders: int, traders: int, tag: str) -> list[PlannedOrder]:
    """A seeded mix of market, crossing, resting and IOC orders; about half of the resting
    limits and a few others get a cancel (some of which race a fill)."""
    kinds = [k for k, share in KINDS.items() for _ in range(share)]
    plan = []
    sides: dict[tuple[int, str], int] = {}
    for n in range(orders):
        trader = rng.randrange(traders)
        symbol = rng.choice(list(QUANTITIES))
        kind = rng.choice(kinds)
        # Alternate sides per trader and symbol so balances stay near their start.
        count = sides[(trader, symbol)] = sides.get((trader, symbol), 0) + 1
        side = "BUY" if count % 2 else "SELL"
        small, large = QUANTITIES[symbol]
        quantity = large if kind == "market_large" else small
        roll = rng.random()
        cancel = (roll < 0.5 if kind == "limit_rest" else True if kind in ("stop_race", "oco")
                  else roll < 0.05)
        # An OCO waits longer for its cancel: a leg must first be reached 0.02% away.
        cancel_after = rng.uniform(0.0, 8.0 if kind == "oco" else 4.0) if cancel else None
        plan.append(PlannedOrder(n=n, trader=trader, symbol=symbol, side=side, kind=kind,
                                 quantity=quantity, client_order_id=f"cx{tag}-{n}",
                                 cancel_after=cancel_after))
    return plan


class Prices:
    """Last prices from the paper exchange's public ticker, refreshed at most every second."""

    def __init__(self, exchange_url: str) -> None:
        self.url = exchange_url
        self._prices: dict[str, Decimal] = {}
        self._stamp = 0.0
        self._lock = asyncio.Lock()

    async def get(self, client: httpx.AsyncClient, symbol: str) -> Decimal:
        async with self._lock:
            if time.monotonic() - self._stamp > 1.0 or symbol not in self._prices:
                response = await client.get(self.url + "/api/v3/ticker/price", timeout=10)
                response.raise_for_status()
                self._prices = {row["symbol"]: Decimal(row["price"]) for row in response.json()}
                self._stamp = time.monotonic()
        return self._prices[symbol]


def order_body(order: PlannedOrder, price: Decimal) -> dict[str, Any]:
    """The POST body of a planned order at the current market price."""
    body: dict[str, Any] = {"symbol": order.symbol, "side": order.side,
                            "quantity": str(order.quantity),
                            "clientOrderId": order.client_order_id}
    if order.kind.startswith("market"):
        return {**body, "type": "MARKET"}
    tick = DEFAULT_MARKETS[order.symbol].rules.tick_size
    buy = order.side == "BUY"
    if order.kind == "oco":
        # An exit on both sides, each about one 4 s move of the price walk away: one leg
        # executes soon and expires the other, racing the list's cancel.
        up, down = price * (1 + STOP_GAP), price * (1 - STOP_GAP)
        take, stop = (up, down) if not buy else (down, up)
        take_price = (take / tick).to_integral_value(ROUND_DOWN) * tick
        stop_price = (stop / tick).to_integral_value(ROUND_DOWN) * tick
        if buy:
            take_price, stop_price = take_price - tick, stop_price + tick
        else:
            take_price, stop_price = take_price + tick, stop_price - tick
        stop_limit = (stop_price * (Decimal("1.02") if buy else Decimal("0.98")) / tick
                      ).to_integral_value(ROUND_DOWN) * tick
        return {**body, "type": "OCO", "price": str(take_price), "stopPrice": str(stop_price),
                "stopLimitPrice": str(stop_limit)}
    if order.kind == "stop_race":
        # A stop-loss just beyond the market, with a limit that takes once it triggers.
        stop = (price * (1 + STOP_GAP if buy else 1 - STOP_GAP) / tick).to_integral_value(
            ROUND_DOWN) * tick
        if stop == price:
            stop += tick if buy else -tick
        limit = (stop * (Decimal("1.02") if buy else Decimal("0.98")) / tick
                 ).to_integral_value(ROUND_DOWN) * tick
        return {**body, "type": "STOP_LOSS_LIMIT", "stopPrice": str(stop),
                "price": str(limit), "timeInForce": "GTC"}
    factor = {"limit_cross": Decimal("1.02") if buy else Decimal("0.98"),
              "limit_rest": Decimal("0.85") if buy else Decimal("1.15"),
              "limit_ioc": Decimal("0.9") if buy else Decimal("1.1")}[order.kind]
    limit = (price * factor / tick).to_integral_value(ROUND_DOWN) * tick
    tif = "IOC" if order.kind == "limit_ioc" else "GTC"
    return {**body, "type": "LIMIT", "price": str(limit), "timeInForce": tif}


async def place(client: httpx.AsyncClient, stats: CallStats, trader: Trader,
                order: PlannedOrder, prices: Prices) -> None:
    """Place one planned order (retrying with the same clientOrderId), then maybe cancel it."""
    price = await prices.get(client, order.symbol)
    order.body = order_body(order, price)
    path = "/api/trading/order-lists" if order.kind == "oco" else "/api/trading/orders"
    try:
        response = await call(client, stats, "POST", path, trader, json_body=order.body)
    except AssertionError as exc:
        order.place_error = str(exc)
        return
    order.place_status = response.status_code
    if response.status_code != 202:
        order.place_error = response.text[:300]
        error = response.json().get("error", {}) if response.status_code == 422 else {}
        if order.kind in ("stop_race", "oco") and (
                error.get("code") == STOP_PASSED
                or (error.get("code") == "invalid_price"
                    and TAKE_PASSED in error.get("message", ""))):
            order.place_error = STOP_PASSED
        return
    if order.kind == "oco":
        order.order_id = response.json()["orderListId"]
        order.leg_ids = [leg["orderId"] for leg in response.json()["orders"]][1:]
    else:
        order.order_id = response.json()["orderId"]
    if order.cancel_after is None:
        return
    await asyncio.sleep(order.cancel_after)
    try:
        response = await call(client, stats, "DELETE",
                              f"{path}/{order.order_id}", trader)
    except AssertionError as exc:
        order.cancel_code = str(exc)
        return
    order.cancel_status = response.status_code
    if response.status_code != 202:
        try:
            order.cancel_code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            order.cancel_code = response.text[:100]


def with_list_legs(plan: list[PlannedOrder]) -> list[PlannedOrder]:
    """The plan with each placed OCO's take-profit leg as an order of its own (checked as
    every order is), after the stop-loss leg that names its list."""
    out: list[PlannedOrder] = []
    for order in plan:
        out.append(order)
        out += [replace(order, order_id=leg_id, leg_ids=[], leg_of=order.order_id,
                        cancel_status=None, cancel_code="") for leg_id in order.leg_ids]
    return out
