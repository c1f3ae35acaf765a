"""The API's pieces without I/O: tokens, rate limits, time travel parsing, idempotency keys,
error mapping, the SSE hub's seam, and market-data mapping and reconnects."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from adapters.api import tokens as tokens_module
from adapters.api.errors import ApiError, status_for
from adapters.api.hub import ChangeHub
from adapters.api.ratelimit import RateLimiter
from adapters.api.routes.orders import client_order_id_for
from adapters.api.routes.queries import with_mark
from adapters.api.serializers import parse_as_of, public_payload
from adapters.api.tokens import STREAM_AUDIENCE, TokenService
from adapters.binance import marketdata as md
from domain.errors import (
    AuthenticationFailed,
    ClientOrderIdReused,
    InvalidPrice,
    OrderNotFound,
    ValidationFailed,
)

SECRET = "s" * 48


def service() -> TokenService:
    return TokenService(SECRET, "tradeledger", "tradeledger-api", access_minutes=15)


def test_token_round_trip_and_stream_tokens_are_a_different_audience() -> None:
    tokens, account = service(), uuid.uuid4()
    principal = tokens.verify(tokens.access_token(account, "a@b.io", uuid.uuid4()))
    assert principal.account_id == account and principal.email == "a@b.io"
    stream = tokens.stream_token(account, "a@b.io", uuid.uuid4())
    assert tokens.verify(stream, audience=STREAM_AUDIENCE).account_id == account
    with pytest.raises(ApiError) as refused:
        tokens.verify(stream)
    assert refused.value.status == 401
    claims = jwt.decode(stream, SECRET, algorithms=["HS256"], audience=STREAM_AUDIENCE)
    assert claims["exp"] - claims["iat"] == 60


def test_a_cached_token_is_still_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = service()
    token = tokens.access_token(uuid.uuid4(), "a@b.io", uuid.uuid4())
    assert tokens.verify(token) is tokens.verify(token)  # the second came from the cache
    later = time.time() + 16 * 60
    calls: list[str] = []

    def decode_later(*args: Any, **kwargs: Any) -> Any:  # pyjwt's view 16 minutes on
        calls.append("decode")
        raise jwt.ExpiredSignatureError("expired")

    monkeypatch.setattr(tokens_module.time, "time", lambda: later)
    monkeypatch.setattr(tokens_module.jwt, "decode", decode_later)
    with pytest.raises(ApiError) as expired:
        tokens.verify(token)
    assert expired.value.code == "token_expired" and calls == ["decode"]


def test_rate_limiter_allows_a_burst_then_says_how_long_to_wait() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # buckets are per key
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0


def test_rate_limiter_charges_a_cost_and_lets_one_above_the_burst_run_into_debt() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3.0, clock=lambda: now[0])
    assert limiter.acquire("a", 2) == 0.0
    assert limiter.acquire("a", 2) == pytest.approx(0.5)  # 1 token left, 2 needed
    assert limiter.acquire("a") == 0.0
    slow = RateLimiter(rate=1.0, clock=lambda: now[0])  # burst 1: a list of two still fits
    assert slow.acquire("a", 2) == 0.0
    assert slow.acquire("a") == pytest.approx(2.0)  # and is paid for: 1 token in debt
    now[0] += 2.0
    assert slow.acquire("a") == 0.0


def test_as_of_parses_versions_and_times() -> None:
    assert parse_as_of("3") == 3
    assert parse_as_of("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_as_of("2026-01-02T03:04:05").tzinfo is UTC  # type: ignore[union-attr]
    for bad in ("0", "yesterday", "", "-1"):
        with pytest.raises(ValidationFailed):
            parse_as_of(bad)


def test_client_order_ids_come_from_the_body_the_idempotency_key_or_are_new() -> None:
    assert client_order_id_for("mine", "key") == "mine"
    derived = client_order_id_for(None, "retry-1")
    assert derived == client_order_id_for(None, " retry-1 ") and len(derived) <= 36
    assert derived != client_order_id_for(None, "retry-2")
    assert client_order_id_for(None, None) != client_order_id_for(None, None)
    with pytest.raises(ValidationFailed):
        client_order_id_for(None, "   ")


def test_domain_errors_map_to_status_codes() -> None:
    assert status_for(InvalidPrice("x")) == 422
    assert status_for(OrderNotFound("x")) == 404
    assert status_for(ClientOrderIdReused("x")) == 409
    assert status_for(AuthenticationFailed("x")) == 401


def test_secrets_never_leave_in_payloads_and_positions_get_a_mark() -> None:
    payload = {"email": "a@b.io", "password_hash": "$argon2", "secret_ciphertext": "x",
               "api_key_ciphertext": "y", "key_id": "k1"}
    assert public_payload(payload) == {"email": "a@b.io", "key_id": "k1"}
    position = {"symbol": "BTCUSDT", "quantity": "-0.5", "averageEntryPrice": "100"}
    from decimal import Decimal

    marked = with_mark(position, Decimal("90"))
    assert marked["markPrice"] == "90" and marked["unrealizedPnl"] == "5.0"
    assert with_mark(position, None)["unrealizedPnl"] is None


@dataclass(frozen=True)
class FakeChange:
    seq: int
    account_id: str
    kind: str = "ORDER_UPDATE"
    entity_id: str = "e"
    data: Any = None


class FakeSource:
    def __init__(self) -> None:
        self.rows: list[FakeChange] = []

    def add(self, account: str) -> int:
        seq = len(self.rows) + 1
        self.rows.append(FakeChange(seq, account, data={"seq": seq}))
        return seq

    def changes_since(self, account_id: str, seq: int, limit: int = 500) -> list[Any]:
        return [r for r in self.rows if r.account_id == account_id and r.seq > seq][:limit]

    def latest_seq(self, account_id: str) -> int:
        return max([r.seq for r in self.rows if r.account_id == account_id], default=0)


def test_hub_resume_has_no_gap_and_no_duplicate_at_the_seam() -> None:
    async def scenario() -> list[Any]:
        source = FakeSource()
        hub = ChangeHub("postgresql://unused", source, channel="x_changes", poll_seconds=0.05)
        for _ in range(3):
            source.add("alice")
        source.add("bob")
        stream = hub.changes("alice", last_seq=1)
        got = [await anext(stream), await anext(stream)]  # replay of 2 and 3
        # Changes that land now are seen by the feed AND could be seen by a late replay.
        source.add("alice")
        hub._dispatch(json.dumps({"seq": 5, "accountId": "alice"}))
        got.append(await anext(stream))  # the seam marker
        got.append(await asyncio.wait_for(anext(stream), 2))
        source.add("bob")
        source.add("alice")
        got.append(await asyncio.wait_for(anext(stream), 2))  # found by the poll, no NOTIFY
        await stream.aclose()
        assert hub.subscriber_count() == 0
        await hub.stop()
        return got

    got = asyncio.run(scenario())
    assert [g if isinstance(g, int) else ("c", g.seq) for g in got] == [
        ("c", 2), ("c", 3), 3, ("c", 5), ("c", 7)]


class BatchingSource(FakeSource):
    """A source that reads several accounts at once, counting its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[dict[str, int]] = []

    def changes_for(self, cursors: dict[str, int], limit: int = 500) -> list[Any]:
        self.reads.append(dict(cursors))
        return sorted((c for a, seq in cursors.items() for c in self.changes_since(a, seq, limit)),
                      key=lambda c: c.seq)


