"""The WS-API client's pure parts: request signing, rateLimits as the budget's headers, and
what the gateway does with the order transport setting (no I/O)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from adapters.binance.gateway import BinanceGateway
from adapters.binance.ratelimit import RateBudget
from adapters.binance.ws_api import (
    WsApiClient,
    WsApiUnavailable,
    limits_as_headers,
    sign_ws_params,
)
from adapters.platform.crypto import ConfigurationError


def test_signature_covers_every_param_sorted_and_leaves_the_input_alone() -> None:
    params = {"symbol": "BTCUSDT", "side": "BUY", "newClientOrderId": "tl:1"}
    signed = sign_ws_params("KEY", "SECRET", params, recv_window_ms=5000,
                            timestamp_ms=1_700_000_000_000)
    assert params == {"symbol": "BTCUSDT", "side": "BUY", "newClientOrderId": "tl:1"}
    assert signed["apiKey"] == "KEY" and signed["timestamp"] == 1_700_000_000_000
    payload = urlencode(sorted((k, str(v)) for k, v in signed.items() if k != "signature"))
    assert "newClientOrderId=tl%3A1" in payload  # percent-encoded, as Binance checks
    assert signed["signature"] == hmac.new(b"SECRET", payload.encode(),
                                           hashlib.sha256).hexdigest()
    assert "SECRET" not in str(signed)


def test_rate_limits_become_the_headers_the_budget_reads() -> None:
    headers = limits_as_headers([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 6000, "count": 42},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
         "limit": 100, "count": 7},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
         "limit": 200000, "count": 9},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "count": 1},
        "junk",
    ])
    assert headers == {"X-MBX-USED-WEIGHT-1M": "42", "X-MBX-ORDER-COUNT-10S": "7",
                       "X-MBX-ORDER-COUNT-1D": "9"}
    assert limits_as_headers(None) == {}
    budget = RateBudget(clock=lambda: 1000.0)
    budget.observe("acct", headers)
    assert budget._weight_used == 42  # what the exchange counted, not just what we sent


def test_a_request_without_a_connection_is_not_sent() -> None:
    client = WsApiClient("ws://127.0.0.1:9/ws-api/v3")  # never started: no connection
    with pytest.raises(WsApiUnavailable):
        client.request("order.place", {}, timeout=1.0)
    assert client.requests_sent == 0


def test_order_transport_setting_decides_whether_orders_use_the_ws_api() -> None:
    with pytest.raises(ConfigurationError, match="order transport"):
        BinanceGateway("paper", "http://127.0.0.1:9/api", order_transport="fix")
    assert BinanceGateway("paper", "http://127.0.0.1:9/api", "ws://127.0.0.1:9/ws-api/v3",
                          order_transport="rest").ws_api() is None
    # A paper exchange whose WS-API URL is unknown never sends orders to Binance's hosts.
    assert BinanceGateway("paper", "http://127.0.0.1:9/api").ws_api() is None
