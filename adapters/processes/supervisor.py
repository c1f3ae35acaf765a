"""`tradeledger up`: run every TradeLedger process on one machine and keep them running.

Embedded servers (Postgres, the Kafka-protocol broker, the paper exchange) start first when
no URL is configured; then the API, relay, worker, projector and dashboard run as child
processes. A child that dies is restarted (with backoff) and reported; Ctrl-C stops all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from adapters.platform.net import free_port
from adapters.platform.settings import Settings

CHILD_ORDER = ("api", "relay", "projector", "worker", "dashboard")
WITH_METRICS = ("api", "relay", "projector", "worker")  # the processes that serve /metrics
# Which secrets each process uses; the others never reach its environment.
SECRETS = {"TRADELEDGER_JWT_SECRET": ("api",), "TRADELEDGER_MASTER_KEYS": ("api", "worker")}


def env_for(name: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of child `name`: `env` without the secrets it does not use."""
    return {k: v for k, v in env.items() if k not in SECRETS or name in SECRETS[k]}


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us when the supervisor dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: children outlive a killed supervisor, as before


def status(component: str, state: str, detail: str = "", out: TextIO = sys.stdout) -> None:
    """Print one readable status line per component event."""
    mark = {"up": "+", "ready": "+", "starting": ".", "restarting": "!", "stopped": "-",
            "failed": "x"}.get(state, " ")
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} [{mark}] {component:<15} {state:<10} {detail}".rstrip(), file=out, flush=True)


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    quick_crashes: int = 0
    started_at: float = 0.0
    log_file: Any = None

    def start(self) -> None:
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and argv
            self.argv, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.log_file:
            self.log_file.close()