def test_hub_reads_a_burst_of_notifications_with_one_query() -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[dict[str, int]]]:
        source = BatchingSource()
        source.add("alice")
        hub = ChangeHub("postgresql://unused", source, channel="x_changes", poll_seconds=30)
        alice, bob = hub.changes("alice", None), hub.changes("bob", None)
        assert await anext(alice) == 1 and await anext(bob) == 0  # the seams
        await asyncio.sleep(0.05)  # each new feed reads once on its own; not the burst's
        source.reads.clear()
        # One projector batch: changes of both accounts, one notification each, together.
        seqs = [source.add("alice"), source.add("bob"), source.add("alice")]
        hub._dispatch(json.dumps({"seq": seqs[2], "accountId": "alice"}))
        hub._dispatch(json.dumps({"seq": seqs[1], "accountId": "bob"}))
        got_alice = [await asyncio.wait_for(anext(alice), 2) for _ in range(2)]
        got_bob = [await asyncio.wait_for(anext(bob), 2)]
        await alice.aclose()
        await bob.aclose()
        await hub.stop()
        return got_alice, got_bob, source.reads

    got_alice, got_bob, reads = asyncio.run(scenario())
    assert [c.seq for c in got_alice] == [2, 4] and [c.seq for c in got_bob] == [3]
    assert reads == [{"alice": 1, "bob": 0}]  # one read for the burst, each from its cursor


def test_market_data_maps_binance_shapes() -> None:
    candle = md.candle_from_array([1700000000000, "1.5", "2", "1", "1.75", "10", 1, "0", 3])
    assert candle == {"time": 1700000000000, "open": "1.5", "high": "2", "low": "1",
                      "close": "1.75", "volume": "10"}
    live = md.candle_from_event({"t": 1, "o": "1", "h": "2", "l": "0.5", "c": "1.5", "v": "3",
                                 "x": True})
    assert live["closed"] is True and live["close"] == "1.5"
    tick = md.ticker_from_event({"s": "BTCUSDT", "c": "100.5", "P": "-1.2", "E": 5})
    assert tick["price"] == "100.5" and tick["change24h"] == "-1.2" and tick["time"] == 5


def test_a_dropped_market_socket_is_reopened_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(md, "BACKOFF_START", 0.01)
    plans: list[Any] = [
        [{"e": "kline", "n": 1}, {"e": "error", "m": "closed"}],  # python-binance gave up
        ConnectionError("refused"),                               # the next open fails
        [{"e": "kline", "n": 2}, {"e": "kline", "n": 3}],         # then it works again
    ]
    opened: list[int] = []

    class FakeSocket:
        def __init__(self, plan: Any) -> None:
            self.plan = plan

        async def __aenter__(self) -> FakeSocket:
            if isinstance(self.plan, Exception):
                raise self.plan
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def recv(self) -> dict[str, Any]:
            message: dict[str, Any] = self.plan.pop(0)
            return message

    def open_socket() -> FakeSocket:
        opened.append(1)
        return FakeSocket(plans[len(opened) - 1])

    async def scenario() -> list[int]:
        market = md.BinanceMarketData(watch=[])
        market._client = object()  # no real client needed
        messages = market._socket_messages(open_socket, "test")
        got = [(await asyncio.wait_for(anext(messages), 2))["n"] for _ in range(3)]
        await messages.aclose()
        return got

    assert asyncio.run(scenario()) == [1, 2, 3]
    assert len(opened) == 3  # dropped, refused once, reopened
