"""The `tradeledger up` process tree seen from outside: find, kill and replace its parts."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from adapters.kafka.embedded import broker_answers
from adapters.platform.launcher import RunningSystem

# A child killed sooner than this after its start makes the supervisor back off
# exponentially (adapters/processes/supervisor.py: `quick` restarts); older ones restart in 0.5 s.
MIN_CHILD_AGE = 6.0


def child_name(proc: psutil.Process) -> str | None:
    """The supervisor's name for one of its children: api, relay, ..., or broker."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return None
    if "adapters.cli" in cmd and cmd.index("adapters.cli") + 1 < len(cmd):
        return cmd[cmd.index("adapters.cli") + 1]
    if any("tansu" in part for part in cmd[:1]):
        return "broker"
    return None


def find_child(system: RunningSystem, name: str) -> psutil.Process | None:
    """The live direct child of `up` called `name`, if there is one right now."""
    try:
        children = psutil.Process(system.process.pid).children()
    except psutil.Error:
        return None
    for proc in children:
        try:
            if child_name(proc) == name and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except psutil.Error:
            continue
    return None


def child_env(system: RunningSystem, name: str = "api") -> dict[str, str]:
    """The TRADELEDGER_* environment the supervisor gave its children (URLs and secrets)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc = find_child(system, name)
        if proc is not None:
            try:
                return {k: v for k, v in proc.environ().items() if k.startswith("TRADELEDGER_")}
            except psutil.Error:
                pass
        time.sleep(0.2)
    raise AssertionError(f"no {name} child to read the environment from")


@dataclass
class ChaosMonkey:
    """SIGKILLs the supervised children and replaces the broker; remembers what it did."""

    system: RunningSystem
    started: float = field(default_factory=time.monotonic)
    actions: list[dict[str, object]] = field(default_factory=list)
    kills: dict[str, int] = field(default_factory=dict)
    broker: subprocess.Popen[bytes] | None = None
    _killed: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _broker_argv: list[str] = field(default_factory=list)

    def note(self, action: str, **detail: object) -> None:
        entry = {"t": round(time.monotonic() - self.started, 2), "action": action, **detail}
        self.actions.append(entry)
        print(f"chaos: {entry}", flush=True)

    def kill(self, name: str, timeout: float = 60.0) -> bool:
        """SIGKILL the child `name` once it is old enough to be restarted at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = find_child(self.system, name)
            if proc is None or proc.pid in self._killed:
                time.sleep(0.2)
                continue
            try:
                age = time.time() - proc.create_time()
            except psutil.Error:
                continue
            if age < MIN_CHILD_AGE:
                time.sleep(MIN_CHILD_AGE - age + 0.05)
                continue
            with self._lock:
                if proc.pid in self._killed:
                    continue
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self._killed.add(proc.pid)
                self.kills[name] = self.kills.get(name, 0) + 1
            self.note("SIGKILL", child=name, pid=proc.pid, age_s=round(age, 1))
            return True
        self.note("kill-skipped", child=name, reason=f"no live {name} child for {timeout}s")
        return False

    def restart_broker_empty(self) -> bool:
        """Kill the embedded broker and start an empty one on the same port and arguments.

        The supervisor starts the broker itself and does not supervise it, so the
        replacement is ours: `close()` stops it after the system has stopped.
        """
        proc = find_child(self.system, "broker") if self.broker is None else None
        if self.broker is not None:
            self.broker.kill()
            self.broker.wait(10)
            argv = list(self._broker_argv)
        elif proc is None:
            self.note("broker-restart-skipped", reason="no broker child of `up`")
            return False
        else:
            argv = proc.cmdline()
            proc.kill()
            _wait_gone(proc, 10)  # a zombie until `up` exits: `up` never reaps its broker
        self._broker_argv = argv
        port = int(next(a for a in argv if a.startswith("tcp://")).rsplit(":", 1)[1])
        log_path = Path(self.system.data_dir) / "logs" / "broker-replacement.log"
        deadline = time.monotonic() + 30
        while True:
            with open(log_path, "ab") as log:
                self.broker = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True)
            ready = time.monotonic() + 10
            while time.monotonic() < ready and self.broker.poll() is None:
                if broker_answers(port):
                    self.note("broker-restarted-empty", port=port, pid=self.broker.pid)
                    return True
                time.sleep(0.05)
            # The port may still be held for a moment after the kill: try again.
            self.broker.kill()
            self.broker.wait(5)
            if time.monotonic() > deadline:
                self.note("broker-restart-failed", port=port)
                return False
            time.sleep(0.5)

    def close(self) -> None:
        """Stop the replacement broker, if this monkey started one."""
        if self.broker is not None and self.broker.poll() is None:
            self.broker.kill()
            self.broker.wait(10)


def _wait_gone(proc: psutil.Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def restarts_reported(system: RunningSystem, name: str) -> int:
    """How many restarts of `name` the supervisor printed."""
    return sum(1 for line in system.output().splitlines()
               if f"] {name} " in line and "restarting" in line)
