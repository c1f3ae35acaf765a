"""Per-user SSE against a real uvicorn server: delivery, every tab, isolation, exact resume."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from adapters.platform.bootstrap import Runtime
from tests.support.api import (
    LIMIT_ORDER,
    PASSWORD,
    LiveServer,
    User,
    insert_change,
    next_event,
    project,
    sse_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def signup(client: httpx.AsyncClient) -> User:
    email = f"s{uuid.uuid4().hex[:10]}@example.com"
    body = (await client.post("/auth/register", json={"email": email, "password": PASSWORD}))
    assert body.status_code == 201, body.text
    data = body.json()
    return User(data["user"]["id"], email, data["token"], data["refreshToken"])


def stream_headers(user: User, last_event_id: int | None = None) -> dict[str, str]:
    headers = dict(user.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return headers


async def test_changes_reach_every_tab_of_the_user_and_no_one_else(
        live_api: LiveServer, runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        alice, bob = await signup(client), await signup(client)
        async with client.stream("GET", "/api/stream", headers=stream_headers(alice)) as tab1, \
                client.stream("GET", "/api/stream", headers=stream_headers(alice)) as tab2, \
                client.stream("GET", "/api/stream", headers=stream_headers(bob)) as bobs:
            assert tab1.status_code == 200
            assert tab1.headers["content-type"].startswith("text/event-stream")
            streams = [sse_events(r) for r in (tab1, tab2, bobs)]
            for events in streams:
                assert (await next_event(events)).event == "READY"
            bob_seq = insert_change(runtime, bob.id, "TRADE", {"tradeId": "b-1"})
            alice_seq = insert_change(runtime, alice.id, "ORDER_UPDATE", {"orderId": "a-1"})
            for events in streams[:2]:
                got = await next_event(events)
                assert (got.event, got.id, got.json) == (
                    "ORDER_UPDATE", str(alice_seq), {"orderId": "a-1"})
            got = await next_event(streams[2])
            assert (got.event, got.id, got.json) == ("TRADE", str(bob_seq), {"tradeId": "b-1"})
            # Alice's tabs never saw Bob's trade: their next event is Alice's next change.
            pos = insert_change(runtime, alice.id, "POSITION", {"symbol": "BTCUSDT"})
            for events in streams[:2]:
                assert (await next_event(events)).id == str(pos)


async def test_resume_with_last_event_id_replays_exactly_the_missed_changes(
        live_api: LiveServer, runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        user = await signup(client)
        seqs = [insert_change(runtime, user.id, "ORDER_UPDATE", {"n": n}) for n in range(5)]
        async with client.stream("GET", "/api/stream",
                                 headers=stream_headers(user, seqs[1])) as response:
            events = sse_events(response)
            replayed = [await next_event(events) for _ in range(3)]
            assert [e.id for e in replayed] == [str(s) for s in seqs[2:]]
            assert [e.json["n"] for e in replayed] == [2, 3, 4]
            ready = await next_event(events)
            assert ready.event == "READY" and ready.json == {"seq": seqs[-1]}
            live = insert_change(runtime, user.id, "TRADE", {"n": 5})
            got = await next_event(events)
            assert got.id == str(live) and got.json == {"n": 5}
        # The query parameter works too (EventSource reconnects can't always set headers).
        async with client.stream("GET", "/api/stream",
                                 params={"lastEventId": str(seqs[3])},
                                 headers=user.headers) as response:
            events = sse_events(response)
            ids = [(await next_event(events)).id for _ in range(2)]
            assert ids == [str(seqs[4]), str(live)]


async def test_a_burst_during_connect_arrives_once_each_in_order(
        live_api: LiveServer, runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        user = await signup(client)
        first = insert_change(runtime, user.id, "ORDER_UPDATE", {"n": 0})
        async with client.stream("GET", "/api/stream",
                                 headers=stream_headers(user, first)) as response:
            events = sse_events(response)
            burst = [insert_change(runtime, user.id, "ORDER_UPDATE", {"n": n})
                     for n in range(1, 41)]
            got: list[int] = []
            while len(got) < len(burst):
                event = await next_event(events)
                if event.event != "READY":
                    got.append(int(event.id or 0))
            assert got == burst


async def test_stream_auth_bearer_cookie_stream_token_and_refusals(
        live_api: LiveServer, runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        user = await signup(client)  # the client now holds the tl_access cookie
        async with client.stream("GET", "/api/stream") as by_cookie:
            assert by_cookie.status_code == 200
            assert (await next_event(sse_events(by_cookie))).event == "READY"
        client.cookies.clear()
        refused = await client.get("/api/stream")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        token = (await client.post("/api/stream-token", headers=user.headers)).json()
        assert token["expiresIn"] == 60
        async with client.stream("GET", "/api/stream",
                                 params={"token": token["token"]}) as by_token:
            assert by_token.status_code == 200
            assert (await next_event(sse_events(by_token))).event == "READY"
        # An access token is not a stream token, and a stream token cannot mint another.
        wrong = await client.get("/api/stream", params={"token": user.token})
        assert wrong.status_code == 401
        again = await client.post("/api/stream-token",
                                  headers={"Authorization": f"Bearer {token['token']}"})
        assert again.status_code == 401
        bad_id = await client.get("/api/stream", headers=stream_headers(user) | {
            "Last-Event-ID": "abc"})
        assert bad_id.status_code == 422


async def test_an_order_placed_over_http_streams_back_through_the_projector(
        live_api: LiveServer, runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        user = await signup(client)
        async with client.stream("GET", "/api/stream", headers=user.headers) as response:
            events = sse_events(response)
            assert (await next_event(events)).event == "READY"
            placed = await client.post("/api/trading/orders", json=LIMIT_ORDER,
                                       headers=user.headers)
            order_id = placed.json()["orderId"]
            project(runtime)  # what the projector process does, with its NOTIFY
            update = await next_event(events)
            assert update.event == "ORDER_UPDATE"
            assert update.json["orderId"] == order_id and update.json["status"] == "PENDING"
            got: Any = await client.get(f"/api/trading/orders/{order_id}", headers=user.headers)
            assert got.json() == update.json
