"""Requests per second through the HTTP API, on the server `make run` starts, beside
Node-RED and a bare Django view measured in the same run (make bench).

An isolated instance (temporary FLOWSITE_VAR_DIR with a fresh SQLite database, or
DATABASE_URL if set; DEBUG=0; generated secrets; a free port) is migrated, given an
integration account with an API key and the Axway greeting flow (sync, plus an async
copy). Two references are loaded first, each alone on the machine:

  Node-RED  GET /greeting?name=…   the same greeting flow on Node-RED (bench/nodered.py:
                                    npm install into a cache dir, bench/peers/nodered/)
  bare      GET /hello             a Django project of one JsonResponse view and two
                                    middleware (bench/soak.py's MINIMAL_APP), served by
                                    the same Granian command line as `manage.py serve`

Then the instance is started with `manage.py serve` (Granian WSGI + Celery worker + beat)
and loaded. `wrk` (installed with apt-get when missing) runs every scenario at each
--connections (16, 64) and once "alone" (-t1 -c1: one client, sequential requests); the
greeting calls get a different `name` on every request (a wrk Lua script):

  (h) GET /healthz                                      calibration: no DRF, no database
  (a) GET /api/v1/me                                    bare DRF view, same API-key auth
  (b) GET /api/resources/greeting?name=…                the greeting flow, sync
  (c) GET /api/1/action/Bench/greeting/trigger?name=…   the same flow by its trigger URL
  (e) 300 async calls from a thread pool, polled until finished: jobs/s end to end
  (d) GET /api/1/action/Bench/greeting-async/trigger    async, 202 latency (each creates a run)

(e) runs before (d): the runs (d) creates faster than the workers finish them would
otherwise still be queued in front of (e)'s. Afterwards the server is stopped and one
request of each kind is timed and its SQL counted in-process (Django's test client), so
the cost of each layer is visible; --profile adds a cProfile of (b). Targets: (b) and (c)
at >= 0.15 x Node-RED's req/s at c=16, (a) at >= 0.3 x; when npm or the registry cannot be
reached the Node-RED row and ratios are left out, with the reason.

    .venv/bin/python bench/api.py [--write] [--quick] [--duration 8] [--warmup 2]
        [--connections 16,64] [--no-nodered] [--npm-timeout 180] [--profile]
"""

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import nodered
import urllib3
from sections import read_section, write_section
from soak import MINIMAL_APP, start_web, stop_web

ROOT = Path(__file__).resolve().parent.parent
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
    "h": ("calibration: GET /healthz, a plain JsonResponse (no DRF, no database)", "/healthz", 200),
    "a": ("a DRF view, same API-key auth: GET /api/v1/me", ME, 200),
    "b": ("greeting as a resource, sync: GET /api/resources/greeting?name=…", RESOURCE, 200),
    "c": (
        "greeting by trigger URL, sync: GET /api/1/action/Bench/greeting/trigger?name=…",
        TRIGGER,
        200,
    ),
    "d": (
        "async trigger → 202: GET /api/1/action/Bench/greeting-async/trigger?name=…",
        ASYNC_TRIGGER,
        202,
    ),
}
VARIED = "bcd"  # the greeting calls: a different `name` on every request
PEERS = {  # key: description (measured before the instance starts, each alone)
    "nodered": "Node-RED, the same greeting flow: GET /greeting?name=… (no auth, no run history)",
    "bare": "bare view: one Django JsonResponse view, 2 middleware, same Granian command line",
}
BARE_PATH = "/hello"  # MINIMAL_APP's view
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
BUDGET = 0.60  # an earlier budget: (b) and (c) at >= 60 % of (a)'s req/s
TARGET_CONNECTIONS = 16
TARGETS = {"a": 0.3, "b": 0.15, "c": 0.15}  # x Node-RED's req/s at TARGET_CONNECTIONS
ALONE = 1  # "connections" of the one-client, sequential-requests measurement

