"""Fixtures of the API tests: a TestClient with the lifespan running, and a live uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from adapters.api.app import create_app
from adapters.platform.bootstrap import Runtime
from tests.support.api import LiveServer, TestClient


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
