"""Benchmark: what the order book and the tape cost the paper exchange (issue 19).

    PYTHONPATH=. .venv/bin/python scripts/bench_paper_book.py [--steps 20000] [--rounds 5]

In one process, on a throw-away state dir, measures CPU time (time.process_time):
- the walk's tick (`MarketSimulator.step` over every default symbol, as the server's tick
  loop runs it with nobody subscribed), as shipped (each step prints one trade per symbol on
  the tape) against a baseline in the same run: the same steps with the tape's `add` made a
  no-op, i.e. the walk as it was before the tape. Rounds alternate between the two;
- one `depth` answer of 20 levels a side (a `@depth20@100ms` message) and of 5,000 (the
  largest REST answer), per call.
CPU time, not wall time: other load on the machine barely moves it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.paper_exchange import book  # noqa: E402
from adapters.paper_exchange.market import MarketSimulator  # noqa: E402
from adapters.paper_exchange.markets import DEFAULT_MARKETS  # noqa: E402
from adapters.paper_exchange.store import Store  # noqa: E402

TICK_MS = 250


def steps(sim: MarketSimulator, count: int, now: int) -> tuple[float, int]:
    """Run `count` ticks from `now`; return (CPU seconds, the time reached)."""
    started = time.process_time()
    for _ in range(count):
        now += TICK_MS
        sim.step(now, TICK_MS)
    return time.process_time() - started, now


def per_call(fn: object, count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        fn()  # type: ignore[operator]
    return (time.process_time() - started) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    store = Store(Path(tempfile.mkdtemp(prefix="tl-book-")))
    now = int(time.time() * 1000)
    sim = MarketSimulator(store, dict(DEFAULT_MARKETS), seed=7, history_days=1, now=now)
    shipped_add = book.Tape.add
    with_tape: list[float] = []
    without: list[float] = []
    for _ in range(args.rounds):
        cpu, now = steps(sim, args.steps, now)
        with_tape.append(cpu / args.steps)
        book.Tape.add = lambda self, *a, **k: None  # type: ignore[assignment,method-assign]
        try:
            cpu, now = steps(sim, args.steps, now)
        finally:
            book.Tape.add = shipped_add  # type: ignore[method-assign]
        without.append(cpu / args.steps)
    a, b = statistics.median(with_tape), statistics.median(without)
    print(f"walk tick ({len(DEFAULT_MARKETS)} symbols), median of {args.rounds} rounds of "
          f"{args.steps} ticks:")
    print(f"  with the tape     {a * 1e6:8.1f} us CPU per tick")
    print(f"  baseline, no tape {b * 1e6:8.1f} us CPU per tick   ratio {a / b:.2f}")
    print(f"  at one tick per {TICK_MS} ms: {100 * a * 1000 / TICK_MS:.3f}% of a core "
          f"(baseline {100 * b * 1000 / TICK_MS:.3f}%)")
    d20 = per_call(lambda: sim.depth("BTCUSDT", 20), 2_000)
    d5000 = per_call(lambda: sim.depth("BTCUSDT", 5_000), 20)
    print(f"depth 20 levels a side: {d20 * 1e6:8.1f} us CPU per answer "
          f"({d20 / a:.1f} x a tick)")
    print(f"depth 5000 levels a side: {d5000 * 1e3:6.1f} ms CPU per answer")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
