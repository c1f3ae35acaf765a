"""`tradeledger up` as a user runs it: ready, a full order round trip over HTTP and SSE, and a
worker killed with SIGKILL is restarted by the supervisor without losing the order."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import psutil
import pytest

from tests.support.system import RunningSystem

pytestmark = pytest.mark.e2e


def register(api: httpx.Client) -> dict[str, str]:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    response = api.post("/auth/register", json={"email": email, "password": "e2e-password-123"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def wait_for_status(api: httpx.Client, headers: dict[str, str], order_id: str,
                    statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    order: dict[str, Any] = {}
    while time.monotonic() < deadline:
        order = api.get(f"/api/trading/orders/{order_id}", headers=headers).json()
        if order.get("status") in statuses:
            return order
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} stayed {order.get('status')}: {order}")


class SseCollector(threading.Thread):
    """Reads a user's SSE stream in the background and keeps every event."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self.stop.is_set():
                raise

    def _read(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(5, read=None)) as client, client.stream(
                "GET", self.url, headers=self.headers) as response:
            self.connected.set()
            event, data = "", ""
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    self.events.append((event, json.loads(data)))
                    event, data = "", ""

    def saw(self, kind: str, predicate: Any) -> bool:
        return any(k == kind and predicate(d) for k, d in list(self.events))


def test_up_serves_a_market_order_round_trip_over_http_and_sse(
        running_system: RunningSystem, api: httpx.Client) -> None:
    assert api.get("/health").status_code == 200
    assert api.get("/ready").status_code == 200
    headers = register(api)
    stream = SseCollector(running_system.api_url + "/api/stream", headers)
    stream.start()
    assert stream.connected.wait(10)
    response = api.post("/api/trading/orders", headers=headers, json={
        "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"})
    assert response.status_code == 202, response.text
    order_id = response.json()["orderId"]
    order = wait_for_status(api, headers, order_id, {"FILLED"})
    assert Decimal(order["filledQuantity"]) == Decimal("0.001")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not stream.saw(
            "ORDER_UPDATE", lambda d: d["orderId"] == order_id and d["status"] == "FILLED"):
        time.sleep(0.2)
    stream.stop.set()
    assert stream.saw("ORDER_UPDATE",
                      lambda d: d["orderId"] == order_id and d["status"] == "FILLED")
    assert stream.saw("TRADE", lambda d: d["orderId"] == order_id)
    assert stream.saw("POSITION", lambda d: d["symbol"] == "BTCUSDT")


def test_worker_killed_with_sigkill_is_restarted_and_the_order_completes(
        running_system: RunningSystem, api: httpx.Client) -> None:
    headers = register(api)
    children = psutil.Process(running_system.process.pid).children()
    workers = [c for c in children if c.cmdline()[-1:] == ["worker"]]
    assert workers, f"no worker child among {[c.cmdline() for c in children]}"
    os.kill(workers[0].pid, signal.SIGKILL)
    response = api.post("/api/trading/orders", headers=headers, json={
        "symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"})
    assert response.status_code == 202, response.text
    order = wait_for_status(api, headers, response.json()["orderId"], {"FILLED"}, timeout=60)
    assert Decimal(order["filledQuantity"]) == Decimal("0.01")
    assert "worker" in running_system.output() and "restarting" in running_system.output()
