"""Shared helpers of the API tests. Their fixtures (`api`, a TestClient with the lifespan
running; `live_api`, a real uvicorn server on a free port in a thread, since SSE needs one:
ASGITransport buffers) are in tests/integration/conftest.py."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import uvicorn
from fastapi import FastAPI

from adapters.platform.bootstrap import Runtime
from adapters.postgres.readmodels import changes_channel
from domain.envelope import EventEnvelope

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    # Re-exported: starlette's TestClient warns on import about its httpx use.
    from fastapi.testclient import TestClient as TestClient

PASSWORD = "correct horse battery"
LIMIT_ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
               "price": "90000.00"}


@dataclass
class User:
    """A registered user as the tests drive it."""

    id: str
    email: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register(client: Any, email: str | None = None, **extra: Any) -> User:
    email = email or f"u{uuid.uuid4().hex[:10]}@example.com"
    response = client.post("/auth/register", json={"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    return User(id=body["user"]["id"], email=body["user"]["email"], token=body["token"],
                refresh_token=body["refreshToken"])


def place_order(client: Any, user: User, body: dict[str, Any]) -> uuid.UUID:
    """POST an order that must be accepted (202); its orderId."""
    answer = client.post("/api/trading/orders", json=body, headers=user.headers)
    assert answer.status_code == 202, answer.text
    return uuid.UUID(answer.json()["orderId"])


def project(runtime: Runtime, audit: bool = False) -> None:
    """Run the real projector over the whole notification log (it is idempotent)."""
    from adapters.postgres.projector import Projector

    projector = Projector(runtime.settings.database_schema, audit=audit)
    app = runtime.app
    notifications = app.recorder.select_notifications(start=1, limit=10**6)
    with psycopg.connect(runtime.database_url) as conn:
        for notification in notifications:
            envelope = EventEnvelope.from_domain_event(
                app.mapper.to_domain_event(notification), notification.id)
            with conn.transaction():
                projector.handle(conn, envelope)


def insert_change(runtime: Runtime, account_id: str, kind: str, data: dict[str, Any],
                  entity_id: str = "e") -> int:
    """Write a view_changes row and NOTIFY, as the projector does; return its seq."""
    schema = runtime.settings.database_schema
    with psycopg.connect(runtime.database_url, autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            f'INSERT INTO "{schema}".view_changes (account_id, kind, entity_id, data, time) '
            "VALUES (%s, %s, %s, %s, now()) RETURNING seq",
            (account_id, kind, entity_id, json.dumps(data)),
        ).fetchone()
        assert row is not None
        payload = json.dumps({"seq": row[0], "accountId": account_id})
        conn.execute("SELECT pg_notify(%s, %s)", (changes_channel(schema), payload))
    return int(row[0])


class LiveServer:
    """A uvicorn server in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: Any) -> AsyncIterator[SseEvent]:
    """Parse a text/event-stream response into events (comments and pings skipped)."""
    event, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SseEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


async def next_event(events: AsyncIterator[SseEvent], timeout: float = 5.0) -> SseEvent:
    return await asyncio.wait_for(anext(events), timeout)
