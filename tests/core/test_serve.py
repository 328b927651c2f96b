"""`manage.py serve` (what `make run` ends with): web + workers + beat, stopped by Ctrl-C."""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from apps.accounts.models import User
from apps.accounts.services import create_api_key
from apps.executions.models import Execution
from apps.flows.models import Application, Flow
from tests.conftest import BASE_DIR, live_database_url, subprocess_env, wait_for

pytestmark = pytest.mark.services


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    return response


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def healthy(port: int) -> bool:
    try:
        return get(port, "/healthz").status == 200
    except OSError:
        return False


def process_group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process belongs to the group."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                return True
    return False


class Serve:
    """`manage.py serve` in a process group of its own, as a terminal's foreground job."""

    def __init__(self, tmp_path, port: int, name: str = "serve", **env: str):
        self.port, self.log_path = port, tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=BASE_DIR,
            env=subprocess_env(
                PORT=str(port),
                DATABASE_URL=live_database_url(),
                FLOWSITE_VAR_DIR=str(tmp_path),
                **{"WEB_WORKERS": "1", "CELERY_WORKER_CONCURRENCY": "1", **env},
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.groups: set[int] = set()  # each child runs in a process group of its own

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 60) -> None:
        def up():
            assert self.process.poll() is None, f"serve exited:\n{self.log()}"
            return healthy(self.port)

        wait_for(up, timeout=timeout, message=f"/healthz to answer; log:\n{self.log()}")
        self.groups.update(self.children().values())

    def children(self) -> dict[str, int]:
        """{'web'|'worker-1'|'worker-2'|'beat': pid} of serve's direct children."""
        found = {}
        for pid in children_of(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"granian") for part in cmdline):
                found["web"] = pid
            elif b"worker" in cmdline:  # worker-1, worker-2, … by its --hostname
                hostname = cmdline[cmdline.index(b"--hostname") + 1].decode()
                found[hostname.split("@")[0].replace("worker", "worker-")] = pid
            elif b"beat" in cmdline:
                found["beat"] = pid
        return found

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C does
        return self.process.wait(timeout=60)

    def cleanup(self) -> None:
        """Whatever happened, nothing started by the test may outlive it: a stray server
        would keep the test database open."""
        for pgid in {self.process.pid, *self.groups}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._log.close()


