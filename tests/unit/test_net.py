"""free_port never hands out the same port twice, even when the kernel offers it again."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from adapters.platform import net


class SameTwice:
    """A socket whose bind(0) gets 40001, 40001, 40002, ... (the kernel reusing a port
    nobody has bound yet)."""

    offers = iter([40001, 40001, 40002])

    def __enter__(self) -> SameTwice:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def bind(self, _address: Any) -> None:
        self.port = next(self.offers)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_handed_out_is_not_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "_handed_out", set())
    monkeypatch.setattr(net.socket, "socket", SameTwice)
    assert [net.free_port(), net.free_port()] == [40001, 40002]


def test_real_ports_are_free_and_distinct() -> None:
    first, second = net.free_port(), net.free_port()
    assert first != second
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", first))  # free: nothing bound it
