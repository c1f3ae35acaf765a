"""The relay's linger: rounds under steady appends are spaced out, a lone append is not held."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from adapters.kafka import relay as relay_module
from adapters.kafka.relay import Relay


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingStop:
    """Stands in for the stop Event: records each wait and lets the clock run through it."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.clock.now += seconds
        return False


def _relay(linger: float) -> Relay:
    recorder = SimpleNamespace(datastore=SimpleNamespace(schema="s"), events_table_name="e")
    app: Any = SimpleNamespace(recorder=recorder, mapper=None)
    return Relay(app=app, database_url="postgresql://unused", bootstrap_servers="unused:9092",
                 topic="t", linger=linger)


def test_rounds_under_steady_appends_are_spaced_and_a_lone_append_goes_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(relay_module.time, "monotonic", clock)
    stop = RecordingStop(clock)
    relay = _relay(linger=0.010)

    relay._linger(stop)  # type: ignore[arg-type]  # the first round: nothing before it
    clock.now += 0.003  # the round took 3 ms, and an append was waiting
    relay._linger(stop)  # type: ignore[arg-type]
    clock.now += 0.012  # a round longer than the linger
    relay._linger(stop)  # type: ignore[arg-type]
    clock.now += 5.0  # a quiet spell, then one append
    relay._linger(stop)  # type: ignore[arg-type]
    assert stop.waits == [0.007]


def test_no_linger_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(relay_module.time, "monotonic", clock)
    stop = RecordingStop(clock)
    relay = _relay(linger=0.0)
    for _ in range(3):
        relay._linger(stop)  # type: ignore[arg-type]
    assert stop.waits == []
