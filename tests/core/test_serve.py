"""`manage.py serve` (what `make run` ends with): web + worker + beat, stopped by Ctrl-C."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys

import pytest

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


@pytest.mark.django_db(transaction=True)
def test_serve_runs_web_worker_and_beat_and_ctrl_c_stops_them_all(tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=BASE_DIR,
        env=subprocess_env(
            PORT=str(port),
            DATABASE_URL=live_database_url(),
            FLOWSITE_VAR_DIR=str(tmp_path),
            WEB_WORKERS="1",
            CELERY_WORKER_CONCURRENCY="1",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:

        def healthy():
            try:
                return get(port, "/healthz").status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=30, message="the web server to answer /healthz")
        assert len(children_of(serve.pid)) == 3  # gunicorn, celery worker, celery beat
        login = get(port, "/admin/login/")
        assert login.status == 200
        assert b"Flowsite" in login.body
        docs = get(port, "/api/docs/")
        assert docs.status == 200
        assert (
            get(port, "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css").status
            == 200
        )
        chunked = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        chunked.request(
            "POST",
            "/api/v1/me",
            body=iter([b'{"a":', b" 1}"]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        assert chunked.getresponse().status == 411
        children = children_of(serve.pid)

        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C does
        assert serve.wait(timeout=30) == 0
        for pid in children:
            wait_for(
                lambda pid=pid: not os.path.exists(f"/proc/{pid}"),
                timeout=15,
                message=f"child {pid} to exit",
            )
    finally:
        # Whatever happened, nothing of the group (gunicorn's own workers included) may
        # outlive the test: a stray server would keep the test database open.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()


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
