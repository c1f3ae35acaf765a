"""The execution worker's test stack: a runtime, the gateway and the worker on the paper
exchange, with the relay and the worker's consumer in threads (tests/integration)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from adapters.binance.gateway import BinanceGateway
from adapters.kafka.consumer import ConsumerRunner
from adapters.kafka.relay import Relay
from adapters.platform.bootstrap import Runtime, bootstrap
from adapters.postgres.readmodels import create_read_models
from adapters.processes.worker import ExecutionWorker
from commands.execution import RetryPolicy, exchange_client_order_id
from commands.messages import PlaceOrder, RegisterAccount
from domain.values import OrderStatus
from tests.support.postgres import make_test_settings


def wait_for(condition: Callable[[], bool], timeout: float,
             what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(0.05)


@dataclass
class Stack:
    """One test's system: runtime, gateway, worker; relay and consumer run in threads."""

    rt: Runtime
    gateway: BinanceGateway
    worker: ExecutionWorker
    bootstrap: str
    topic: str
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def app(self) -> Any:
        return self.rt.app

    def run(self, loop: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=loop, args=(self.stop,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        """Start the worker, the relay and the worker's consumer."""
        self.worker.start()
        relay = Relay(app=self.app, database_url=self.rt.database_url,
                      bootstrap_servers=self.bootstrap, topic=self.topic, partitions=6,
                      poll_interval=0.05)
        runner = ConsumerRunner(database_url=self.rt.database_url,
                                schema=self.rt.settings.database_schema,
                                bootstrap_servers=self.bootstrap, topic=self.topic,
                                handler=self.worker, poll_timeout_ms=20)
        self.run(relay.run)
        self.run(runner.run)

    def account(self, email: str | None = None) -> UUID:
        account_id: UUID = self.app.handle(RegisterAccount(
            email=email or f"{uuid.uuid4().hex[:8]}@example.com", password="p" * 12))
        return account_id

    def place(self, account_id: UUID, order_type: str = "MARKET", symbol: str = "ETHUSDT",
              quantity: str = "0.5", price: str | None = None) -> UUID:
        order_id: UUID = self.app.handle(PlaceOrder(
            account_id=account_id, client_order_id=uuid.uuid4().hex[:20], symbol=symbol,
            side="BUY", order_type=order_type, quantity=quantity, price=price))
        return order_id

    def wait_status(self, order_id: UUID, *statuses: OrderStatus,
                    timeout: float = 15.0) -> Any:
        wait_for(lambda: self.app.get_order(order_id).status in statuses, timeout,
                 lambda: f"order {order_id} to be {'/'.join(s.value for s in statuses)} "
                 f"(is {self.app.get_order(order_id).status.value})")
        return self.app.get_order(order_id)

    def exchange_orders(self, order_id: UUID) -> list[dict[str, Any]]:
        order = self.app.get_order(order_id)
        creds = self.app.exchange_credentials(order.account_id)
        coid = exchange_client_order_id(order_id)
        return [o for o in self.gateway.all_orders(creds, order.symbol)
                if o["clientOrderId"] == coid]


@contextmanager
def worker_stack(pg_url: str, pg_schema: str, tmp_path: Path, kafka_bootstrap: str,
                 kafka_topic: str, exchange_url: str,
                 gone_confirm: float | None = None) -> Iterator[Stack]:
    """A worker on the paper exchange at `exchange_url`, with quick retries (and, given,
    a shorter proof that the exchange lost a resting order); stopped after."""
    settings = make_test_settings(pg_url, pg_schema, tmp_path,
                                  paper_exchange_url=exchange_url, kafka_topic=kafka_topic)
    rt = bootstrap(settings, pg_url)
    with psycopg.connect(pg_url) as conn, conn.transaction():
        create_read_models(conn, pg_schema)
    gateway = BinanceGateway.from_settings(settings, backoff=0.05)
    policy = RetryPolicy(initial_delay=0.05, max_delay=0.5)
    if gone_confirm is not None:
        policy = replace(policy, gone_confirm=gone_confirm)
    worker = ExecutionWorker(rt, gateway, lanes=4, sweep_interval=1.0, stuck_after=3.0,
                             policy=policy)
    s = Stack(rt, gateway, worker, kafka_bootstrap, kafka_topic)
    try:
        yield s
    finally:
        s.stop.set()
        for thread in s.threads:
            thread.join(10)
        worker.stop()
        gateway.close()
        rt.close()


@contextmanager
def api_over(stack: Stack) -> Iterator[Any]:
    """Start the stack and yield a TestClient of the API over the runtime its live worker,
    relay and paper exchange serve."""
    from adapters.api.app import create_app
    from tests.support.api import TestClient

    # The TestClient speaks plain HTTP to "testserver": a Secure cookie would never come back.
    stack.rt.settings.cookie_secure = "never"
    stack.start()
    with TestClient(create_app(stack.rt)) as client:
        yield client


def user_with_paper_keys(stack: Stack, client: Any) -> Any:
    """A registered user whose paper keys the worker has issued (it does so on registration)."""
    from tests.support.api import register

    user = register(client)
    wait_for(lambda: stack.app.get_account(UUID(user.id)).has_exchange_keys, 15, "paper keys")
    return user
