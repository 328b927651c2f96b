"""The memory of everything `make run` starts, idle (issue "Hot path": ≤ 600 MiB together).

A fresh instance in a temporary FLOWSITE_VAR_DIR is prepared as `make run` prepares it
(migrate, bootstrap with the demo, collectstatic) and started with `manage.py serve` (the
supervisor, Granian's main process and workers, the Celery workers, beat; the embedded
broker lives in those processes). Then each kind of work is
done once so that what starts lazily has started (the greeting flow sync, so the web
processes start their script sandboxes; the same call async, so a Celery worker starts
its own; a Query() page), the instance is left idle for --idle seconds, and the PSS
(proportional set size: shared pages divided among the processes sharing them, so the
figures add up) of every process is read from /proc/<pid>/smaps_rollup.

    .venv/bin/python bench/memory.py [--write] [--idle 10]
"""

import argparse
import platform
import re
import shutil
import tempfile
import time
from pathlib import Path

import urllib3
from api import (
    SANDBOX,
    free_port,
    instance_env,
    instance_processes,
    manage,
    start_server,
    stop_server,
    wait_healthy,
)
from sections import write_section

BUDGET_MIB = 600
ROLES = (  # (role, what the command line holds), the first that matches
    ("script sandbox", SANDBOX),
    ("web (Granian)", b"granian"),
    ("Celery beat", b"celery\0-A\0flowsite\0beat"),
    ("Celery worker", b"\0worker\0"),
    ("supervisor (manage.py serve)", b"serve"),
)


def pss_mib(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    found = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def role_of(cmdline: bytes) -> str:
    return next((role for role, marker in ROLES if marker in cmdline), "other")


def exercise(base: str, key: str) -> None:
    """Each kind of work once, so that lazily started processes exist."""
    http = urllib3.PoolManager(retries=False, timeout=30)
    auth = {"Authorization": f"Bearer {key}"}
    greeting = http.request("GET", f"{base}/api/resources/greeting?name=Leor", headers=auth)
    if greeting.status != 200:
        raise SystemExit(f"the greeting answered {greeting.status}: {greeting.data[:200]!r}")
    queued = http.request(
        "GET",
        f"{base}/api/resources/greeting?name=Leor",
        headers={**auth, "Prefer": "respond-async"},
    )
    poll, status = queued.headers.get("Location"), None
    for _ in range(100):
        status = http.request("GET", base + poll, headers=auth).json()["status"] if poll else None
        if status not in ("queued", "running"):
            break
        time.sleep(0.1)
    if status != "succeeded":
        raise SystemExit(f"the async greeting ended {status!r} ({queued.status}, {poll})")
    query = "/api/rest/query/Lead%20Registration/Leads%20by%20Rating?rating=Hot"
    if (answer := http.request("GET", base + query, headers=auth)).status != 200:
        raise SystemExit(f"Query() answered {answer.status}: {answer.data[:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the section in BENCHMARKS.md")
    parser.add_argument("--idle", type=float, default=10, help="seconds idle before reading")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="flowsite-bench-memory-"))
    port = free_port()
    env = instance_env(var_dir, port)
    env.pop("DATABASE_URL", None)  # the embedded default, as `make run`
    marker = f"FLOWSITE_VAR_DIR={var_dir}".encode()
    base = f"http://127.0.0.1:{port}"
    manage(env, "migrate", "--noinput")
    shown = manage(env, "bootstrap")
    key = re.search(r"\bDEMO_KEY=(\S+)", shown)  # from its `export BASE=… DEMO_KEY=…` line
    if key is None:
        raise SystemExit(f"bootstrap printed no demo key:\n{shown}")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    process = start_server(env, var_dir / "serve.log")
    try:
        wait_healthy(base, process, var_dir / "serve.log")
        exercise(base, key.group(1))
        time.sleep(args.idle)
        rows = []
        for pid, (cmdline, _) in sorted(instance_processes(marker).items()):
            mib = pss_mib(pid)
            if mib is not None:
                rows.append((role_of(cmdline), pid, mib))
    finally:
        stop_server(process, marker)
        shutil.rmtree(var_dir, ignore_errors=True)
    by_role: dict[str, list[float]] = {}
    for role, _, mib in rows:
        by_role.setdefault(role, []).append(mib)
    total = sum(mib for _, _, mib in rows)
    lines = [
        "| process | count | PSS MiB (each) | PSS MiB (together) |",
        "|---|---|---|---|",
        *(
            f"| {role} | {len(values)} | {', '.join(f'{v:.0f}' for v in values)} "
            f"| {sum(values):.0f} |"
            for role, values in by_role.items()
        ),
        f"| **all** | {len(rows)} | | **{total:.0f}** |",
    ]
    # Sandboxes start on first use, up to FLOWSITE_SANDBOX_PROCESSES per Granian worker
    # (not its main process) and one per Celery worker, which runs one task at a time.
    per_process = int(env.get("FLOWSITE_SANDBOX_PROCESSES") or 2)
    web_workers = len(by_role.get("web (Granian)", [])) - 1
    celery_workers = len(by_role.get("Celery worker", []))
    sandboxes = by_role.get("script sandbox", [])
    most = per_process * web_workers + celery_workers
    each = sum(sandboxes) / len(sandboxes) if sandboxes else 0.0
    worst = total + max(0, most - len(sandboxes)) * each
    verdict = "met" if worst <= BUDGET_MIB else "NOT met"
    text = [
        "## Memory of `make run`, idle (bench/memory.py)",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}. "
        f"Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "Everything `manage.py serve` starts with the embedded defaults (SQLite, the embedded "
        "broker inside the Celery processes), after one sync greeting, one async greeting "
        f"and one Query() page, then {args.idle:.0f} s idle. PSS from /proc/<pid>/smaps_rollup "
        "(shared pages divided among the processes sharing them, so the rows add up).",
        "",
        *lines,
        "",
        f"Script sandboxes start on first use, up to {per_process} "
        f"(FLOWSITE_SANDBOX_PROCESSES) for each of the {web_workers} Granian workers and one "
        f"for each of the {celery_workers} Celery workers (one task at a time): with all "
        f"{most} started, idle, about {worst:.0f} MiB. Target: ≤ {BUDGET_MIB} MiB together: "
        f"**{verdict}**.",
    ]
    print("\n".join(text))
    if args.write:
        write_section("memory", "\n".join(text))


if __name__ == "__main__":
    main()
