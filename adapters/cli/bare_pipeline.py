"""The bare pipeline of `tradeledger bench`: TradeLedger's hops with its libraries and no
business logic, so CPU per order and latency have a floor measured in the same run.

HTTP POST (JWT verified, body checked by pydantic) -> one insert + commit -> kafka-python-ng
produce -> consumer process 1 -> a signed python-binance call to the paper exchange -> two
inserts + commit -> produce -> consumer process 2 -> insert + NOTIFY -> an SSE message to the
client. Each part runs as `python -m adapters.cli.bare_pipeline <role>`; `start_bare` starts
the three processes against a running system's Postgres, broker and paper exchange, in a
schema of their own that `BarePipeline.stop` drops. No event store, no aggregates, no
idempotency, no recovery: it is a yardstick, never a product path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "bare_updates"
AUDIENCE = "bare-pipeline"
TABLES = (
    "CREATE TABLE {s}.orders (id uuid PRIMARY KEY, account text NOT NULL, body jsonb NOT NULL)",
    "CREATE TABLE {s}.submissions (order_id uuid PRIMARY KEY, body jsonb NOT NULL)",
    "CREATE TABLE {s}.fills (order_id uuid PRIMARY KEY, body jsonb NOT NULL)",
    "CREATE TABLE {s}.updates (seq bigserial PRIMARY KEY, account text NOT NULL, "
    "body jsonb NOT NULL)",
)


def _connect(database_url: str, schema: str) -> Any:
    import psycopg

    return psycopg.connect(database_url, options=f"-c search_path={schema}")


def _producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer

    # The relay's settings that matter for cost: acks=all and a short linger.
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


def _consumer(bootstrap: str, topic: str, fetch_wait_ms: int) -> Any:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=fetch_wait_ms)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    return consumer


# ---- the API process ------------------------------------------------------------------
class OrderBody(BaseModel):
    """The order a bare POST carries (checked as strictly as TradeLedger's schema's types)."""

    symbol: str = Field(min_length=1, max_length=20)
    side: str = Field(pattern="^(BUY|SELL)$")
    type: str = Field(pattern="^(MARKET|LIMIT)$")
    quantity: str = Field(min_length=1, max_length=40)


def run_api(port: int, database_url: str, schema: str, bootstrap: str, topic: str,
            secret: str) -> None:
    """Serve POST /api/trading/orders and GET /api/stream until killed."""
    import jwt
    import psycopg
    import uvicorn
    from psycopg_pool import ConnectionPool

    app = FastAPI()
    producer = _producer(bootstrap)
    # A pool as TradeLedger's API has (its default size): one connection per threadpool
    # thread would exceed the embedded Postgres's connection limit.
    pool = ConnectionPool(database_url, min_size=10, max_size=10, open=True,
                          kwargs={"options": f"-c search_path={schema}"})
    queues: dict[str, set[asyncio.Queue[str]]] = {}

    def account_of(authorization: str | None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "missing token")
        try:
            claims = jwt.decode(authorization[7:], secret, algorithms=["HS256"],
                                audience=AUDIENCE)
        except jwt.PyJWTError as exc:
            raise HTTPException(401, "bad token") from exc
        return str(claims["sub"])

    @app.post("/api/trading/orders", status_code=202)
    def place(body: OrderBody, authorization: str | None = Header(None)) -> dict[str, str]:
        account = account_of(authorization)
        order_id = str(uuid.uuid4())
        payload = {"orderId": order_id, "account": account, **body.model_dump()}
        text = json.dumps(payload)
        with pool.connection() as conn:  # commits at the end of the block
            conn.execute("INSERT INTO orders (id, account, body) VALUES (%s, %s, %s)",
                         (order_id, account, text))
        producer.send(topic, text.encode())
        return {"orderId": order_id}

    @app.get("/api/stream", response_model=None)
    async def stream(authorization: str | None = Header(None)) -> EventSourceResponse:
        account = account_of(authorization)
        queue: asyncio.Queue[str] = asyncio.Queue()
        queues.setdefault(account, set()).add(queue)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                yield {"event": "READY", "data": "{}"}
                while True:
                    yield {"event": "ORDER_UPDATE", "data": await queue.get()}
            finally:
                queues[account].discard(queue)

        return EventSourceResponse(events())

    async def listen() -> None:
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, options=f"-c search_path={schema}")
        await conn.execute(f"LISTEN {CHANNEL}")
        async for note in conn.notifies():
            account, _, data = note.payload.partition("|")
            for queue in queues.get(account, ()):
                queue.put_nowait(data)

    @app.middleware("http")
    async def start_listening(request: Any, call_next: Any) -> Any:
        # Started by the first request, inside uvicorn's loop (on_event is deprecated).
        if getattr(app.state, "listener", None) is None:
            app.state.listener = asyncio.create_task(listen())
            await asyncio.sleep(0.05)  # LISTEN before the first order can be NOTIFYed
        return await call_next(request)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ---- consumer 1: the exchange call -----------------------------------------------------
def run_executor(database_url: str, schema: str, bootstrap: str, topic_in: str,
                 topic_out: str, paper_url: str, keys: dict[str, list[str]],
                 fetch_wait_ms: int, threads: int) -> None:
    """Send every order to the paper exchange with its account's keys (an exchange limits
    orders per account, as Binance does) and record the answer, until killed."""
    import traceback

    from binance.client import Client

    from adapters.binance.loopback import LoopbackSession

    local = threading.local()
    producer = _producer(bootstrap)

    def client_for(account: str) -> Any:
        clients: dict[str, Any] = local.__dict__.setdefault("clients", {})
        client = clients.get(account)
        if client is None:
            api_key, secret_key = keys[account]
            client = Client(api_key, secret_key, ping=False)
            client.API_URL = paper_url.rstrip("/") + "/api"
            session = LoopbackSession()  # as the worker's gateway does for the paper exchange
            session.headers.update(client.session.headers)
            client.session = session
            clients[account] = client
        return client

    def execute(raw: bytes) -> None:
        if not hasattr(local, "conn"):
            local.conn = _connect(database_url, schema)
        order = json.loads(raw)
        answer = client_for(order["account"]).create_order(
            symbol=order["symbol"], side=order["side"], type=order["type"],
            quantity=order["quantity"], newClientOrderId=order["orderId"].replace("-", ""),
            newOrderRespType="FULL")
        conn = local.conn
        conn.execute("INSERT INTO submissions (order_id, body) VALUES (%s, %s)",
                     (order["orderId"], raw.decode()))
        out = json.dumps({"orderId": order["orderId"], "account": order["account"],
                          "status": answer["status"], "fills": answer.get("fills", [])})
        conn.execute("INSERT INTO fills (order_id, body) VALUES (%s, %s)", (order["orderId"], out))
        conn.commit()
        producer.send(topic_out, out.encode())

    consumer = _consumer(bootstrap, topic_in, fetch_wait_ms)
    # Orders run concurrently, like the worker's lanes; at most 4 per thread wait their turn.
    slots = threading.BoundedSemaphore(threads * 4)

    def run_one(raw: bytes) -> None:
        try:
            execute(raw)
        except Exception:  # a lost order shows in the bench's count; say why here
            traceback.print_exc()
        finally:
            slots.release()

    with ThreadPoolExecutor(threads) as pool:
        while True:
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    slots.acquire()
                    pool.submit(run_one, record.value)


# ---- consumer 2: the read side ---------------------------------------------------------
def run_projector(database_url: str, schema: str, bootstrap: str, topic_in: str,
                  fetch_wait_ms: int) -> None:
    """Store every update and NOTIFY it, one transaction per fetched batch, until killed."""
    conn = _connect(database_url, schema)
    consumer = _consumer(bootstrap, topic_in, fetch_wait_ms)
    while True:
        for records in consumer.poll(timeout_ms=1000).values():
            with conn.cursor() as cur:
                for record in records:
                    update = json.loads(record.value)
                    data = json.dumps({"orderId": update["orderId"], "status": update["status"]})
                    cur.execute("INSERT INTO updates (account, body) VALUES (%s, %s)",
                                (update["account"], data))
                    cur.execute("SELECT pg_notify(%s, %s)",
                                (CHANNEL, f"{update['account']}|{data}"))
            conn.commit()


# ---- starting and stopping from the bench ----------------------------------------------
@dataclass
class BarePipeline:
    """Handles on the bare pipeline's three processes."""

    api_url: str
    secret: str
    database_url: str
    schema: str
    accounts: list[str] = field(default_factory=list)  # each with its own exchange keys
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_path: Path | None = None  # the processes' output
    _issued: int = 0

    def token(self) -> str:
        """The next account's bearer token (round robin over `accounts`)."""
        import jwt

        account = self.accounts[self._issued % len(self.accounts)]
        self._issued += 1
        now = int(time.time())
        return str(jwt.encode({"sub": account, "aud": AUDIENCE, "iat": now,
                               "exp": now + 3600}, self.secret, algorithm="HS256"))

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        """Stop the processes and drop the schema."""
        import psycopg

        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


