"""Start the web server, Celery workers and Celery beat together, and keep them running.

A child that exits is started again after a pause that doubles with each crash (1 s up to
30 s, back to 1 s once it has run for a minute), and the restart is logged; the others
keep running. Ctrl-C (SIGINT) or SIGTERM stops them all and exits 0.

Each child runs in a process group of its own, so that stopping it (or cleaning up after
its crash) reaches the processes it started: the web server's workers, the script
sandboxes. CELERY_WORKER_CONCURRENCY workers (worker-1, worker-2, …) each run one task at
a time.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand, CommandError

from apps.core.startup import check_database, describe_database, take_notice

# How long a child may take to stop cleanly (Celery finishes the runs in progress) before
# its whole process group is killed.
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0  # for /readyz with a worker, before the address is printed
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
# A child that ran at least this long before it exited is restarted after BACKOFF_FIRST.
RAN_WELL = 60.0


def die_with_parent():
    """Children get SIGTERM if `serve` itself dies (Linux), so none is left orphaned."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_problem(host: str, port: int) -> str | None:
    """Refuse to start a second Flowsite (or over another program) on the same port.

    SO_REUSEADDR, as servers set it: connections of a server that just stopped, left in
    TIME_WAIT, do not make the port look taken; a socket listening on it still does."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return (
                f"{host}:{port} is not free ({exc.strerror}): is Flowsite already running? "
                "Stop it, or set PORT."
            )
    return None


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies, which hold nothing, left out)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: ask the kernel whether the group has any member
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


class Child:
    """One supervised command, in a process group of its own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None):
        self.name, self.argv, self.env = name, argv, env
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.restart_at: float | None = None  # set while it waits to be started again
        self.backoff = BACKOFF_FIRST
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's programs
            self.argv, env=self.env, preexec_fn=die_with_parent, start_new_session=True
        )
        self.started, self.restart_at = time.monotonic(), None

    def signal_group(self, signum: int) -> None:
        """Signal the child and every process of its group (even after it has exited)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def alive(self) -> bool:
        """Whether the child or any process it started is still running."""
        if self.process is None:
            return False
        self.process.poll()  # reap it if it has exited
        return bool(group_members(self.process.pid))

    def exited(self, now: float) -> float:
        """The child exited by itself: kill what is left of its group (web workers or
        pool processes it leaves behind) and plan its restart; returns the delay."""
        self.signal_group(signal.SIGKILL)
        if now - self.started >= RAN_WELL:
            self.backoff = BACKOFF_FIRST
        delay = self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.restart_at = now + delay
        self.restarts += 1
        return delay


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own URL
            return answer.status == 200
    except (OSError, ValueError):  # refused, 503 (HTTPError), a timeout
        return False


class Command(BaseCommand):
    help = (
        "Serve Flowsite: Granian (web) + Celery workers + Celery beat on HOST:PORT, "
        "restarting any of them that crashes."
    )

    def log(self, message: str) -> None:
        self.stderr.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] serve: {message}")
        self.stderr.flush()

    def commands(self) -> dict[str, list[str]]:
        bin_dir = f"{sys.prefix}/bin"
        return {
            "web": [
                f"{bin_dir}/granian",
                "--interface",
                "wsgi",
                "flowsite.wsgi:application",
                "--working-dir",
                str(settings.BASE_DIR),
                "--host",
                settings.HOST,
                "--port",
                str(settings.PORT),
                "--workers",
                str(settings.WEB_WORKERS),
                # Threads that run Django, per worker. Granian reads requests (headers and
                # whole bodies) in Rust first: a slow client never holds one of them.
                "--blocking-threads",
                str(settings.WEB_THREADS),
                "--http",
                "1",
                "--no-ws",
                # Method, path without the query string (where keys may be), status, time.
                "--access-log",
                "--respawn-failed-workers",
                "--workers-kill-timeout",
                str(int(STOP_TIMEOUT) - 5),
            ],
            **{
                f"worker-{number}": [
                    f"{bin_dir}/celery",
                    "--quiet",  # no banner: the lines that matter are the first-run notice's
                    "-A",
                    "flowsite",
                    "worker",
                    # Each worker runs its tasks itself, one at a time, with no pool of child
                    # processes: the children of a pool share one lock on their task queue,
                    # and a child killed while it held it (waiting for work: kill -9, the
                    # OOM killer) left the worker taking nothing ever again. A worker that
                    # dies is started again here; the broker gives back what it had taken.
                    "--pool",
                    "solo",
                    "--hostname",
                    f"worker{number}@%h",
                    "--loglevel",
                    settings.LOG_LEVEL,
                ]
                for number in range(1, settings.CELERY_WORKER_CONCURRENCY + 1)
            },
            "beat": [
                f"{bin_dir}/celery",
                "-A",
                "flowsite",
                "beat",
                "--loglevel",
                settings.LOG_LEVEL,
            ],
        }

    @staticmethod
    def environment(name: str) -> dict[str, str] | None:
        """A worker runs one task, so one script, at a time: one sandbox process is all it
        can use (unless FLOWSITE_SANDBOX_PROCESSES says otherwise). None: serve's own."""
        if name.startswith("worker-") and "FLOWSITE_SANDBOX_PROCESSES" not in os.environ:
            return {**os.environ, "FLOWSITE_SANDBOX_PROCESSES": "1"}
        return None

    def handle(self, *args, **options):
        if reason := check_database():
            raise CommandError(f"cannot use the database {describe_database()}: {reason}")
        # The checks that read the database (stored secrets the key cannot decrypt): said
        # here, before the lines of the processes scroll them away.
        self.check(tags=[checks.Tags.database], databases=["default"])
        if reason := port_problem(settings.HOST, settings.PORT):
            raise CommandError(reason)
        children = [
            Child(name, argv, self.environment(name)) for name, argv in self.commands().items()
        ]
        stop_requests = []

        def request_stop(signum, _frame):
            stop_requests.append(signum)

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        for child in children:
            child.start()
        ready = self.wait_until_ready(children, stop_requests)
        # Last, so that the worker's and beat's start-up lines do not scroll it away.
        self.stdout.write(
            self.style.SUCCESS(
                f"Flowsite on http://{settings.HOST}:{settings.PORT}/admin/ "
                f"(API docs at /api/docs/). Ctrl-C stops web, workers and beat."
                + ("" if ready else f" Not ready after {READY_TIMEOUT:g} s: see the lines above.")
            )
        )
        if notice := take_notice():
            self.stdout.write(notice)
        self.stdout.flush()
        try:
            self.supervise(children, stop_requests)
        finally:
            self.stop(children, stop_requests)
        sys.exit(0)

    def wait_until_ready(self, children: list[Child], stop_requests: list) -> bool:
        """Until /readyz answers 200 with a worker present (or a child exits, or Ctrl-C)."""
        host = settings.HOST if settings.HOST not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{settings.PORT}/readyz?worker=1"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not stop_requests:
            if any(child.process.poll() is not None for child in children):
                return False
            if _answers_200(url):
                return True
            time.sleep(0.3)
        return False

    def supervise(self, children: list[Child], stop_requests: list) -> None:
        while not stop_requests:
            now = time.monotonic()
            for child in children:
                if child.restart_at is None:
                    if child.process.poll() is not None:
                        how = describe_exit(child.process.returncode)
                        delay = child.exited(now)
                        self.log(
                            f"{child.name} stopped ({how}); starting it again in {delay:g} s "
                            f"(restart {child.restarts})"
                        )
                elif now >= child.restart_at:
                    if child.alive() and now < child.restart_at + STOP_TIMEOUT:
                        child.signal_group(signal.SIGKILL)  # its old processes first
                        continue
                    child.start()
                    self.log(f"{child.name} started again (pid {child.process.pid})")
            time.sleep(0.2)

    def stop(self, children: list[Child], stop_requests: list) -> None:
        """SIGTERM to every child at once, SIGKILL to what is left of their groups after
        STOP_TIMEOUT or at a second Ctrl-C; returns when no process of any group is left."""
        self.log("stopping web, workers and beat")
        for child in children:
            # The leader only: it stops its own processes (Celery lets the pool finish the
            # runs in progress; Granian its workers' requests).
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        asked = len(stop_requests)
        deadline = time.monotonic() + STOP_TIMEOUT
        killed_at = None
        pending = {child.name for child in children}
        while any(child.alive() for child in children):
            now = time.monotonic()
            for child in children:
                if child.name in pending and child.process and child.process.poll() is not None:
                    pending.discard(child.name)
                    self.log(f"{child.name} stopped ({describe_exit(child.process.returncode)})")
            if killed_at is None and (now >= deadline or len(stop_requests) > asked):
                for child in children:
                    if child.alive():
                        self.log(f"{child.name} did not stop: killing it")
                        child.signal_group(signal.SIGKILL)
                killed_at = now
            elif killed_at is not None and now - killed_at > 5:
                self.log("processes still present 5 s after SIGKILL; giving up on them")
                break
            time.sleep(0.05)
        for child in children:
            if child.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=1)
                if child.name in pending and child.process.returncode is not None:
                    self.log(f"{child.name} stopped ({describe_exit(child.process.returncode)})")
