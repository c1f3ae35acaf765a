"""LoopbackSession sends what a plain requests.Session sends, by its own shorter path."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from adapters.binance.loopback import LoopbackSession

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# The calls python-binance's Client makes (adapters/binance/gateway.py uses these endpoints).
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("post", {"headers": FORM, "data": [("symbol", "BTCUSDT"), ("quantity", "0.0001"),
                                        ("newClientOrderId", "a b&c"), ("timestamp", 123),
                                        ("signature", "ab12")]}),
    ("post", {"headers": FORM, "data": "symbol=BTCUSDT&timestamp=1&signature=ab12"}),
    ("get", {"headers": {}, "params": "symbol=BTCUSDT&origClientOrderId=x&signature=ab"}),
    ("get", {"headers": {}}),
    ("delete", {"headers": FORM, "data": [("symbol", "BTCUSDT"), ("orderId", 7)]}),
]


class Recorder(requests.adapters.HTTPAdapter):
    """Records each prepared request instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[Any, ...]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((request.method, request.url, dict(request.headers), request.body,
                          kwargs.get("timeout"), kwargs.get("proxies")))
        response = requests.Response()
        response.status_code, response._content, response.request = 200, b"{}", request
        return response


def _session(cls: type[requests.Session]) -> tuple[requests.Session, Recorder]:
    session = cls()
    session.trust_env = False
    session.headers.update({"Accept": "application/json", "X-MBX-APIKEY": "key"})
    recorder = Recorder()
    session.mount("http://", recorder)
    return session, recorder


@pytest.mark.parametrize(("method", "kwargs"), CALLS)
def test_the_same_request_goes_out_by_the_short_path(
    method: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9/api/v3/order"
    plain, plain_sent = _session(requests.Session)
    getattr(plain, method)(url, timeout=(3.05, 10.0), **kwargs)

    full_path: list[str] = []
    original = requests.Session.request

    def spy(self: requests.Session, *args: Any, **kw: Any) -> requests.Response:
        full_path.append(type(self).__name__)
        return original(self, *args, **kw)

    monkeypatch.setattr(requests.Session, "request", spy)
    lean, lean_sent = _session(LoopbackSession)
    response = getattr(lean, method)(url, timeout=(3.05, 10.0), **kwargs)

    assert lean_sent.sent == plain_sent.sent
    assert full_path == []  # requests.Session.request never ran
    assert response.json() == {}


def test_anything_unusual_takes_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []
    original = requests.Session.request

    def spy(self: requests.Session, *args: Any, **kw: Any) -> requests.Response:
        taken.append(str(kw.get("json")))
        return original(self, *args, **kw)

    lean, sent = _session(LoopbackSession)
    monkeypatch.setattr(requests.Session, "request", spy)
    lean.post("http://127.0.0.1:9/x", json={"a": 1}, timeout=1)  # a JSON body
    lean.cookies.set("c", "v")
    lean.get("http://127.0.0.1:9/x", timeout=1)  # cookies to send
    assert len(sent.sent) == 2
    assert taken == ["{'a': 1}", "None"]  # both went through requests.Session.request
