"""Group commit (commands/group_commit.py) and the worker's GroupSaver on it: callers share
transactions, and a conflict stays with its caller."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from adapters.processes.worker import GroupSaver
from commands.group_commit import GroupCommit


class Conflict(Exception):
    pass


class FakeApp:
    """Records each save (a transaction); a save that holds a 'bad' event fails whole."""

    def __init__(self, delay: float = 0.005) -> None:
        self.delay = delay
        self.transactions: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def save(self, *events: str) -> None:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.delay)  # the commit: others queue up meanwhile
            if any(e.startswith("bad") for e in events):
                raise Conflict(",".join(events))
            with self._lock:
                self.transactions.append(list(events))
        finally:
            with self._lock:
                self.running -= 1


class Aggregate:
    def __init__(self, *events: str) -> None:
        self.events = list(events)

    def collect_events(self) -> list[str]:
        events, self.events = self.events, []
        return events


def _save_from_threads(saver: GroupSaver, names: list[str]) -> dict[str, BaseException | None]:
    outcome: dict[str, BaseException | None] = {}
    start = threading.Barrier(len(names))

    def lane(name: str) -> None:
        start.wait()
        try:
            saver(Aggregate(name))
            outcome[name] = None
        except Exception as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=lane, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return outcome


def test_concurrent_saves_share_transactions_with_at_most_two_at_once() -> None:
    app = FakeApp()
    saver = GroupSaver(app, leaders=2)  # type: ignore[arg-type]
    names = [f"e{i}" for i in range(40)]
    outcome = _save_from_threads(saver, names)
    assert outcome == dict.fromkeys(names)
    saved = sorted(e for events in app.transactions for e in events)
    assert saved == sorted(names)  # every event once
    assert len(app.transactions) < len(names)  # shared transactions
    assert app.most_at_once <= 2
    assert (saver.saved, saver.batches) == (40, len(app.transactions))


def test_a_lone_save_runs_on_the_calling_thread() -> None:
    seen: list[str] = []

    class App(FakeApp):
        def save(self, *events: str) -> None:
            seen.append(threading.current_thread().name)
            super().save(*events)

    saver = GroupSaver(App(delay=0))  # type: ignore[arg-type]
    saver(Aggregate("a"))
    saver(Aggregate())  # nothing to save: no transaction
    assert seen == [threading.current_thread().name]


def test_a_conflict_in_a_shared_save_fails_only_its_own_lane() -> None:
    app = FakeApp(delay=0.02)
    saver = GroupSaver(app, leaders=1)  # type: ignore[arg-type]
    names = ["bad"] + [f"ok{i}" for i in range(9)]
    outcome = _save_from_threads(saver, names)
    assert isinstance(outcome.pop("bad"), Conflict)
    assert outcome == {n: None for n in names[1:]}
    assert sorted(e for events in app.transactions for e in events) == sorted(names[1:])


def test_an_interrupted_leader_leaves_no_lane_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    app = FakeApp(delay=0)
    saver = GroupSaver(app, leaders=1)  # type: ignore[arg-type]

    def interrupted(batch: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(saver, "_save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        saver(Aggregate("a"))
    monkeypatch.undo()
    saver(Aggregate("b"))  # leadership was given back: the next save runs
    assert app.transactions == [["b"]]


def test_only_the_named_failures_are_retried_alone() -> None:
    """The application's placements retry alone only on IntegrityError (here: Conflict);
    any other failure of a shared save goes to every caller of the batch."""

    class Down(Exception):
        pass

    release = threading.Event()

    def save(*events: str) -> None:
        if "first" in events:
            release.wait(5)  # hold the leader while the others queue up behind it
        if "down" in events:
            raise Down("database gone")

    commit = GroupCommit(save, max_batch=64, alone_on=(Conflict,))
    outcome: dict[str, BaseException | None] = {}

    def caller(name: str) -> None:
        try:
            commit.commit([name])
            outcome[name] = None
        except Exception as exc:
            outcome[name] = exc

    first = threading.Thread(target=caller, args=("first",))
    first.start()
    others = [threading.Thread(target=caller, args=(n,)) for n in ("a", "down", "b")]
    for t in others:
        t.start()
    deadline = time.monotonic() + 5
    while len(commit._pending) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert outcome["first"] is None
    # a, down and b shared the next transaction; Down is not retried alone: all three fail.
    shared = ("a", "down", "b")
    assert {n: type(outcome[n]) for n in shared} == dict.fromkeys(shared, Down)
