"""Retries, backoff, deadlines and timeouts, against a real local server with recorded sleeps."""

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from apps.flows.outbound import (
    DeadlineExceeded,
    HttpRequest,
    HttpStatusError,
    OutboundError,
    RetryPolicy,
)
from apps.flows.outbound.retry import retry_after_seconds
from tests.flows.outbound.helpers import connection

pytestmark = pytest.mark.usefixtures("private_allowed")


def respond_in_turn(httpserver: HTTPServer, path: str, *responses: Response) -> None:
    """Serve `responses` one per request, repeating the last."""
    remaining = list(responses)

    def handler(request: Request) -> Response:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    httpserver.expect_request(path).respond_with_handler(handler)


def test_two_503s_then_a_200_succeed_on_the_third_attempt(client, httpserver, base_uri, fake_time):
    respond_in_turn(
        httpserver, "/flaky", Response(status=503), Response(status=503), Response("ok")
    )

    response = client.send(connection(base_uri), HttpRequest("GET", "flaky"), retry=RetryPolicy())

    assert response.text == "ok"
    assert len(httpserver.log) == 3
    first, second = fake_time.sleeps
    assert 0 <= first <= 0.5
    assert 0 <= second <= 1.0


def test_backoff_doubles_up_to_the_maximum(client, httpserver, base_uri, fake_time, monkeypatch):
    # Take the top of each jitter range to see the ceiling it grows to.
    monkeypatch.setattr("apps.flows.outbound.retry.random.uniform", lambda low, high: high)
    httpserver.expect_request("/down").respond_with_data("down", status=503)
    policy = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=5.0)

    with pytest.raises(HttpStatusError) as caught:
        client.send(connection(base_uri), HttpRequest("GET", "down"), retry=policy)

    assert fake_time.sleeps == [1.0, 2.0, 4.0, 5.0]
    assert caught.value.attempts == 5
    assert caught.value.retriable
    assert caught.value.status == 503


def test_a_429_with_retry_after_waits_that_long(client, httpserver, base_uri, fake_time):
    respond_in_turn(
        httpserver, "/limited", Response(status=429, headers={"Retry-After": "2"}), Response("ok")
    )

    response = client.send(connection(base_uri), HttpRequest("GET", "limited"), retry=RetryPolicy())

    assert response.text == "ok"
    assert fake_time.sleeps == [2.0]


def test_retry_after_is_capped_by_the_maximum_delay(client, httpserver, base_uri, fake_time):
    respond_in_turn(
        httpserver, "/busy", Response(status=503, headers={"Retry-After": "3600"}), Response("ok")
    )

    client.send(connection(base_uri), HttpRequest("GET", "busy"), retry=RetryPolicy())

    assert fake_time.sleeps == [30.0]


def test_retry_after_accepts_an_http_date():
    in_ten_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)

    assert 8 <= retry_after_seconds(in_ten_seconds) <= 10
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-1") is None


def test_a_400_fails_at_once_with_status_and_body_excerpt(client, httpserver, base_uri, fake_time):
    httpserver.expect_request("/items", method="POST").respond_with_data(
        '{"error": "name is required"}' + " " * 1000, status=400
    )

    with pytest.raises(HttpStatusError) as caught:
        client.send(
            connection(base_uri), HttpRequest("POST", "items", json={}), retry=RetryPolicy()
        )

    error = caught.value
    assert str(error) == f"HTTP 400 from {base_uri}/items"
    assert (error.status, error.attempts, error.retriable) == (400, 1, False)
    assert error.body_excerpt.startswith('{"error": "name is required"}')
    assert len(error.body_excerpt) == 500
    assert fake_time.sleeps == []


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_is_retried_up_to_max_attempts(client, closed_port, fake_time):
    config = connection(f"http://127.0.0.1:{closed_port}")

    with pytest.raises(OutboundError) as caught:
        client.send(config, HttpRequest("GET", "/"), retry=RetryPolicy(max_attempts=3))

    error = caught.value
    assert str(error) == f"Could not connect to 127.0.0.1:{closed_port}: Connection refused"
    assert error.retriable
    assert error.attempts == 3
    assert len(fake_time.sleeps) == 2