@dataclass
class Supervisor:
    """Starts the embedded servers and the children, restarts crashed children, stops all."""

    settings: Settings
    api_port: int
    dashboard_port: int
    with_dashboard: bool = True
    children: dict[str, Child] = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _cleanups: list[Any] = field(default_factory=list)

    def run(self) -> int:
        data_dir = self.settings.data_dir
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        status("tradeledger", "starting", f"data in {data_dir}")
        try:
            env = self._start_servers()
            self._start_children(env)
            api_url = f"http://127.0.0.1:{self.api_port}"
            if not self._wait_ready(api_url, timeout=90):
                status("api", "failed", f"not ready after 90 s; see {data_dir / 'logs'}")
                return 1
            status("api", "ready", api_url + "  (docs: " + api_url + "/docs)")
            if self.with_dashboard:
                status("dashboard", "up", f"open http://127.0.0.1:{self.dashboard_port}")
            print(f"\nTradeLedger is running (Ctrl-C stops everything).\n"
                  f"  dashboard: http://127.0.0.1:{self.dashboard_port}\n"
                  f"  API:       {api_url}\n", flush=True)
            self._watch()
            return 0
        finally:
            self.shutdown()

    # ---- servers --------------------------------------------------------------------
    def _start_servers(self) -> dict[str, str]:
        from adapters.platform.bootstrap import resolve_secrets

        settings = self.settings
        env = dict(os.environ)
        env["TRADELEDGER_DATA_DIR"] = str(settings.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        if settings.database_url is None:
            from adapters.postgres.embedded import start_embedded_postgres

            status("postgres", "starting", "embedded")
            url, server = start_embedded_postgres(settings.data_dir)
            self._cleanups.append(server.cleanup)
            env["TRADELEDGER_DATABASE_URL"] = url
            status("postgres", "up", f"embedded, data in {settings.data_dir / 'postgres'}")
        else:
            status("postgres", "up", "configured (TRADELEDGER_DATABASE_URL)")
        master, jwt_secret = resolve_secrets(settings)
        # Children see a configured database, so they get the secrets explicitly.
        env["TRADELEDGER_MASTER_KEYS"] = master
        env["TRADELEDGER_JWT_SECRET"] = jwt_secret

        if settings.kafka_bootstrap_servers is None:
            from adapters.kafka.embedded import start_embedded_broker

            status("broker", "starting", "embedded Tansu (Kafka protocol, in memory)")
            broker = start_embedded_broker(settings.data_dir)
            self._cleanups.append(broker.stop)
            env["TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
            status("broker", "up", broker.bootstrap_servers)
        else:
            status("broker", "up", f"configured: {settings.kafka_bootstrap_servers}")

        if settings.exchange == "paper" and settings.paper_exchange_url is None:
            port = settings.paper_exchange_port or free_port()
            url = f"http://127.0.0.1:{port}"
            child = self._child("paper-exchange", [
                "paper-exchange", "--port", str(port),
                "--state-dir", str(settings.data_dir / "paper-exchange")], env)
            child.start()
            if not self._wait_http(url + "/api/v3/ping", 30):
                raise RuntimeError(f"paper exchange did not start; see {child.log_path}")
            env["TRADELEDGER_PAPER_EXCHANGE_URL"] = url
            status("paper-exchange", "up", url)
        elif settings.exchange == "paper":
            status("paper-exchange", "up", f"configured: {settings.paper_exchange_url}")
        else:
            status("exchange", "up", f"Binance {settings.exchange}")
        env["TRADELEDGER_API_PORT"] = str(self.api_port)
        env["TRADELEDGER_DASHBOARD_PORT"] = str(self.dashboard_port)
        env.setdefault("TRADELEDGER_API_URL", f"http://127.0.0.1:{self.api_port}")
        env.setdefault("TRADELEDGER_CORS_ORIGINS", f"http://127.0.0.1:{self.dashboard_port},"
                       f"http://localhost:{self.dashboard_port}")
        return env

    def _child(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name=name, argv=[sys.executable, "-m", "adapters.cli", *args],
                      env=env_for(name, env),
                      log_path=self.settings.data_dir / "logs" / f"{name}.log")
        self.children[name] = child
        return child

    def _start_children(self, env: dict[str, str]) -> None:
        for name in CHILD_ORDER:
            if name == "dashboard" and not self.with_dashboard:
                continue
            args = {
                "api": ["api", "--port", str(self.api_port)],
                "dashboard": ["dashboard", "--port", str(self.dashboard_port)],
            }.get(name, [name])
            child_env = env
            metrics = ""
            if name in WITH_METRICS:
                # Each process serves its metrics on a port of its own (loopback unless
                # TRADELEDGER_METRICS_HOST says otherwise); print the URL for a scraper.
                port = free_port()
                host = self.settings.metrics_host
                child_env = {**env, "TRADELEDGER_METRICS_PORT": str(port)}
                shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
                metrics = f"  metrics: http://{shown}:{port}/metrics"
            child = self._child(name, args, child_env)
            child.start()
            detail = f"log: {child.log_path}{metrics}"
            status(name, "starting", detail)

    # ---- supervision ----------------------------------------------------------------
    def _watch(self) -> None:
        while not self.stop_event.wait(0.5):
            for child in self.children.values():
                if child.alive():
                    continue
                code = child.process.returncode if child.process else None
                child.restarts += 1
                # Back off only while a child keeps crashing right after start; one that ran
                # for a while before dying is restarted at once.
                quick = time.monotonic() - child.started_at < 5
                child.quick_crashes = child.quick_crashes + 1 if quick else 0
                delay = min(30.0, 2.0 ** min(child.quick_crashes, 5)) if quick else 0.5
                status(child.name, "restarting",
                       f"exited with {code}; restart #{child.restarts} in {delay:.1f}s "
                       f"(log: {child.log_path})")
                if self.stop_event.wait(delay):
                    return
                child.start()
                status(child.name, "up", f"pid {child.process.pid if child.process else '?'}")

    def _wait_ready(self, api_url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if self._wait_http(api_url + "/ready", 1.0):
                return True
            time.sleep(0.5)
        return False

    @staticmethod
    def _wait_http(url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError, TimeoutError):
                pass
            time.sleep(0.2)
        return False

    def shutdown(self) -> None:
        self.stop_event.set()
        for name in reversed(list(self.children)):
            child = self.children[name]
            if child.process is not None:
                child.stop()
                status(name, "stopped")
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:
                status("cleanup", "failed", str(exc))
        self._cleanups.clear()