# wrk script: a different `name` on every request (the thread's number and its counter),
# replacing the one in the URL.
VARY_NAME = textwrap.dedent(
    """
    local threads = 0
    function setup(thread)
      threads = threads + 1
      thread:set("id", threads)
    end

    local prefix, suffix, counter = nil, "", 0
    function init(args)
      local first, last = string.find(wrk.path, "name=[^&]*")
      if first then
        prefix, suffix = string.sub(wrk.path, 1, first + 4), string.sub(wrk.path, last + 1)
      else
        prefix = wrk.path .. (string.find(wrk.path, "?", 1, true) and "&" or "?") .. "name="
      end
    end

    function request()
      counter = counter + 1
      return wrk.format(nil, prefix .. "Leor" .. id .. "-" .. counter .. suffix)
    end
    """
)

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
WEB_COMMAND = textwrap.dedent(
    """
    import json
    from apps.core.management.commands.serve import Command
    print(json.dumps(Command().commands()["web"]))
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
    from apps.core.heap import freeze_startup_objects

    freeze_startup_objects()  # as the web server does once it has loaded the application
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
                       # SQLite issues BEGIN as SQL; other backends do not log it.
                       "transactions": sql.count("BEGIN") if connection.vendor == "sqlite"
                       else None}
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
        if b"granian" in cmdline or b"gunicorn" in cmdline:
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


def group_cpu(pgid: int) -> dict[str, float]:
    """CPU seconds used so far by the live processes of a process group (a reference
    server the bench started in a session of its own), as its "web" role."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[2]) == pgid:
            total += (int(rest[11]) + int(rest[12])) / hz
    return {"web": total}


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


@dataclasses.dataclass
class Target:
    """What wrk loads: a scenario letter of the instance, or a reference ("nodered",
    "bare")."""

    key: str
    url: str
    cpu: Callable[[], dict[str, float]]  # CPU seconds so far of its server, by role
    headers: tuple[str, ...] = ()
    script: Path | None = None  # wrk Lua script (VARY_NAME for the greeting calls)


def label(key: str) -> str:
    return {"nodered": "Node-RED", "bare": "bare view"}.get(key, f"({key})")


def conns_label(connections: int) -> str:
    return "alone" if connections == ALONE else f"c={connections}"


def wrk_run(wrk, target: Target, connections, seconds) -> str:
    threads = min(2, connections)
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for header in target.headers:
        cmd += ["-H", header]
    if target.script:
        cmd += ["-s", str(target.script)]
    result = subprocess.run([*cmd, target.url], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


DISTURBED = 0.3  # cores used by processes outside the bench: measure again above this


def load(wrk, target: Target, connections, args) -> dict:
    """One scenario; measured again once if other processes took a share of the cores."""
    result = load_once(wrk, target, connections, args)
    if result["other_cores"] > DISTURBED:
        print(f"   other processes used {result['other_cores']:.2f} cores: measuring again")
        again = load_once(wrk, target, connections, args)
        result = min(result, again, key=lambda r: r["other_cores"])
    return result


def load_once(wrk, target: Target, connections, args) -> dict:
    wrk_run(wrk, target, connections, args.warmup)
    cpu_before, ticks_before, wrk_before = target.cpu(), machine_ticks(), children_cpu()
    started = time.monotonic()
    result = parse_wrk(wrk_run(wrk, target, connections, args.duration))
    elapsed = time.monotonic() - started
    cpu_after, ticks_after, wrk_after = target.cpu(), machine_ticks(), children_cpu()
    busy = (ticks_after[0] - ticks_before[0]) / max(1, ticks_after[1] - ticks_before[1])
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    per_request = 1000 / max(1, result["requests"])
    ours = (sum(cpu.values()) + wrk_after - wrk_before) / elapsed  # cores
    result.update(
        key=target.key,
        connections=connections,
        busy=busy,
        ours_cores=ours,
        other_cores=max(0.0, busy * (os.cpu_count() or 1) - ours),
        cpu_ms={
            name: seconds * per_request
            for name, seconds in cpu.items()
            if seconds * per_request >= 0.005
        },
        wrk_ms=(wrk_after - wrk_before) * per_request,
        failed=bool(result["non2xx"] or result["socket_errors"]),
    )
    cpu_text = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(result["cpu_ms"].items()))
    print(
        f"{label(target.key)} {conns_label(connections)}: {result['rps']:,.0f} req/s, "
        f"p50 {fmt_ms(result['p50'])}, p99 {fmt_ms(result['p99'])}, non-2xx "
        f"{result['non2xx']}, socket errors {result['socket_errors']}; cores used: bench "
        f"{ours:.2f}, other processes {result['other_cores']:.2f}; CPU ms/request: "
        f"{cpu_text}, wrk {result['wrk_ms']:.2f}" + ("  ** FAILED **" if result["failed"] else ""),
        flush=True,
    )
    return result


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f} ms"
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


def drain_rate(env, marker: bytes, seconds: float) -> dict:
    """Runs still queued/running, how fast the workers finish them with no HTTP load, and
    how busy they are meanwhile."""
    before, cpu_before, ticks_before = run_counts(env), role_cpu(marker), machine_ticks()
    t0 = time.monotonic()
    time.sleep(seconds)
    after, cpu_after, ticks_after = run_counts(env), role_cpu(marker), machine_ticks()
    elapsed = time.monotonic() - t0
    done = sum(after.get(s, 0) for s in TERMINAL) - sum(before.get(s, 0) for s in TERMINAL)
    worker = sum(
        cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after if "worker" in name
    )
    return {
        "backlog": after.get("queued", 0) + after.get("running", 0),
        "rate": done / elapsed,
        "worker_ms_per_run": worker * 1000 / done if done else None,
        "worker_busy": worker / elapsed,  # in cores
        "busy": (ticks_after[0] - ticks_before[0]) / max(1, ticks_after[1] - ticks_before[1]),
    }