def test_without_a_retry_policy_there_is_one_attempt(client, httpserver, base_uri, fake_time):
    httpserver.expect_request("/down").respond_with_data("down", status=503)

    with pytest.raises(HttpStatusError) as caught:
        client.send(connection(base_uri), HttpRequest("GET", "down"))

    assert caught.value.attempts == 1
    assert caught.value.retriable  # the caller may still retry later
    assert len(httpserver.log) == 1
    assert fake_time.sleeps == []


def test_a_deadline_without_room_for_a_retry_gives_up_at_once(
    client, httpserver, base_uri, fake_time
):
    httpserver.expect_request("/busy").respond_with_data(
        "busy", status=503, headers={"Retry-After": "5"}
    )
    started = time.monotonic()

    with pytest.raises(DeadlineExceeded) as caught:
        client.send(
            connection(base_uri),
            HttpRequest("GET", "busy"),
            retry=RetryPolicy(),
            deadline=fake_time.clock() + 1.0,
        )

    assert time.monotonic() - started < 0.5
    assert fake_time.sleeps == []
    assert len(httpserver.log) == 1
    assert f"last error: HTTP 503 from {base_uri}/busy" in str(caught.value)
    assert (caught.value.status, caught.value.attempts) == (503, 1)


def test_a_deadline_already_past_sends_nothing(client, httpserver, base_uri, fake_time):
    with pytest.raises(DeadlineExceeded, match="Deadline passed before calling"):
        client.send(connection(base_uri), HttpRequest("GET", "/"), deadline=fake_time.clock() - 1)

    assert httpserver.log == []


@pytest.fixture
def slow_server(httpserver: HTTPServer):
    """A handler that takes 2 s to answer (released early once the test is done)."""
    release = threading.Event()

    def handler(request: Request) -> Response:
        release.wait(2)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(handler)
    yield
    release.set()
    # The server logs the request once the handler returns: wait, so the next test's
    # server log starts empty.
    deadline = time.monotonic() + 3
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.01)
    httpserver.clear()


@pytest.mark.usefixtures("slow_server")
def test_a_slow_server_cannot_outlast_the_deadline(client, base_uri, fake_time):
    started = time.monotonic()

    with pytest.raises(OutboundError, match=r"Timed out after \d+ ms waiting for") as caught:
        client.send(
            connection(base_uri),
            HttpRequest("GET", "slow"),
            retry=RetryPolicy(),
            deadline=fake_time.clock() + 0.3,
        )

    assert time.monotonic() - started < 1
    assert isinstance(caught.value, DeadlineExceeded)
    assert fake_time.sleeps == []


@pytest.mark.usefixtures("slow_server")
def test_the_connection_timeout_bounds_each_attempt(client, base_uri):
    started = time.monotonic()

    with pytest.raises(OutboundError) as caught:
        client.send(connection(base_uri, timeout_ms=200), HttpRequest("GET", "slow"))

    assert time.monotonic() - started < 1
    assert str(caught.value) == f"Timed out after 200 ms waiting for {base_uri}/slow"
    assert caught.value.retriable


def test_cancellation_is_checked_before_each_attempt(client, httpserver, base_uri):
    httpserver.expect_request("/down").respond_with_data("down", status=503)
    checks = iter([False, True])

    with pytest.raises(OutboundError, match="Cancelled") as caught:
        client.send(
            connection(base_uri),
            HttpRequest("GET", "down"),
            retry=RetryPolicy(),
            cancelled=lambda: next(checks),
        )

    assert caught.value.attempts == 1
    assert not caught.value.retriable
    assert len(httpserver.log) == 1
