"""Requests per second through the HTTP API, on the server `make run` starts (make bench).

An isolated instance (temporary FLOWSITE_VAR_DIR with a fresh SQLite database, or
DATABASE_URL if set; DEBUG=0; generated secrets; a free port) is migrated, given an
integration account with an API key and the Axway greeting flow (sync, plus an async
copy), and started with `manage.py serve`: gunicorn gthread + Celery worker + beat.
`wrk` (installed with apt-get when missing) loads it over loopback:

  (a) GET /api/v1/me                                    bare DRF view, same API-key auth
  (b) GET /api/resources/greeting?name=Leor             the greeting flow, sync
  (c) GET /api/1/action/Bench/greeting/trigger?...      the same flow by its trigger URL
  (e) 300 async calls from a thread pool, polled until finished: jobs/s end to end
  (d) GET /api/1/action/Bench/greeting-async/trigger    async, 202 latency (each creates a run)

(e) runs before (d): the runs (d) creates faster than the workers finish them would
otherwise still be queued in front of (e)'s. Afterwards the server is stopped and one
request of each kind is timed and its SQL counted in-process (Django's test client), so
the cost of each layer is visible; --profile adds a cProfile of (b).

    .venv/bin/python bench/api.py [--write] [--duration 10] [--connections 16,64] [--profile]
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
START, END = "<!-- api -->", "<!-- /api -->"
THROTTLE = "1000000/min"
GREETING = (
    "function main(ctx) { return {statusCode: 200, result: 'Hello ' + "
    "ctx.trigger.args.request.query.name}; }"
)
ME = "/api/v1/me"
RESOURCE = "/api/resources/greeting?name=Leor"
TRIGGER = "/api/1/action/Bench/greeting/trigger?name=Leor"
ASYNC_TRIGGER = "/api/1/action/Bench/greeting-async/trigger?name=Leor"
SCENARIOS = {  # letter: (description, path, expected status)
    "a": ("bare DRF view, same API-key auth: GET /api/v1/me", ME, 200),
    "b": ("greeting as a resource, sync: GET /api/resources/greeting", RESOURCE, 200),
    "c": ("greeting by trigger URL, sync: GET /api/1/action/Bench/greeting/trigger", TRIGGER, 200),
    "d": (
        "async trigger → 202: GET /api/1/action/Bench/greeting-async/trigger",
        ASYNC_TRIGGER,
        202,
    ),
}
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
BUDGET = 0.60

SETUP = textwrap.dedent(
    """
    import json
    from django.contrib.auth.models import Permission
    from apps.accounts.models import Role, User
    from apps.accounts.services import create_api_key
    from apps.flows.models import Application, Flow, Script

    role, _ = Role.objects.get_or_create(name="Bench callers")
    role.permissions.add(*Permission.objects.filter(
        content_type__app_label="accounts", codename__in=["use_api_key", "run_flows"]))
    user = User.objects.filter(username="bench-caller").first() or User.objects.create_user(
        "bench-caller", account_type=User.AccountType.INTEGRATION)
    role.members.add(user)
    key = create_api_key(owner=user, label="bench").plaintext
    app, _ = Application.objects.get_or_create(name="Bench")
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    for name, path, mode in (("greeting", "/greeting", "sync"),
                             ("greeting-async", "/greeting-async", "async")):
        Flow.objects.update_or_create(application=app, name=name, defaults={
            "page_processors": [{"type": "script", "_scriptId": str(script.pk)}],
            "api": {"enabled": True, "method": "GET", "path": path, "mode": mode}})
    print(json.dumps({"key": key}))
    """
)
COUNTS = textwrap.dedent(
    """
    import json
    from django.db.models import Count
    from apps.executions.models import Execution
    rows = Execution.objects.values("status").annotate(n=Count("pk"))
    print(json.dumps({row["status"]: row["n"] for row in rows}))
    """
)
TIMES = textwrap.dedent(
    """
    import json
    from apps.executions.models import Execution
    ids = json.load(open(IDS_FILE))
    rows = Execution.objects.filter(pk__in=ids).values_list("created_at", "started_at",
                                                            "finished_at")
    ms = lambda a, b: (b - a).total_seconds() * 1000 if a and b else None
    print(json.dumps([[ms(c, s), ms(c, f)] for c, s, f in rows]))
    """
)
IN_PROCESS = textwrap.dedent(
    """
    import cProfile, io, json, pstats, sys, time
    import django
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    key, paths, profile = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    WRITES = ("INSERT", "UPDATE", "DELETE")
    out = {}
    for letter, path in paths.items():
        for _ in range(30):
            client.get(path)
        with CaptureQueriesContext(connection) as queries:
            status = client.get(path).status_code
        sql = [q["sql"].lstrip().split(None, 1)[0].upper() for q in queries.captured_queries]
        n = 200
        started = time.perf_counter()
        for _ in range(n):
            client.get(path)
        ms = (time.perf_counter() - started) * 1000 / n
        out[letter] = {"status": status, "ms": ms, "queries": len(sql),
                       "writes": sum(word in WRITES for word in sql),
                       "transactions": sql.count("BEGIN")}
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(200):
            client.get(paths["b"])
        profiler.disable()
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(25)
            print(text.getvalue(), file=sys.stderr)
    print(json.dumps(out))
    """
)


# --- The instance ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def instance_env(var_dir: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FLOWSITE_VAR_DIR=str(var_dir),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        FLOWSITE_API_KEY_SECRET=secrets.token_urlsafe(48),
        FLOWSITE_ENCRYPTION_KEY=secrets.token_urlsafe(48),
        HOST="127.0.0.1",
        PORT=str(port),
        FLOWSITE_THROTTLE_KEY=THROTTLE,
        FLOWSITE_THROTTLE_USER=THROTTLE,
        DJANGO_SETTINGS_MODULE="flowsite.settings",
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(env, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def shell(env, code: str, **names: str) -> object:
    """Run `code` in `manage.py shell` with NAME placeholders replaced by string literals;
    its last stdout line is JSON."""
    for name, value in {"GREETING": GREETING, **names}.items():
        code = code.replace(name, repr(value))
    out = manage(env, "shell", "-c", code)
    return json.loads(out.strip().splitlines()[-1])


def run_counts(env) -> dict[str, int]:
    return shell(env, COUNTS)


def start_server(env, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), "serve"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one
    )
    process.log = log
    return process


def wait_healthy(base: str, process: subprocess.Popen, log_path: Path, timeout=60.0) -> float:
    http = urllib3.PoolManager(retries=False, timeout=2)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"serve exited ({process.returncode}):\n{tail(log_path)}")
        try:
            if http.request("GET", f"{base}/healthz").status == 200:
                return time.monotonic() - started
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"/healthz did not answer within {timeout:.0f} s:\n{tail(log_path)}")


def stop_server(process: subprocess.Popen, marker: bytes) -> None:
    """SIGINT to serve's process group (web, worker, beat), then SIGKILL; then any process
    of this instance left over (sandbox processes run in sessions of their own)."""
    instance_processes(marker)  # remember every pid, so orphaned sandboxes are found
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=25)
    except subprocess.TimeoutExpired:
        print("serve did not stop within 25 s: SIGKILL to its process group")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.log.close()
    time.sleep(0.5)
    for pid in instance_processes(marker):
        try:
            os.kill(pid, signal.SIGKILL)
            print(f"killed leftover process {pid} of the bench instance")
        except ProcessLookupError:
            pass


SANDBOX = b"apps.flows.sandbox.worker"
KNOWN_PIDS: set[int] = set()  # every process of the instance seen so far


def instance_processes(marker: bytes) -> dict[int, tuple[bytes, int | None]]:
    """{pid: (cmdline, owner)} of this instance: processes whose environment names its var
    dir, and the script sandboxes they started (their environment is filtered, but their
    command line names the pid of the process they serve: `owner`)."""
    found, sandboxes = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if SANDBOX in cmdline:
                args = cmdline.split(b"\0")
                sandboxes[int(entry)] = (cmdline, int(args[args.index(SANDBOX) + 1]))
            elif marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found[int(entry)] = (cmdline, None)
        except (OSError, ValueError, IndexError):
            continue
    KNOWN_PIDS.update(found)
    found.update({pid: item for pid, item in sandboxes.items() if item[1] in KNOWN_PIDS})
    return found


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- CPU accounting ---------------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def role_cpu(marker: bytes) -> dict[str, float]:
    """CPU seconds used so far by this instance's processes, by role (sandboxes by parent)."""
    hz = os.sysconf("SC_CLK_TCK")
    procs = {}
    for pid, (cmdline, owner) in instance_processes(marker).items():
        try:
            rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[pid] = (cmdline, owner, (int(rest[11]) + int(rest[12])) / hz)

    def role(pid: int) -> str:
        cmdline, owner, _ = procs.get(pid, (b"", None, 0))
        if owner is not None:
            return f"{role(owner) if owner in procs else 'other'} sandbox"
        if b"gunicorn" in cmdline:
            return "web"
        if b"celery" in cmdline:
            return "beat" if b"beat" in cmdline else "worker"
        return "serve"

    cpu: dict[str, float] = {}
    for pid, (_, _, seconds) in procs.items():
        name = role(pid)
        cpu[name] = cpu.get(name, 0.0) + seconds
    return cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- Load -------------------------------------------------------------------------------


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    print("wrk is not installed: running " + " ".join(install))
    if subprocess.run(install, env=apt, check=False).returncode:  # noqa: S603
        print("retrying after apt-get update")
        subprocess.run(["apt-get", "update", "-q"], env=apt, check=False)  # noqa: S607
        subprocess.run(install, env=apt, check=False)  # noqa: S603
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk could not be installed; install it (apt-get install wrk) and rerun.")
    return wrk