def raw_exchange(port: int, raw: bytes) -> bytes:
    """What the server answers to these bytes (until it closes or 2 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        with contextlib.suppress(OSError):  # it may close before reading it all
            conn.sendall(raw)
        conn.settimeout(2)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


def async_run_finishes(port: int, idle_kill: int) -> bool:
    """SIGKILL an idle worker, then start an async run: it ends succeeded."""
    application = Application.objects.create(name="Serve check")
    Flow.objects.create(
        application=application,
        name="quick",
        api={"enabled": True, "method": "GET", "mode": "async"},
    )
    owner = User.objects.create_superuser("serve-check", password="serve-check-123")
    key = create_api_key(owner=owner).plaintext
    os.kill(idle_kill, signal.SIGKILL)
    answer = get(
        port,
        "/api/1/action/Serve%20check/quick/trigger",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status == 202, answer.body
    process_id = json.loads(answer.body)["processId"]
    wait_for(
        lambda: Execution.objects.get(pk=process_id).status == "succeeded",
        timeout=60,
        message="the async run to finish after an idle worker was killed",
    )
    return True


@pytest.mark.django_db(transaction=True)
def test_serve_runs_web_worker_and_beat_and_ctrl_c_stops_them_all(tmp_path):
    port = free_port()
    serve = Serve(tmp_path, port)
    try:
        serve.wait_healthy()
        assert set(serve.children()) == {"web", "worker-1", "beat"}
        login = get(port, "/admin/login/")
        assert login.status == 200
        assert b"Flowsite" in login.body
        docs = get(port, "/api/docs/")
        assert docs.status == 200
        # Static files are served by whitenoise, inside the application.
        assert (
            get(port, "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css").status
            == 200
        )
        # A chunked body is refused (411); the server may answer and close before the
        # client has sent it all, so the bytes go raw and a broken pipe is no failure.
        chunked = raw_exchange(
            port,
            b"POST /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n',
        )
        assert chunked.startswith(b"HTTP/1.1 411"), chunked[:200]
        # The access log is kept (without query strings, where keys may be).
        get(port, "/healthz?api_key=secret-in-the-url")
        wait_for(lambda: '"GET /healthz HTTP/1.1" 200' in serve.log(), timeout=5)
        assert "secret-in-the-url" not in serve.log()
        # The server's own refusals are no HTML pages (gunicorn's were).
        for raw in (
            b"NOT A REQUEST LINE\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        ):
            answer = raw_exchange(port, raw)
            assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
            assert b"<html" not in answer.lower()

        assert serve.stop() == 0  # a clean stop is a success, whatever the children said
        for pgid in serve.groups:  # web workers and script sandboxes included
            wait_for(
                lambda pgid=pgid: not process_group_alive(pgid),
                timeout=15,
                message=f"process group {pgid} to exit",
            )
        # The port is free at once: a server binding it as servers do (SO_REUSEADDR, so
        # the TIME_WAIT left by closed connections does not count) succeeds.
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
            again.listen()
    finally:
        serve.cleanup()


@pytest.mark.django_db(transaction=True)
def test_serve_restarts_a_killed_worker_and_stays_up_and_starts_again_right_after_a_stop(
    tmp_path,
):
    port = free_port()
    serve = Serve(
        tmp_path,
        port,
        CELERY_WORKER_CONCURRENCY="2",
        FLOWSITE_API_KEY_SECRET=settings.FLOWSITE_API_KEY_SECRET.decode(),
    )
    try:
        serve.wait_healthy()
        worker = serve.children()["worker-1"]
        web = serve.children()["web"]
        os.kill(worker, signal.SIGKILL)

        def restarted():
            assert serve.process.poll() is None, serve.log()
            return serve.children().get("worker-1") not in (None, worker)

        wait_for(restarted, timeout=30, message="serve to start a new worker")
        assert "worker-1 stopped (killed by SIGKILL); starting it again in 1 s" in serve.log()
        assert serve.children()["web"] == web  # web (and beat) kept running
        assert healthy(port)
        serve.groups.update(serve.children().values())
        wait_for(
            lambda: " ready." in serve.log().split("worker-1 started again")[-1],
            timeout=30,
            message="the new worker to be ready",
        )
        # Killed while idle, a worker took nothing with it: async runs still finish (with
        # a prefork pool, a child killed while it waited for work held its siblings' queue
        # lock for ever, and every later run stayed queued; found by an outside probe).
        assert async_run_finishes(port, idle_kill=serve.children()["worker-2"])
        serve.groups.update(serve.children().values())

        # Killing the web server's main process: serve starts a new one on the same port.
        os.kill(web, signal.SIGKILL)
        wait_for(
            lambda: serve.children().get("web") not in (None, web) and healthy(port),
            timeout=30,
            message=f"a new web server to answer; log:\n{serve.log()}",
        )
        serve.groups.update(serve.children().values())

        assert serve.stop() == 0
    finally:
        serve.cleanup()

    # A restart right after the stop is not refused (connections left in TIME_WAIT).
    again = Serve(tmp_path, port, name="serve-again")
    try:
        again.wait_healthy(timeout=60)
        assert "is not free" not in again.log()
        assert again.stop() == 0
    finally:
        again.cleanup()


@pytest.mark.django_db(transaction=True)
def test_serve_refuses_a_port_that_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "serve"],
            cwd=BASE_DIR,
            env=subprocess_env(
                PORT=str(port), DATABASE_URL=live_database_url(), FLOWSITE_VAR_DIR=str(tmp_path)
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"127.0.0.1:{port} is not free" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_15_second_soak_of_serve_leaves_no_run_behind(tmp_path):
    """bench/soak.py (`make soak`) in short: one round of 20 concurrent async calls to a
    queue-policy flow, then 20 calls/s for 15 s, the worker SIGKILLed while it holds
    messages. Its own instance: SQLite and the embedded broker, whatever CI points at."""
    env = {
        key: value
        for key, value in subprocess_env().items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL"}
    }
    result = subprocess.run(
        [
            sys.executable,
            "bench/soak.py",
            "soak",
            "--rounds",
            "1",
            "--steady",
            "15",
            "--stale",
            "20",
            "--settle",
            "150",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Result: **passed**" in result.stdout
    assert "serve stayed up" in result.stdout
    assert "the worker was restarted by serve" in result.stdout
