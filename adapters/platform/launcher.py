"""Start and stop a whole TradeLedger (`tradeledger up` as a child process): for the
end-to-end tests, the browser tests and `tradeledger bench`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from adapters.platform.net import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningSystem:
    """Handles on a `tradeledger up` process tree."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    api_url: str
    dashboard_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_log(self, name: str) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_system(data_dir: Path, *, with_dashboard: bool = True,
                 timeout: float = 150.0, settings: dict[str, str] | None = None) -> RunningSystem:
    """Run `tradeledger up` and wait until the API says it is ready.

    The caller's TRADELEDGER_* environment is not passed on; `settings` ({"ORDER_TRANSPORT":
    "rest"}) sets TRADELEDGER_<NAME> for the system explicitly.
    """
    api_port, dashboard_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELEDGER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["TRADELEDGER_DATA_DIR"] = str(data_dir)
    env.update({f"TRADELEDGER_{name}": value for name, value in (settings or {}).items()})
    log_path = data_dir / "up.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "adapters.cli", "up", "--api-port", str(api_port),
            "--dashboard-port", str(dashboard_port)]
    if not with_dashboard:
        argv.append("--no-dashboard")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, env=env, stdout=log,  # noqa: S603 - our own argv
                                   stderr=subprocess.STDOUT,
                                   cwd=ROOT, start_new_session=True)
    system = RunningSystem(process, data_dir, f"http://127.0.0.1:{api_port}",
                           f"http://127.0.0.1:{dashboard_port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tradeledger up exited early:\n{system.output()}")
        if "TradeLedger is running" in system.output():
            return system
        time.sleep(0.5)
    stop_system(system)
    raise RuntimeError(f"tradeledger up was not ready in {timeout} s:\n{system.output()}")


def stop_system(system: RunningSystem) -> None:
    if system.process.poll() is None:
        system.process.send_signal(signal.SIGINT)
        try:
            system.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(system.process.pid, signal.SIGKILL)
            system.process.wait(10)
