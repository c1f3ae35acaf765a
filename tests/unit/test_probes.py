"""The probe endpoints every non-API process serves on TRADELEDGER_METRICS_PORT."""

from __future__ import annotations

import json
from typing import Any

from adapters.platform.metrics import probe_app


def call(app: Any, path: str) -> tuple[str, bytes]:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return seen["status"], body


def test_health_ready_and_metrics() -> None:
    state = {"broker": True}

    def broken() -> bool:
        raise OSError("refused")

    app = probe_app({"broker": lambda: state["broker"], "exchange": lambda: True})
    assert call(app, "/health")[0] == "200 OK"
    status, body = call(app, "/ready")
    assert status == "200 OK" and json.loads(body)["checks"] == {"broker": True,
                                                                 "exchange": True}
    state["broker"] = False
    assert call(app, "/ready")[0].startswith("503")
    assert call(probe_app({"postgres": broken}), "/ready")[0].startswith("503")
    status, body = call(app, "/metrics")
    assert status.startswith("200") and b"tradeledger_relay_lag_events" in body
