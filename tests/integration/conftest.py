"""Fixtures of the integration tests: a TestClient with the lifespan running, a live uvicorn,
and the execution worker's stack on the session's paper exchange."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from adapters.api.app import create_app
from adapters.platform.bootstrap import Runtime
from adapters.platform.settings import Settings, get_settings
from tests.support.api import LiveServer, TestClient
from tests.support.worker import Stack, worker_stack


@pytest.fixture
def api_app(runtime: Runtime) -> FastAPI:
    # The TestClient speaks plain HTTP to "testserver": a Secure cookie would never come back.
    runtime.settings.cookie_secure = "never"
    return create_app(runtime)


@pytest.fixture
def api(api_app: FastAPI) -> Iterator[Any]:
    with TestClient(api_app) as client:
        yield client


@pytest.fixture
def live_api(runtime: Runtime) -> Iterator[LiveServer]:
    server = LiveServer(create_app(runtime, hub_poll_seconds=30.0)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack(pg_url: str, pg_schema: str, tmp_path: Path, kafka_bootstrap: str,  # type: ignore[no-untyped-def]
          kafka_topic: str, paper_exchange) -> Iterator[Stack]:
    paper_exchange.clear_faults()
    try:
        with worker_stack(pg_url, pg_schema, tmp_path, kafka_bootstrap, kafka_topic,
                          paper_exchange.url) as s:
            yield s
    finally:
        paper_exchange.clear_faults()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point `tradeledger` sub-commands at the test's database and schema."""
    monkeypatch.setenv("TRADELEDGER_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("TRADELEDGER_DATABASE_SCHEMA", settings.database_schema)
    assert settings.master_keys and settings.jwt_secret
    monkeypatch.setenv("TRADELEDGER_MASTER_KEYS", settings.master_keys.get_secret_value())
    monkeypatch.setenv("TRADELEDGER_JWT_SECRET", settings.jwt_secret.get_secret_value())
    monkeypatch.setenv("TRADELEDGER_DATA_DIR", str(Path(settings.data_dir)))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
