"""Measure what a whole `tradeledger up` costs with nobody trading.

    PYTHONPATH=. python scripts/bench_idle.py [--settle 20] [--seconds 45] [--no-dashboard]

Starts `tradeledger up` in a temporary directory, waits --settle seconds for start-up work to
end, then counts the CPU time of every process of its tree (and of its embedded Postgres,
whose server is not a child of `up`) over --seconds, and prints it per process as a share of
one core. CPU time, not wall time: other load on the machine barely moves it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.cli.bench import process_usage  # noqa: E402
from adapters.platform.launcher import start_system, stop_system  # noqa: E402


def main() -> int:
    """Start `up`, let it settle, measure its idle CPU, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args()
    system = start_system(Path(tempfile.mkdtemp(prefix="tl-idle-")),
                          with_dashboard=not args.no_dashboard)
    try:
        roots, pg = [system.process.pid], str(system.data_dir / "postgres")
        time.sleep(args.settle)
        before = {n: c for n, c, _ in process_usage(roots, pg)}
        started = time.monotonic()
        time.sleep(args.seconds)
        after = process_usage(roots, pg)
        elapsed = time.monotonic() - started
    finally:
        stop_system(system)
    total = 0.0
    print(f"idle `tradeledger up` over {elapsed:.0f} s "
          f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    print(f"{'process':<16}{'CPU s':>8}{'% of a core':>13}")
    for name, cpu, _ in after:
        spent = cpu - before.get(name, 0.0)
        total += spent
        print(f"{name:<16}{spent:>8.2f}{100 * spent / elapsed:>13.2f}")
    print(f"{'total':<16}{total:>8.2f}{100 * total / elapsed:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