def to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(text: str) -> dict:
    def number(pattern, default=None):
        match = re.search(pattern, text)
        if match is None:
            if default is None:
                raise SystemExit(f"could not read wrk's output:\n{text}")
            return default
        return match.groups()

    (rps,) = number(r"Requests/sec:\s+([\d.]+)")
    (requests,) = number(r"(\d+) requests in")
    latency = {
        int(p): to_ms(v, u)
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    }
    (non2xx,) = number(r"Non-2xx or 3xx responses:\s+(\d+)", ("0",))
    errors = number(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", ("0",))
    return {
        "rps": float(rps),
        "requests": int(requests),
        "p50": latency.get(50),
        "p99": latency.get(99),
        "non2xx": int(non2xx),
        "socket_errors": sum(int(e) for e in errors),
    }


def wrk_run(wrk, url, key, connections, seconds) -> str:
    threads = min(2, connections)
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    cmd += ["-H", f"Authorization: Bearer {key}", url]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def load(wrk, base, key, letter, connections, args, marker) -> dict:
    _, path, _ = SCENARIOS[letter]
    url = base + path
    wrk_run(wrk, url, key, connections, args.warmup)
    cpu_before, ticks_before, wrk_before = role_cpu(marker), machine_ticks(), children_cpu()
    result = parse_wrk(wrk_run(wrk, url, key, connections, args.duration))
    cpu_after, ticks_after, wrk_after = role_cpu(marker), machine_ticks(), children_cpu()
    busy = (ticks_after[0] - ticks_before[0]) / max(1, ticks_after[1] - ticks_before[1])
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    per_request = 1000 / max(1, result["requests"])
    result.update(
        letter=letter,
        connections=connections,
        busy=busy,
        cpu_ms={name: seconds * per_request for name, seconds in cpu.items() if seconds > 0},
        wrk_ms=(wrk_after - wrk_before) * per_request,
        failed=bool(result["non2xx"] or result["socket_errors"]),
    )
    cpu_text = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(result["cpu_ms"].items()))
    print(
        f"({letter}) c={connections}: {result['rps']:,.0f} req/s, p50 {fmt_ms(result['p50'])}, "
        f"p99 {fmt_ms(result['p99'])}, non-2xx {result['non2xx']}, socket errors "
        f"{result['socket_errors']}; machine {busy:.0%} busy; CPU ms/request: {cpu_text}, "
        f"wrk {result['wrk_ms']:.2f}" + ("  ** FAILED **" if result["failed"] else "")
    )
    return result


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def async_jobs(env, base: str, key: str, jobs: int, threads: int, timeout: float) -> dict:
    """Submit `jobs` async calls from a thread pool, poll them all until finished."""
    http = urllib3.PoolManager(maxsize=threads, retries=False, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    url = base + ASYNC_TRIGGER

    def submit(_):
        sent = time.perf_counter()
        response = http.request("GET", url, headers=headers)
        if response.status != 202:
            raise SystemExit(f"(e) async call answered {response.status}: {response.data[:300]}")
        return sent, time.perf_counter() - sent, json.loads(response.data)

    def poll(item):
        index, poll_url = item
        response = http.request("GET", base + poll_url, headers=headers)
        status = json.loads(response.data).get("status") if response.status == 200 else "error"
        return index, status, time.perf_counter()

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        submitted = list(pool.map(submit, range(jobs)))
        submit_seconds = time.perf_counter() - started
        pending = {i: doc["pollUrl"] for i, (_, _, doc) in enumerate(submitted)}
        finished: dict[int, tuple[str, float]] = {}
        rounds = 0
        while pending and time.perf_counter() - started < timeout:
            rounds += 1
            for index, status, seen in pool.map(poll, list(pending.items())):
                if status in TERMINAL or status == "error":
                    finished[index] = (status, seen)
                    pending.pop(index)
            if pending:
                time.sleep(0.05)
        elapsed = max((seen for _, seen in finished.values()), default=time.perf_counter())
        elapsed -= started
    succeeded = sum(status == "succeeded" for status, _ in finished.values())
    e2e = [seen - submitted[i][0] for i, (_, seen) in finished.items()]
    ids_file = Path(env["FLOWSITE_VAR_DIR"]) / "bench-async-ids.json"
    ids_file.write_text(json.dumps([doc["processId"] for _, _, doc in submitted]))
    server = shell(env, TIMES, IDS_FILE=str(ids_file))
    queued = [row[0] for row in server if row[0] is not None]
    total = [row[1] for row in server if row[1] is not None]
    result = {
        "jobs": jobs,
        "succeeded": succeeded,
        "unfinished": len(pending),
        "failed": len(finished) - succeeded,
        "elapsed": elapsed,
        "jobs_per_s": succeeded / elapsed if elapsed else 0.0,
        "submit_per_s": jobs / submit_seconds,
        "submit_p50": percentile([s for _, s, _ in submitted], 50) * 1000,
        "submit_p99": percentile([s for _, s, _ in submitted], 99) * 1000,
        "p50": percentile(e2e, 50) * 1000 if e2e else None,
        "p99": percentile(e2e, 99) * 1000 if e2e else None,
        "rounds": rounds,
        "server_wait_p50": percentile(queued, 50) if queued else None,
        "server_p50": percentile(total, 50) if total else None,
        "server_p99": percentile(total, 99) if total else None,
    }
    print(
        f"(e) {jobs} async jobs, {threads} client threads: {succeeded} succeeded, "
        f"{result['failed']} failed, {len(pending)} unfinished in {elapsed:.2f} s → "
        f"{result['jobs_per_s']:.1f} jobs/s; submitted at {result['submit_per_s']:.0f}/s; "
        f"end to end (client, polled) p50 {fmt_ms(result['p50'])} p99 {fmt_ms(result['p99'])}; "
        f"server created→finished p50 {fmt_ms(result['server_p50'])} "
        f"p99 {fmt_ms(result['server_p99'])} (queued p50 {fmt_ms(result['server_wait_p50'])})"
    )
    return result


def drain_rate(env, seconds: float) -> tuple[int, float]:
    """Runs still queued/running, and how fast the workers finish them with no HTTP load."""
    before = run_counts(env)
    t0 = time.monotonic()
    time.sleep(seconds)
    after = run_counts(env)
    elapsed = time.monotonic() - t0
    done = sum(after.get(s, 0) for s in TERMINAL) - sum(before.get(s, 0) for s in TERMINAL)
    backlog = after.get("queued", 0) + after.get("running", 0)
    return backlog, done / elapsed


# --- Report -----------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    python = platform.python_version()
    return f"{model} ({platform.machine()}), {os.cpu_count()} cores, Python {python}"


def server_config(env) -> str:
    database = env.get("DATABASE_URL", "")
    db = database.split(":", 1)[0] if database else "SQLite (fresh file, WAL)"
    broker = env.get("CELERY_BROKER_URL") or "filesystem:// (embedded, polling 0.05 s)"
    return (
        f"gunicorn gthread {env.get('WEB_WORKERS') or 2} workers x "
        f"{env.get('WEB_THREADS') or 8} threads, --reuse-port, access log on (as `make run`); "
        f"Celery worker prefork x {env.get('CELERY_WORKER_CONCURRENCY') or 2} + beat; {db}; "
        f"broker {broker}; DEBUG=0; API-key throttle raised to {THROTTLE}"
    )


def table(rows: list[dict], e: dict | None, inproc: dict) -> list[str]:
    bare = {row["connections"]: row["rps"] for row in rows if row["letter"] == "a"}
    lines = [
        "| scenario | conns | req/s | p50 | p99 | vs (a) | non-2xx | machine busy "
        "| server CPU ms/req (web) | in-process ms/req · SQL (writes) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = ""
        if row["letter"] in "bc" and bare.get(row["connections"]):
            share = row["rps"] / bare[row["connections"]]
            ratio = f"{share:.0%} {'✓' if share >= BUDGET else '✗'}"
        web = sum(ms for name, ms in row["cpu_ms"].items() if name.startswith("web"))
        cost = inproc.get(row["letter"])
        cost_text = f"{cost['ms']:.2f} · {cost['queries']} ({cost['writes']})" if cost else ""
        non2xx = str(row["non2xx"]) + (" **FAILED**" if row["failed"] else "")
        if row["socket_errors"]:
            non2xx += f" ({row['socket_errors']} socket errors)"
        lines.append(
            f"| ({row['letter']}) {SCENARIOS[row['letter']][0]} | {row['connections']} "
            f"| {row['rps']:,.0f} | {fmt_ms(row['p50'])} | {fmt_ms(row['p99'])} | {ratio} "
            f"| {non2xx} | {row['busy']:.0%} | {web:.2f} | {cost_text} |"
        )
    if e:
        lines.append(
            f"| (e) {e['jobs']} async calls from 16 threads, polled until finished | 16 "
            f"| **{e['jobs_per_s']:.1f} jobs/s** | {fmt_ms(e['p50'])} | {fmt_ms(e['p99'])} | "
            f"| {e['failed']} failed, {e['unfinished']} unfinished | | | |"
        )
    return lines


def limits(rows: list[dict], e: dict | None, inproc: dict, drain, counts) -> list[str]:
    """What limits throughput, from this run's measurements."""

    def row(letter, conns):
        return next((r for r in rows if r["letter"] == letter and r["connections"] == conns), None)

    conns = min(r["connections"] for r in rows)
    a, b, d = row("a", conns), row("b", conns), row("d", conns)
    out = []
    if a and b and inproc.get("a") and inproc.get("b"):
        ia, ib = inproc["a"], inproc["b"]
        web_a = sum(ms for n, ms in a["cpu_ms"].items() if n.startswith("web"))
        web_b = sum(ms for n, ms in b["cpu_ms"].items() if n.startswith("web"))
        sandbox_b = sum(ms for n, ms in b["cpu_ms"].items() if n == "web sandbox")
        bound = (
            "both cores were saturated, so throughput is CPU per request"
            if b["busy"] >= 0.9
            else f"the cores were only {b['busy']:.0%} busy, so requests also wait "
            "(the SQLite write lock, the sandbox round trip) rather than only compute"
        )
        out.append(
            f"- **Sync flow vs bare view.** (a) costs {ia['ms']:.2f} ms in-process with "
            f"{ia['queries']} SQL statements ({ia['writes']} writes); (b) costs {ib['ms']:.2f} ms "
            f"with {ib['queries']} statements ({ib['writes']} writes: each sync run inserts its "
            f"Execution and StepRun rows and updates the Execution twice, each in its own "
            f"write transaction). Under load the web processes used {web_a:.2f} vs {web_b:.2f} "
            f"CPU ms per request (of which the script sandbox {sandbox_b:.2f}); during (b) "
            f"{bound}. wrk itself used {b['wrk_ms']:.2f} CPU ms per request of the same 2 cores."
        )
    if d:
        out.append(
            f"- **Async.** Accepting a call (d) — insert the run, publish to the broker — "
            f"ran at {d['rps']:,.0f} req/s, far faster than the 2 worker processes finish runs"
            + (f" ({e['jobs_per_s']:.1f} jobs/s in (e))" if e else "")
            + f": (d) left {drain[0]:,} runs queued, drained at {drain[1]:.1f} runs/s with no "
            "HTTP load. Nothing bounds that backlog but the disk."
        )
    if e and e.get("server_p50") is not None:
        out.append(
            f"- **End to end (e).** created→finished on the server: p50 "
            f"{fmt_ms(e['server_p50'])}, p99 {fmt_ms(e['server_p99'])}, of which waiting in the "
            f"queue p50 {fmt_ms(e['server_wait_p50'])}; the client saw p50 {fmt_ms(e['p50'])} "
            f"including its polling (every ~50 ms plus a round of {e['jobs']} polls)."
        )
    out.append(f"- Runs recorded during the bench: {counts}.")
    return out


def write_section(lines: list[str]) -> None:
    section = "\n".join([START, *lines, END])
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS.write_text(text)
    print(f"wrote the API section of {BENCHMARKS}")


# --- Main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the section in BENCHMARKS.md")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", default="16,64", help="wrk connections, e.g. 16,64")
    parser.add_argument("--jobs", type=int, default=300, help="async jobs in (e)")
    parser.add_argument("--profile", action="store_true", help="cProfile (b) in-process")
    parser.add_argument("--keep", action="store_true", help="keep the instance's var dir")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]

    wrk = ensure_wrk()
    var_dir = Path(tempfile.mkdtemp(prefix="flowsite-bench-"))
    port = free_port()
    env = instance_env(var_dir, port)
    marker = f"FLOWSITE_VAR_DIR={var_dir}".encode()
    base = f"http://127.0.0.1:{port}"
    log_path = var_dir / "serve.log"
    print(f"instance: {var_dir} (port {port}); {server_config(env)}")
    print(f"note: throttling raised for the run (FLOWSITE_THROTTLE_KEY={THROTTLE})")
    t0 = time.monotonic()
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    key = shell(env, SETUP)["key"]
    print(
        "migrated, collected static files, created the caller and flows in "
        f"{time.monotonic() - t0:.1f} s"
    )

    process = start_server(env, log_path)
    rows: list[dict] = []
    e = None
    drain = (0, 0.0)
    failed = False
    try:
        print(f"`manage.py serve` healthy after {wait_healthy(base, process, log_path):.1f} s")
        http = urllib3.PoolManager(retries=False, timeout=30)
        for letter, (_, path, expected) in SCENARIOS.items():
            response = http.request("GET", base + path, headers={"Authorization": f"Bearer {key}"})
            body = response.data.decode(errors="replace")
            if response.status != expected or (letter in "bc" and body != '"Hello Leor"'):
                raise SystemExit(f"({letter}) {path} answered {response.status}: {body[:300]}")
        print("each endpoint answered as expected once; loading")
        for letter in "abc":
            for conns in connections:
                rows.append(load(wrk, base, key, letter, conns, args, marker))
        print(f"runs before (e): {run_counts(env)}")
        e = async_jobs(env, base, key, args.jobs, 16, timeout=90)
        print(f"runs before (d): {run_counts(env)}")
        rows.append(load(wrk, base, key, "d", connections[0], args, marker))
        drain = drain_rate(env, 5)
        print(
            f"after (d): {drain[0]:,} runs still queued or running; workers finish "
            f"{drain[1]:.1f} runs/s with no HTTP load"
        )
    except BaseException:
        failed = True
        print(f"--- serve log (last lines) ---\n{tail(log_path)}")
        raise
    finally:
        stop_server(process, marker)
        print("server stopped")
        if failed and not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)

    counts = run_counts(env)
    paths = {letter: path for letter, (_, path, _) in SCENARIOS.items()}
    inproc_run = subprocess.run(  # noqa: S603
        [sys.executable, "-c", IN_PROCESS, key, json.dumps(paths), "1" if args.profile else "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if inproc_run.returncode:
        raise SystemExit(f"in-process timing failed:\n{inproc_run.stderr[-3000:]}")
    if args.profile:
        print(inproc_run.stderr)
    inproc = json.loads(inproc_run.stdout.strip().splitlines()[-1])
    for letter, cost in inproc.items():
        print(
            f"in-process ({letter}): {cost['ms']:.2f} ms/request, {cost['queries']} SQL "
            f"statements ({cost['writes']} writes), status {cost['status']}"
        )
    if not args.keep:
        shutil.rmtree(var_dir, ignore_errors=True)

    lines = table(rows, e, inproc)
    print("\n".join(lines))
    ratios = []
    for conns in connections:
        bare = next(r["rps"] for r in rows if r["letter"] == "a" and r["connections"] == conns)
        for letter in "bc":
            rate = next(
                r["rps"] for r in rows if r["letter"] == letter and r["connections"] == conns
            )
            ratios.append(f"({letter})/(a) at c={conns}: {rate / bare:.0%}")
    print("ratios (budget ≥ 60 %): " + "; ".join(ratios))
    findings = limits(rows, e, inproc, drain, counts)
    print("\n".join(findings))
    any_failed = any(r["failed"] for r in rows) or (e and (e["failed"] or e["unfinished"]))
    if args.write:
        write_section(
            [
                "",
                "## HTTP API (bench/api.py)",
                "",
                "Measured by `make bench` (bench/api.py): an isolated instance started exactly as "
                "`make run` does (`manage.py serve`), loaded by `wrk` over loopback on the same "
                f"cores ({args.warmup} s warm-up, then {args.duration} s per scenario, 2 threads). "
                "Every call authenticates with an API key; every flow call records its run.",
                "",
                f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.",
                "",
                f"Server: {server_config(env)}.",
                "",
                *lines,
                "",
                "Budget: (b) and (c) at ≥ 60 % of (a)'s req/s. " + "; ".join(ratios) + ".",
                "In-process: one request through Django's test client after the load, one "
                "thread, no HTTP (200 requests after 30 warm-up).",
                "",
                "What limits it:",
                "",
                *findings,
                "",
            ]
        )
    if any_failed:
        raise SystemExit("some scenario failed (non-2xx, socket errors or unfinished jobs)")


if __name__ == "__main__":
    main()