def start_bare(database_url: str, bootstrap: str, paper_url: str, *, accounts: int = 20,
               fetch_wait_ms: int = 10, threads: int = 8,
               timeout: float = 60.0) -> BarePipeline:
    """Create the schema and topics, start the three processes, wait for the API."""
    import secrets

    import httpx
    import psycopg

    from adapters.kafka.topics import ensure_topic
    from adapters.paper_exchange.runner import admin_post, request_keys
    from adapters.platform.net import free_port

    run = uuid.uuid4().hex[:8]
    schema = f"bare_{run}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for statement in TABLES:
            conn.execute(statement.format(s=schema))
    orders, updates = f"bare-orders-{run}", f"bare-updates-{run}"
    for topic in (orders, updates):
        ensure_topic(bootstrap, topic, 1)
    # The paper exchange counts request weight per IP and minute, as Binance does; both
    # pipelines call it from this machine, so TradeLedger's run just before would leave the
    # bare one a fraction of the minute's weight. Start the counters afresh (same limits).
    admin_post(paper_url, "/admin/limits", {})
    keys = {str(uuid.uuid4()): request_keys(paper_url) for _ in range(max(1, accounts))}
    port = free_port()
    pipeline = BarePipeline(f"http://127.0.0.1:{port}", secrets.token_hex(32), database_url,
                            schema, accounts=list(keys))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "adapters.cli.bare_pipeline"]
    common = ["--database-url", database_url, "--schema", schema, "--bootstrap", bootstrap]
    argvs = [
        [*base, "api", *common, "--port", str(port), "--topic", orders],
        [*base, "executor", *common, "--topic-in", orders, "--topic-out", updates,
         "--paper-url", paper_url, "--fetch-wait-ms", str(fetch_wait_ms),
         "--threads", str(threads)],
        [*base, "projector", *common, "--topic-in", updates, "--fetch-wait-ms",
         str(fetch_wait_ms)],
    ]
    # Secrets reach the children through their environment, never their command lines.
    env.update(BARE_JWT_SECRET=pipeline.secret, BARE_KEYS=json.dumps(
        {account: [k.api_key, k.secret_key] for account, k in keys.items()}))
    pipeline.log_path = Path(tempfile.mkstemp(prefix="bare-pipeline-", suffix=".log")[1])
    with open(pipeline.log_path, "ab") as log:
        for argv in argvs:
            pipeline.processes.append(subprocess.Popen(  # noqa: S603 - our own argv
                argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in pipeline.processes):
            pipeline.stop()
            raise RuntimeError(f"a bare-pipeline process exited early; see {pipeline.log_path}")
        try:
            httpx.post(pipeline.api_url + "/api/trading/orders", json={}, timeout=1)
            return pipeline
        except httpx.TransportError:
            time.sleep(0.2)
    pipeline.stop()
    raise RuntimeError(f"the bare pipeline's API was not up in {timeout} s")


def main(argv: list[str] | None = None) -> None:
    """Run one role of the bare pipeline (started by `start_bare`)."""
    parser = argparse.ArgumentParser(prog="bare_pipeline")
    parser.add_argument("role", choices=["api", "executor", "projector"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--topic", default="")
    parser.add_argument("--topic-in", default="")
    parser.add_argument("--topic-out", default="")
    parser.add_argument("--paper-url", default="")
    parser.add_argument("--fetch-wait-ms", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    if args.role == "api":
        run_api(args.port, args.database_url, args.schema, args.bootstrap, args.topic,
                os.environ["BARE_JWT_SECRET"])
    elif args.role == "executor":
        run_executor(args.database_url, args.schema, args.bootstrap, args.topic_in,
                     args.topic_out, args.paper_url, json.loads(os.environ["BARE_KEYS"]),
                     args.fetch_wait_ms, args.threads)
    else:
        run_projector(args.database_url, args.schema, args.bootstrap, args.topic_in,
                      args.fetch_wait_ms)


if __name__ == "__main__":
    main()