def single_jobs(env, base: str, key: str, count: int) -> dict:
    """Async jobs one at a time on an idle queue: the pickup latency of the broker."""
    http = urllib3.PoolManager(retries=False, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    client, ids = [], []
    for _ in range(count):
        sent = time.perf_counter()
        document = json.loads(http.request("GET", base + ASYNC_TRIGGER, headers=headers).data)
        ids.append(document["processId"])
        while time.perf_counter() - sent < 30:
            poll = json.loads(http.request("GET", base + document["pollUrl"], headers=headers).data)
            if poll.get("status") in TERMINAL:
                break
            time.sleep(0.01)
        client.append((time.perf_counter() - sent) * 1000)
    ids_file = Path(env["FLOWSITE_VAR_DIR"]) / "bench-single-ids.json"
    ids_file.write_text(json.dumps(ids))
    server = shell(env, TIMES, IDS_FILE=str(ids_file))
    return {
        "client_p50": statistics.median(client),
        "server_p50": statistics.median(row[1] for row in server if row[1] is not None),
        "queued_p50": statistics.median(row[0] for row in server if row[0] is not None),
    }


def find_py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def spy(py_spy, wrk, base, key, marker, seconds: int, work: Path) -> dict:
    """Sample the web workers with py-spy while (b) runs (not a measured pass): where do
    request threads spend their time?"""
    url = base + SCENARIOS["b"][1]
    cmd = [wrk, "-t2", "-c16", f"-d{seconds + 4}s", "-H", f"Authorization: Bearer {key}", url]
    load = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)  # noqa: S603
    try:
        time.sleep(2)
        procs = instance_processes(marker)
        servers = {
            pid
            for pid, (cmdline, owner) in procs.items()
            if b"granian" in cmdline or b"gunicorn" in cmdline
        }
        workers = [pid for pid in servers if parent(pid) in servers]
        record = [py_spy, "record", "--idle", "--rate", "100", "--duration", str(seconds)]
        samplers = [
            subprocess.Popen(  # noqa: S603
                [
                    *record,
                    "--format",
                    "raw",
                    "--output",
                    str(work / f"spy-{pid}.txt"),
                    "-p",
                    str(pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in workers
        ]
        for sampler in samplers:
            sampler.wait()
    finally:
        load.wait()
    total = 0
    shares: dict[str, int] = {}
    for path in work.glob("spy-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if not any(REQUEST_ENTRY in frame for frame in frames):
                continue  # an idle thread, the server's own loop, a writer thread
            total += int(count)
            shares[classify(frames)] = shares.get(classify(frames), 0) + int(count)
    return {name: n / total for name, n in shares.items()} if total else {}


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


# Where a request thread starts running Django, under Granian or gunicorn.
REQUEST_ENTRY = "django/core/handlers/wsgi.py"


def classify(frames: list[str]) -> str:
    """What a request thread was doing in one py-spy sample."""
    if any("group_commit.py" in frame for frame in frames):
        return "waiting for the group commit of its run's record"
    if any("_acquire (apps/flows/sandbox/pool.py" in frame for frame in frames):
        return "waiting for a free script sandbox (its flow's share of the pool)"
    for index, frame in enumerate(frames):
        if "_start_transaction_under_autocommit" in frame:
            opener = next(
                (f.split(" (")[0] for f in reversed(frames[:index]) if "(apps/" in f), "?"
            )
            return f"waiting to begin a write transaction (BEGIN IMMEDIATE) in {opener}()"
    if any("sandbox/pool.py" in frame for frame in frames):
        return "script sandbox round trip"
    if any(frame.startswith("CursorWrapper._execute ") for frame in frames):
        return "in the database (other statements, COMMIT)"
    if any("db/backends/" in frame or "models/sql/" in frame for frame in frames):
        return "ORM (building queries, reading rows)"
    return "Django, DRF, the app's own Python"


# --- The references: a bare Django view and Node-RED ------------------------------------


def measure_bare(wrk, env, work: Path, connections: list[int], args) -> list[dict]:
    """soak.py's MINIMAL_APP (one JsonResponse view, two middleware) served by the web
    server command line `manage.py serve` builds (same workers, threads, access log), with
    only the application, its folder and the port changed."""
    command = shell(env, WEB_COMMAND)
    app_dir = work / "bare"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "minimal_app.py").write_text(MINIMAL_APP)
    port = free_port()
    try:
        command[next(i for i, arg in enumerate(command) if arg.endswith(":application"))] = "APP"
        command[command.index("--port") + 1] = str(port)
        if "--working-dir" in command:
            command[command.index("--working-dir") + 1] = str(app_dir)
    except (StopIteration, ValueError):
        raise SystemExit(
            f"cannot adapt serve's web command line to the bare view: {command}"
        ) from None
    print("bare view: " + " ".join(command).replace("APP", "minimal_app:application"))
    bare_env = {name: value for name, value in env.items() if name != "DJANGO_SETTINGS_MODULE"}
    bare_env.update(BENCH_CWD=str(app_dir), PYTHONPATH=str(app_dir))
    base = f"http://127.0.0.1:{port}"
    process = start_web(command, "minimal_app:application", bare_env, work / "bare.log", base)
    try:
        target = Target("bare", base + BARE_PATH, lambda: group_cpu(process.pid))
        return [load(wrk, target, conns, args) for conns in [*connections, ALONE]]
    finally:
        stop_web(process)
        process.out.close()


def measure_nodered(wrk, work: Path, connections: list[int], args, script: Path):
    """Node-RED's greeting at each connection count and alone, with a different `name` on
    every request: (rows, what was measured), or ([], why it was left out)."""
    if args.no_nodered:
        return [], "left out with --no-nodered"
    try:
        home = nodered.install(args.npm_timeout)
        port = free_port()
        process = nodered.start(home, work, port)
    except nodered.Unavailable as exc:
        return [], str(exc)
    try:
        about = nodered.versions(home)
        base = f"http://127.0.0.1:{port}"
        check = f"Check{secrets.token_hex(3)}"
        body = urllib3.PoolManager(retries=False, timeout=10).request(
            "GET", f"{base}/greeting?name={check}"
        )
        if nodered.answer_of(body.data.decode(errors="replace")) != f"Hello {check}":
            raise SystemExit(f"Node-RED answered name={check} with {body.data[:200]!r}")
        print(f"{about} answers {nodered.GREETING} on port {port}; loading")
        target = Target(
            "nodered", base + nodered.GREETING, lambda: group_cpu(process.pid), script=script
        )
        rows = [load(wrk, target, conns, args) for conns in [*connections, ALONE]]
    finally:
        nodered.stop(process)
    return rows, about


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
    broker = env.get("CELERY_BROKER_URL") or "filesystem:// (embedded, inotify wake-up)"
    return (
        f"Granian WSGI {env.get('WEB_WORKERS') or 2} workers x "
        f"{env.get('WEB_THREADS') or 8} blocking threads, access log on (as `make run`); "
        f"Celery workers x {env.get('CELERY_WORKER_CONCURRENCY') or 2} (solo pool) + beat; {db}; "
        f"broker {broker}; DEBUG=0; API-key throttle raised to {THROTTLE}"
    )


def find(rows: list[dict], key: str, connections: int) -> dict | None:
    return next((r for r in rows if r["key"] == key and r["connections"] == connections), None)


def ratio(rows, key: str, reference: str, connections: int) -> float | None:
    """key's req/s as a multiple of the reference's, at the same connections."""
    row, base = find(rows, key, connections), find(rows, reference, connections)
    return row["rps"] / base["rps"] if row and base and base["rps"] else None


def fmt_ratio(value: float | None, target: float | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value:.2g}" if value < 0.1 else f"{value:.2f}"
    return text + ("" if target is None else " ✓" if value >= target else " ✗")


def table(rows: list[dict], e: dict | None, inproc: dict, connections: list[int]) -> list[str]:
    """One line per endpoint: req/s and p50 / p99 at each connection count, p50 alone, and
    the same-run ratios to Node-RED and to the bare view."""
    at = "/".join(str(c) for c in connections)
    # A reference left out of the run (Node-RED without npm) has no row and no column.
    references = [key for key in PEERS if any(row["key"] == key for row in rows)]
    head = ["scenario"]
    for conns in connections:
        head += [f"c={conns} req/s", f"c={conns} p50 / p99"]
    head += [
        "alone p50",
        *(f"x {label(key)} (c={at})" for key in references),
        f"web CPU ms/req (c={connections[0]})",
        "in-process ms/req · SQL (writes)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in ["nodered", "bare", *SCENARIOS]:
        measured = [r for r in rows if r["key"] == key]
        if not measured:
            continue
        cells = [PEERS[key] if key in PEERS else f"({key}) {SCENARIOS[key][0]}"]
        for conns in connections:
            row = find(rows, key, conns)
            if row is None:
                cells += ["-", "-"]
                continue
            rate = f"{row['rps']:,.0f}" + (" †" if row["other_cores"] > DISTURBED else "")
            if row["failed"]:
                rate += f" **FAILED** ({row['non2xx']} non-2xx, {row['socket_errors']} errors)"
            cells += [rate, f"{fmt_ms(row['p50'])} / {fmt_ms(row['p99'])}"]
        alone = find(rows, key, ALONE)
        cells.append(fmt_ms(alone["p50"]) if alone else "-")
        for reference in references:
            cells.append(
                "-"
                if key == reference
                else " / ".join(
                    fmt_ratio(
                        ratio(rows, key, reference, conns),
                        TARGETS.get(key)
                        if reference == "nodered" and conns == TARGET_CONNECTIONS
                        else None,
                    )
                    for conns in connections
                )
            )
        first = find(rows, key, connections[0])
        web = first and sum(ms for name, ms in first["cpu_ms"].items() if name.startswith("web"))
        cells.append(f"{web:.2f}" if first else "-")
        cost = inproc.get(key)
        cells.append(f"{cost['ms']:.2f} · {cost['queries']} ({cost['writes']})" if cost else "")
        lines.append("| " + " | ".join(cells) + " |")
    if e:
        cells = [f"(e) {e['jobs']} async calls from 16 threads, polled until finished"]
        cells += [
            f"**{e['jobs_per_s']:.1f} jobs/s**"
            + (
                f" ({e['failed']} failed, {e['unfinished']} unfinished)"
                if e["failed"] or e["unfinished"]
                else ""
            ),
            f"{fmt_ms(e['p50'])} / {fmt_ms(e['p99'])} end to end",
        ]
        cells += [""] * (len(head) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdicts(rows, connections: list[int], nodered_note: str, previous: str | None) -> list[str]:
    """The targets, /healthz against the bare view, and the earlier (b)/(a) budget."""
    conns = TARGET_CONNECTIONS if TARGET_CONNECTIONS in connections else connections[0]
    out = []
    if any(r["key"] == "nodered" for r in rows):
        checks = []
        for key, target in TARGETS.items():
            value = ratio(rows, key, "nodered", conns)
            checks.append(f"({key}) {fmt_ratio(value, target)} (target ≥ {target} x)")
        out.append(
            f"Targets at c={conns}, as a multiple of Node-RED's req/s in the same run: greeting "
            f"(b), (c) ≥ 0.15 x, /api/v1/me (a) ≥ 0.3 x. Measured: " + "; ".join(checks) + "."
        )
    else:
        out.append(
            "Targets (greeting ≥ 0.15 x Node-RED's req/s at c=16, /api/v1/me ≥ 0.3 x) not "
            f"checked: Node-RED was not measured in this run ({nodered_note})."
        )
    healthz = find(rows, "h", conns)
    if healthz:
        out.append(
            f"/healthz must not get slower: (h) {healthz['rps']:,.0f} req/s at c={conns}, "
            f"{fmt_ratio(ratio(rows, 'h', 'bare', conns))} x the bare view in the same run"
            + (f" (previous recorded run: {previous})." if previous else ".")
        )
    budget = []
    for c in connections:
        for key in "bc":
            value = ratio(rows, key, "a", c)
            if value is not None:
                budget.append(
                    f"({key})/(a) at c={c}: {value:.0%} {'✓' if value >= BUDGET else '✗'}"
                )
    if budget:
        out.append(
            "Earlier budget, (b) and (c) at ≥ 60 % of (a)'s req/s: " + "; ".join(budget) + "."
        )
    return out


def previous_healthz() -> str | None:
    """/healthz as the api section of BENCHMARKS.md recorded it last time."""
    text = read_section("api")
    match = re.search(r"<!-- healthz (\{.*?\}) -->", text)
    if match:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            last = json.loads(match.group(1))
            versus = f", {fmt_ratio(last['bare'])} x the bare view" if last.get("bare") else ""
            return f"{last['rps']:,.0f} req/s at c={last['connections']}{versus}, {last['date']}"
    match = re.search(r"^\| \(h\)[^|]*\| 16 \| ([\d,]+) \|", text, re.M)
    if match:  # the table's layout before the references were added
        date = re.search(r"Date: ([\d-]+)", text)
        return f"{match.group(1)} req/s at c=16, no bare view then" + (
            f", {date.group(1)}" if date else ""
        )
    return None


def limits(rows, e, inproc, drain, counts, spied, single, conns: int) -> list[str]:
    """What limits throughput, in words built from this run's measurements (at conns)."""

    def row(key):
        return find(rows, key, conns)

    def web_ms(result, sandbox=False):
        names = ("web sandbox",) if sandbox else ("web", "web sandbox")
        return sum(ms for name, ms in result["cpu_ms"].items() if name in names)

    a, b, d = row("a"), row("b"), row("d")
    out = []
    if a and b and inproc.get("a") and inproc.get("b"):
        ia, ib = inproc["a"], inproc["b"]
        out.append(
            f"- **Cost per request.** In-process (one thread, no HTTP) (a) takes {ia['ms']:.2f} ms "
            f"and {ia['queries']} SQL statements; (b) takes {ib['ms']:.2f} ms "
            f"({ib['ms'] / ia['ms']:.1f} times as long) and {ib['queries']} statements, of which "
            f"{ib['writes']} writes"
            + (f" in {ib['transactions']} write transactions" if ib.get("transactions") else "")
            + ": a sync run records itself (its Execution row, a StepRun per step). "
            "Under load (c="
            f"{b['connections']}) the web processes spent {web_ms(a):.2f} CPU ms per (a) request "
            f"and {web_ms(b):.2f} per (b) request, of which {web_ms(b, True):.2f} in the script "
            f"sandbox; wrk used {b['wrk_ms']:.2f} ms per request of the same cores."
        )
        cores = os.cpu_count() or 1
        if b["ours_cores"] >= 0.9 * cores:
            verdict = f"the bench used {b['ours_cores']:.2f} of {cores} cores: (b) is CPU-bound"
        elif b["other_cores"] > DISTURBED:
            verdict = (
                f"other processes on the machine used {b['other_cores']:.2f} of {cores} cores, "
                "so this run cannot tell waiting from computing"
            )
        else:
            verdict = (
                f"the server and wrk used only {b['ours_cores']:.2f} of {cores} cores with "
                f"{b['connections']} requests always outstanding (during (a): "
                f"{a['ours_cores']:.2f}), so request threads were waiting, not computing"
            )
        out.append(f"- **Waiting vs computing.** During (b) {verdict}.")
    if spied:
        top = sorted(spied.items(), key=lambda item: -item[1])
        waiting = sum(share for name, share in spied.items() if name.startswith("waiting"))
        text = (
            "- **Where request threads are (py-spy, web workers, during (b)).** "
            + "; ".join(f"{share:.0%} {name}" for name, share in top)
            + "."
        )
        if waiting >= 0.3:
            text += (
                f" {waiting:.0%} of the samples are waits: with 16 requests outstanding and 8 "
                "threads per worker, threads queue behind the call that holds their flow's "
                "sandbox share or leads the group commit. Where the cores are busy (cores "
                "used, above), the waits show where the queue sits, not an idle resource."
            )
        out.append(text)
    if d and drain:
        faster = e and d["rps"] > e["jobs_per_s"]
        out.append(
            f"- **Async accept vs finish.** Accepting a call (d) — insert the run, publish it — "
            f"ran at {d['rps']:,.0f} req/s"
            + (
                f", faster than the 2 worker processes finish runs ({e['jobs_per_s']:.1f} jobs/s "
                "in (e))"
                if faster
                else ""
            )
            + f"; after (d) {drain['backlog']:,} runs were still queued or running. Nothing "
            "bounds that backlog."
        )
        per_run = drain["worker_ms_per_run"]
        if per_run and drain["rate"]:
            cap = 2 * 1000 / per_run
            out.append(
                f"- **What caps the workers.** Draining that backlog with no HTTP load: "
                f"{drain['rate']:.1f} runs/s, while the workers used {drain['worker_busy']:.2f} "
                f"of 2 cores ({fmt_ms(per_run)} CPU per run, their sandboxes and the consumer "
                f"included) and the machine was {drain['busy']:.0%} busy. At that cost two "
                f"cores could finish at most 2 / {per_run:.1f} ms = {cap:.0f} runs/s; "
                + (
                    "the embedded broker wakes a worker by inotify when a message arrives or "
                    "a slot frees (apps/core/broker.py), so the gap to that is each "
                    "worker's own hand-offs (prefetch 1, acks_late), not a polling sleep. "
                    if os.environ.get("CELERY_BROKER_URL", "filesystem://").startswith(
                        "filesystem://"
                    )
                    else "the gap to that is each worker's own hand-offs (prefetch 1, "
                    "acks_late) and the broker's round trips. "
                )
                + "One job alone: "
                f"created→finished {fmt_ms(single.get('server_p50'))} on the server, of which "
                f"queued {fmt_ms(single.get('queued_p50'))}."
            )
    if e and e.get("server_p50") is not None:
        out.append(
            f"- **End to end (e).** created→finished on the server: p50 "
            f"{fmt_ms(e['server_p50'])}, p99 {fmt_ms(e['server_p99'])}, of which waiting in the "
            f"queue p50 {fmt_ms(e['server_wait_p50'])}; the client, polling every ~50 ms, saw "
            f"p50 {fmt_ms(e['p50'])}, p99 {fmt_ms(e['p99'])}."
        )
    runs = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items()))
    out.append(f"- Runs recorded by the bench: {runs}.")
    return out


# --- Main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the section in BENCHMARKS.md")
    parser.add_argument("--duration", type=int, default=8, help="seconds per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", default="16,64", help="wrk connections, e.g. 16,64")
    parser.add_argument("--jobs", type=int, default=300, help="async jobs in (e)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: --duration 3 --warmup 1 --jobs 100 --no-spy (noisier figures)",
    )
    parser.add_argument("--no-nodered", action="store_true", help="leave Node-RED out")
    parser.add_argument(
        "--npm-timeout", type=float, default=180, help="seconds for `npm install` of Node-RED"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile (b) in-process")
    parser.add_argument("--keep", action="store_true", help="keep the instance's var dir")
    parser.add_argument(
        "--no-spy", action="store_true", help="skip sampling (b) with py-spy even if installed"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.jobs, args.no_spy = 3, 1, 100, True
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    first = connections[0]

    begun = time.monotonic()
    load_before = os.getloadavg()
    previous = previous_healthz()
    wrk = ensure_wrk()
    var_dir = Path(tempfile.mkdtemp(prefix="flowsite-bench-"))
    port = free_port()
    env = instance_env(var_dir, port)
    marker = f"FLOWSITE_VAR_DIR={var_dir}".encode()
    base = f"http://127.0.0.1:{port}"
    log_path = var_dir / "serve.log"
    script = var_dir / "vary-name.lua"
    script.write_text(VARY_NAME)
    print(f"instance: {var_dir} (port {port}); {server_config(env)}")
    print(f"note: throttling raised for the run (FLOWSITE_THROTTLE_KEY={THROTTLE})")
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in load_before))
    t0 = time.monotonic()
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    key = shell(env, SETUP)["key"]
    print(
        "migrated, collected static files, created the caller and flows in "
        f"{time.monotonic() - t0:.1f} s"
    )

    # The references first, each alone on the machine (the instance is not started yet:
    # its idle Celery worker and beat would share the cores).
    rows: list[dict] = measure_bare(wrk, env, var_dir, connections, args)
    nodered_rows, nodered_note = measure_nodered(wrk, var_dir, connections, args, script)
    if nodered_rows:
        rows += nodered_rows
    else:
        print(
            f"Node-RED left out: {nodered_note}. The table is written without the Node-RED "
            "row and ratios."
        )

    process = start_server(env, log_path)
    spied: dict[str, float] = {}
    e = None
    drain: dict = {}
    single: dict = {}
    failed = False
    try:
        print(f"`manage.py serve` healthy after {wait_healthy(base, process, log_path):.1f} s")
        http = urllib3.PoolManager(retries=False, timeout=30)
        auth = {"Authorization": f"Bearer {key}"}
        for letter, (_, path, expected) in SCENARIOS.items():
            response = http.request("GET", base + path, headers=auth)
            body = response.data.decode(errors="replace")
            if response.status != expected or (letter in "bc" and body != '"Hello Leor"'):
                raise SystemExit(f"({letter}) {path} answered {response.status}: {body[:300]}")
            if letter in "bc":  # the flow reads the name it is given: no answer is reused
                check = f"Check{secrets.token_hex(3)}"
                body = http.request(
                    "GET", base + path.replace("name=Leor", f"name={check}"), headers=auth
                ).data.decode(errors="replace")
                if body != f'"Hello {check}"':
                    raise SystemExit(f"({letter}) answered name={check} with {body[:300]}")
        print("each endpoint answered as expected once; loading")

        def target(letter: str) -> Target:
            return Target(
                letter,
                base + SCENARIOS[letter][1],
                lambda: role_cpu(marker),
                headers=(f"Authorization: Bearer {key}",),
                script=script if letter in VARIED else None,
            )

        for letter in "habc":
            for conns in [*connections, ALONE]:
                rows.append(load(wrk, target(letter), conns, args))
        py_spy = None if args.no_spy else find_py_spy()
        if py_spy:
            spied = spy(py_spy, wrk, base, key, marker, 8, var_dir)
            print("py-spy, web workers during (b) (an extra, unmeasured pass):")
            for name, share in sorted(spied.items(), key=lambda item: -item[1]):
                print(f"  {share:6.1%}  {name}")
        else:
            print("py-spy is not installed or --no-spy: not sampling where request threads wait")
        single = single_jobs(env, base, key, 5)
        print(
            f"one async job at a time (x5): client sees it finished after "
            f"{fmt_ms(single['client_p50'])} (p50, polling every 10 ms); on the server "
            f"created→finished {fmt_ms(single['server_p50'])}, of which queued "
            f"{fmt_ms(single['queued_p50'])}"
        )
        print(f"runs before (e): {run_counts(env)}")
        e = async_jobs(env, base, key, args.jobs, 16, timeout=90)
        print(f"runs before (d): {run_counts(env)}")
        rows.append(load(wrk, target("d"), first, args))
        drain = drain_rate(env, marker, 5)
        print(
            f"after (d): {drain['backlog']:,} runs still queued or running; the workers finish "
            f"{drain['rate']:.1f} runs/s with no HTTP load, using "
            f"{drain['worker_busy']:.2f} cores ({fmt_ms(drain['worker_ms_per_run'])} CPU per "
            f"run); machine {drain['busy']:.0%} busy"
        )
        # Trigger → 202 for one client alone (the "p50 alone"), last: the workers are
        # still draining (d)'s backlog meanwhile, so this is the pessimistic figure.
        rows.append(load(wrk, target("d"), ALONE, args))
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

    load_after = os.getloadavg()
    lines = table(rows, e, inproc, connections)
    notes = verdicts(rows, connections, nodered_note, previous)
    other = max(r["other_cores"] for r in rows)
    notes.append(
        f"Other processes on the machine used at most {other:.2f} cores during a measurement"
        + (
            f"; † marks those above {DISTURBED} even when measured again."
            if other > DISTURBED
            else f" (a measurement above {DISTURBED} is repeated once)."
        )
        + " Load average (1 min) "
        f"{load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end."
    )
    print("\n".join(["", *lines, "", *notes, ""]))
    findings = limits(rows, e, inproc, drain, counts, spied, single, first)
    print("\n".join(findings))
    any_failed = any(r["failed"] for r in rows) or (e and (e["failed"] or e["unfinished"]))
    healthz = find(rows, "h", first)
    figures = {
        "rps": round(healthz["rps"]),
        "bare": ratio(rows, "h", "bare", first),
        "connections": first,
        "date": time.strftime("%Y-%m-%d"),
    }
    references = [
        f"Node-RED: {nodered_note}, installed by npm outside the project (bench/nodered.py, "
        "bench/peers/nodered/): the same greeting flow, with no auth and no run history."
        if nodered_rows
        else f"Node-RED: not measured in this run: {nodered_note}.",
        "Bare view: bench/soak.py's MINIMAL_APP (one JsonResponse view, SecurityMiddleware "
        "and CommonMiddleware) served by the web server command line `manage.py serve` "
        "builds (same Granian workers, threads and access log), only the application and "
        "port changed.",
        "Both references are loaded first, each alone on the machine, before the instance starts.",
    ]
    if args.write:
        write_section(
            "api",
            "\n".join(
                [
                    "",
                    "## HTTP API (bench/api.py)",
                    "",
                    "Measured by `make bench` (bench/api.py): an isolated instance started "
                    "exactly as `make run` does (`manage.py serve`), Node-RED and a bare Django "
                    "view, in the same run, loaded by `wrk` over loopback on the same cores "
                    f"({args.warmup} s warm-up, then {args.duration} s per scenario, 2 threads at "
                    f"c={'/'.join(map(str, connections))}; 'alone' is `wrk -t1 -c1`, one client "
                    "sending requests one after another). Every Flowsite call authenticates "
                    "with an API key; every flow call records its run. The greeting calls "
                    "(Node-RED's, (b), (c), (d)) send a different `name` on every request.",
                    "",
                    f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.",
                    "",
                    f"Server: {server_config(env)}.",
                    "",
                    *[f"- {text}" for text in references],
                    "",
                    *lines,
                    "",
                    *notes,
                    "",
                    "(e) runs before (d): (d) creates runs faster than the workers finish them, "
                    "and that backlog would be queued in front of (e)'s jobs. In-process: the same "
                    "requests through Django's test client after the server stopped, one thread, "
                    "no HTTP (200 after 30 warm-up); SQL counted for one request.",
                    "",
                    "What limits it:",
                    "",
                    *findings,
                    "",
                    f"<!-- healthz {json.dumps(figures)} -->",
                    "",
                ]
            ),
        )
    print(f"bench/api.py took {time.monotonic() - begun:.0f} s")
    if any_failed:
        raise SystemExit("some scenario failed (non-2xx, socket errors or unfinished jobs)")


if __name__ == "__main__":
    main()
