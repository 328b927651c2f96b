"""Fixtures for the outbound client: a real local server, recorded (not slept) backoff."""

import pytest
from pytest_httpserver import HTTPServer

from apps.flows.outbound import OutboundClient
from tests.flows.outbound.helpers import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(fake_time: FakeTime):
    client = OutboundClient(sleep=fake_time.sleep, clock=fake_time.clock)
    yield client
    client.close()


@pytest.fixture
def private_allowed(settings) -> None:
    """The local test server is on 127.0.0.1, which the SSRF guard refuses by default."""
    settings.FLOWSITE_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def private_refused(settings) -> None:
    settings.FLOWSITE_ALLOW_PRIVATE_NETWORKS = False


@pytest.fixture
def base_uri(httpserver: HTTPServer) -> str:
    return f"http://127.0.0.1:{httpserver.port}"
