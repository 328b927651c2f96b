"""Slow clients cannot stall the web server `serve` starts (issue 11: Granian reads the
headers and the whole body of a request before Django gets it)."""

import contextlib
import http.client
import socket
import time

import pytest
from django.conf import settings

from apps.accounts.services import create_api_key
from tests.core.test_serve import Serve, free_port

pytestmark = pytest.mark.services

SLOW_BODY = (
    b"POST /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n" + b'{"a": 1'  # 7 of the 100 bytes announced
)
SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def timed_get(port: int, path: str, headers: dict | None = None) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    return response.status, time.monotonic() - started


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""  # data (an answer) would also mean it was not held
    except BlockingIOError:
        return True
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
def test_healthz_and_a_keyed_call_answer_while_slow_clients_are_held(tmp_path, integration):
    key = create_api_key(owner=integration).plaintext
    port = free_port()
    # One web worker (of WEB_THREADS=8 threads): 40 slow connections are 5 times as many.
    serve = Serve(tmp_path, port, FLOWSITE_API_KEY_SECRET=settings.FLOWSITE_API_KEY_SECRET.decode())
    held: list[socket.socket] = []
    try:
        serve.wait_healthy()
        for data in [SLOW_BODY] * 20 + [SLOW_HEADERS] * 20:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(data)
            held.append(sock)
        time.sleep(1.0)  # they have reached the server and been given to whatever reads them

        timings = []
        for _ in range(5):
            status, took = timed_get(port, "/healthz")
            assert status == 200
            timings.append(took)
            status, took = timed_get(port, "/api/v1/me", {"Authorization": f"Bearer {key}"})
            assert status == 200
            timings.append(took)
            time.sleep(0.5)
        print(f"answers while 40 slow clients were held: max {max(timings) * 1000:.0f} ms")
        # The answers came while the slow connections were still being held.
        assert all(still_open(sock) for sock in held)
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        serve.cleanup()
