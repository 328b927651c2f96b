"""The script sandbox's cost per call and its fairness, through the real pool (no Django).

- Cost per call: the Axway greeting script and a ~20 KB script called again and again in one
  sandbox process, after a warm-up; the figures are per call, parent side (encode, pipe,
  QuickJS, decode). Back to back, then the greeting again with 5 ms between calls, as when
  a run does other work between its script calls (the sandbox prepares the next realm while
  it waits). Each is measured three times and the run with the lowest median kept.
- Fairness: a pool of 2 processes and a 1 s CPU-time limit; 8 threads of flow "loop" call a
  script that never ends while one thread of flow "trivial" calls the greeting 20 times. The
  trivial flow's calls are timed, and the loop flow's calls counted by outcome.

Each run is one labelled row, so a figure taken before a change stays next to the one taken
after it:

    .venv/bin/python bench/sandbox.py --label "fresh realm per call" [--write]
"""

import argparse
import inspect
import os
import platform
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sections import read_section, write_section

from apps.flows.sandbox.pool import SandboxPool
from apps.flows.sandbox.results import ScriptError

GREETING = (
    "function main(ctx) { return {statusCode: 200, result: 'Hello ' + "
    "ctx.trigger.args.request.query.name} }"
)
HELPERS = "\n".join(
    f"function helper{n}(value) {{ const parts = String(value).split(','); "
    f"return parts.map(function (p) {{ return p.trim() + '{n}'; }}).join(';'); }}"
    for n in range(150)
)
LARGE = HELPERS + "\nfunction main(ctx) { return helper7(ctx.trigger.args.request.query.name) }"
ARGUMENT = {"trigger": {"args": {"request": {"query": {"name": "Leor"}}}}, "records": [{}]}
LOOP = "function main() { while (true) {} }"
SECTION = "sandbox"
TEMPLATE = """
## Script sandbox (bench/sandbox.py)

Measured by `bench/sandbox.py --label … --write`, one row per label (the latest run of each).

- Per call: one sandbox process, the parent's side of `SandboxPool.call` (encode, pipe,
  QuickJS, decode), median / p99 in ms, the best of 3 runs of 2,000 calls (500 for the 20 KB
  script); the greeting is the Axway greeting script, the 20 KB script has 150 helper
  functions and calls one; calls back to back, then the greeting with 5 ms between calls.
- Fairness: a pool of 2 processes, a 1 s CPU-time limit; 8 threads of one flow call a script
  that never ends while another flow calls the greeting 20 times, 50 ms apart: that flow's
  p50 / worst in ms and how many of its calls failed; then the looping flow's calls by outcome.

{machine}

{header}
|---|---|---|---|---|---|---|
{row}
"""
HEADER = (
    "| label | greeting | 20 KB script | greeting, 5 ms apart | other flow while one loops "
    "| its failures | loop flow's calls |"
)


def per_call(
    pool: SandboxPool, source: str, calls: int, *, pause: float = 0
) -> tuple[float, float]:
    """(median, p99) in ms of one call of `source`, after a warm-up: the best of 3 runs."""
    for _ in range(50):
        pool.call(source, "main", ARGUMENT)
    runs = []
    for _ in range(3):
        timings = []
        for _ in range(calls):
            if pause:
                time.sleep(pause)
            started = time.perf_counter()
            pool.call(source, "main", ARGUMENT)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        runs.append((statistics.median(timings), timings[int(len(timings) * 0.99) - 1]))
    return min(runs)


def fairness() -> tuple[float, float, int, dict[str, int]]:
    """(p50, max) ms of the trivial flow's calls, how many failed, the loop flow's outcomes."""
    pool = SandboxPool(size=2, cpu_time_limit_ms=1000, memory_limit_mb=64)
    owned = "owner" in inspect.signature(pool.call).parameters
    stop = threading.Event()
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def call(source: str, owner: str):
        options = {"owner": owner} if owned else {}
        return pool.call(source, "main", ARGUMENT, **options)

    def looping():
        while not stop.is_set():
            try:
                call(LOOP, "loop")
                kind = "ok"
            except ScriptError as exc:
                kind = exc.kind
            with lock:
                outcomes[kind] = outcomes.get(kind, 0) + 1

    try:
        call(GREETING, "trivial")
        call(GREETING, "trivial")
        threads = [threading.Thread(target=looping, daemon=True) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        timings, failed = [], 0
        for _ in range(20):
            started = time.perf_counter()
            try:
                call(GREETING, "trivial")
            except ScriptError:
                failed += 1
            timings.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        pool.close()
    return statistics.median(timings), max(timings), failed, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="names this row, e.g. the change")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--write", action="store_true", help="record it in BENCHMARKS.md")
    args = parser.parse_args()

    pool = SandboxPool(size=1, cpu_time_limit_ms=1000, memory_limit_mb=64)
    try:
        small = per_call(pool, GREETING, args.calls)
        large = per_call(pool, LARGE, args.calls // 4)
        spaced = per_call(pool, GREETING, args.calls // 4, pause=0.005)
    finally:
        pool.close()
    p50, worst, failed, outcomes = fairness()
    loop = ", ".join(f"{count} {kind}" for kind, count in sorted(outcomes.items()))
    row = (
        f"| {args.label} | {small[0]:.3f} / {small[1]:.3f} | {large[0]:.3f} / {large[1]:.3f} "
        f"| {spaced[0]:.3f} / {spaced[1]:.3f} | {p50:.1f} / {worst:.0f} | {failed} of 20 "
        f"| {loop} |"
    )
    print(row)
    if not args.write:
        return
    machine = (
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}. Date: {datetime.now(UTC):%Y-%m-%d}."
    )
    current = read_section(SECTION)
    if HEADER not in current:
        write_section(SECTION, TEMPLATE.format(machine=machine, header=HEADER, row=row))
        return
    # Keep the section's notes and other rows; replace this label's row and the date.
    lines = [
        machine if line.startswith("Machine:") else line
        for line in current.strip("\n").splitlines()
        if not line.startswith(f"| {args.label} |")
    ]
    last_row = max(index for index, line in enumerate(lines) if line.startswith("|"))
    lines.insert(last_row + 1, row)
    write_section(SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
