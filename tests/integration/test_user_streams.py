"""Issue 15, the worker's streams against the paper exchange: one WS-API connection for many
accounts, reconcile on every subscription (the first too), resubscribe after serverShutdown
and eventStreamTerminated, and keys refused on the subscription shown on the account."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

import pytest

from adapters.api.app import create_app
from adapters.paper_exchange.runner import admin_post
from commands.messages import ConnectExchangeKeys
from domain.values import OrderStatus
from tests.support.api import TestClient, register
from tests.support.worker import Stack, wait_for

pytestmark = pytest.mark.integration


def gate_subscriptions(s: Stack) -> threading.Event:
    """Hold every (re)subscription until the returned event is set (a gap made on purpose)."""
    streams = s.worker.streams
    assert streams is not None
    gate = threading.Event()
    gate.set()
    credentials = streams._credentials

    def held(account_id: UUID) -> Any:
        gate.wait(30)
        return credentials(account_id)

    streams._credentials = held
    return gate


def resting_order(s: Stack, paper_exchange: Any, account_id: UUID) -> UUID:
    paper_exchange.set_price("LINKUSDT", "20.000")
    order_id = s.place(account_id, "LIMIT", symbol="LINKUSDT", quantity="1.00", price="19.500")
    s.wait_status(order_id, OrderStatus.NEW)
    return order_id


def test_one_connection_carries_every_account(stack: Stack, paper_exchange: Any) -> None:
    stack.start()
    accounts = [stack.account() for _ in range(4)]
    streams = stack.worker.streams
    assert streams is not None
    wait_for(lambda: all(a in streams.connected for a in accounts), 15, "every subscription")
    assert streams.connections_opened == 1
    sessions = set()
    for account_id in accounts:
        key = stack.app.exchange_credentials(account_id).api_key
        sessions |= {id(x) for x in paper_exchange.server.exchange._followers.get(key, ())}
    assert len(sessions) == 1  # the exchange sees one WS-API connection for all four


def test_the_first_subscription_reconciles_a_fill_it_missed(
        stack: Stack, paper_exchange: Any) -> None:
    stack.worker.sweep_interval = 0  # no sweeper: only the subscription may reconcile
    gate = gate_subscriptions(stack)
    gate.clear()
    stack.start()
    account_id = stack.account()
    try:
        order_id = resting_order(stack, paper_exchange, account_id)
        paper_exchange.set_price("LINKUSDT", "19.400")  # fills while no stream listens
        time.sleep(1.0)
        assert stack.app.get_order(order_id).status is OrderStatus.NEW
        gate.set()
        stack.wait_status(order_id, OrderStatus.FILLED)
    finally:
        gate.set()
        paper_exchange.set_price("LINKUSDT", "18.500", freeze=False)


def test_server_shutdown_resubscribes_and_reconciles_the_gap(
        stack: Stack, paper_exchange: Any) -> None:
    stack.worker.sweep_interval = 0
    gate = gate_subscriptions(stack)
    stack.start()
    account_id = stack.account()
    streams = stack.worker.streams
    assert streams is not None
    try:
        wait_for(lambda: account_id in streams.connected, 15, "the first subscription")
        order_id = resting_order(stack, paper_exchange, account_id)
        gate.clear()
        # The server would close the connection only 30 s later: leaving at once shows the
        # worker acted on the event, not on the close.
        admin_post(paper_exchange.url, "/admin/ws", {"event": "serverShutdown",
                                                     "closeAfterMs": 30000})
        wait_for(lambda: account_id not in streams.connected, 10, "the shutdown to be seen")
        paper_exchange.set_price("LINKUSDT", "19.400")  # the fill in the gap
        time.sleep(1.0)
        assert stack.app.get_order(order_id).status is OrderStatus.NEW
        gate.set()
        wait_for(lambda: account_id in streams.connected, 15, "the resubscription")
        assert streams.connections_opened == 2
        stack.wait_status(order_id, OrderStatus.FILLED)
    finally:
        gate.set()
        paper_exchange.set_price("LINKUSDT", "18.500", freeze=False)


def test_event_stream_terminated_resubscribes_on_the_same_connection(
        stack: Stack, paper_exchange: Any) -> None:
    stack.start()
    account_id = stack.account()
    streams = stack.worker.streams
    assert streams is not None
    wait_for(lambda: account_id in streams.connected, 15, "the first subscription")
    made = streams.subscriptions_made
    key = stack.app.exchange_credentials(account_id).api_key
    admin_post(paper_exchange.url, "/admin/ws", {"event": "eventStreamTerminated",
                                                 "apiKey": key})
    wait_for(lambda: streams.subscriptions_made > made and account_id in streams.connected,
             15, "the resubscription")
    assert streams.connections_opened == 1
    # And events flow again on the new subscription.
    order_id = resting_order(stack, paper_exchange, account_id)
    try:
        paper_exchange.set_price("LINKUSDT", "19.400")
        stack.wait_status(order_id, OrderStatus.FILLED)
    finally:
        paper_exchange.set_price("LINKUSDT", "18.500", freeze=False)


def test_keys_refused_on_the_subscription_show_on_the_account_and_are_not_retried(
        stack: Stack) -> None:
    stack.start()
    account_id = stack.account()
    streams = stack.worker.streams
    assert streams is not None
    wait_for(lambda: account_id in streams.connected, 15, "the paper keys' subscription")
    # Keys the exchange does not know (revoked there, or a typo stored before checks existed).
    stack.app.handle(ConnectExchangeKeys(account_id=account_id, api_key="REVOKED-KEY-0001",
                                         secret_key="whatever", environment="paper"))
    wait_for(lambda: stack.app.get_account(account_id).keys_rejection is not None, 15,
             "the rejection to be recorded")
    rejection = stack.app.get_account(account_id).keys_rejection
    assert rejection is not None and rejection["code"] == -2015
    time.sleep(3)  # longer than several backoff rounds: a retry loop would show here
    assert streams.refusals[account_id] == 1
    assert account_id not in streams.connected

    with TestClient(create_app(stack.rt)) as client:
        user = register(client)  # only to get a token; then look at the account above
        tokens = client.app.state.ctx.tokens
        _, session_id = client.app.state.ctx.auth_store.issue(account_id)  # a signed-in session
        token = tokens.access_token(account_id, stack.app.get_account(account_id).email,
                                    session_id)
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert user.id != str(account_id)
    keys = me["exchangeKeys"]
    assert keys["status"] == "rejected"
    assert "-2015" in keys["reason"] and "Invalid API-key" in keys["reason"]
