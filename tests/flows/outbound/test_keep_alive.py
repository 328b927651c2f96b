"""Kept-alive connections, against a real local HTTP/1.1 server that counts its connections:
reused while sound, replaced when closed, never reused with a response left unread."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.flows.outbound import HttpRequest, ResponseTooLarge
from tests.flows.outbound.helpers import connection

pytestmark = pytest.mark.usefixtures("private_allowed")


class Handler(BaseHTTPRequestHandler):
    """GET /echo?…: its own path as the body; GET /big: 1,000 bytes; GET /last: answers
    with Connection: close; POST: the body it read. HTTP/1.1 with a Content-Length, so the
    connection stays open."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:
        body = b"x" * 1000 if self.path == "/big" else self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/last":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """The body it read (by its Content-Length) as the answer."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.connections = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def uri(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_calls_one_after_another_share_one_connection(client, server):
    config = connection(uri(server))

    bodies = [client.send(config, HttpRequest("GET", f"echo?n={n}")).text for n in range(5)]

    assert bodies == [f"/echo?n={n}" for n in range(5)]
    assert server.connections == 1


def test_a_connection_the_server_closed_is_replaced_for_the_next_call(client, server):
    config = connection(uri(server))

    assert client.send(config, HttpRequest("GET", "last")).text == "/last"
    assert client.send(config, HttpRequest("GET", "echo")).text == "/echo"
    assert server.connections == 2


def test_a_response_left_unread_does_not_leave_its_connection_for_the_next_call(
    client, server, settings
):
    settings.FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES = 100
    config = connection(uri(server))

    with pytest.raises(ResponseTooLarge):
        client.send(config, HttpRequest("GET", "big"))
    # On the same connection, this call would read the rest of the big body as its answer.
    assert client.send(config, HttpRequest("GET", "echo")).text == "/echo"
    assert server.connections == 2


def test_a_closed_client_still_calls_on_new_connections(client, server):
    config = connection(uri(server))
    client.send(config, HttpRequest("GET", "echo"))

    client.close()

    assert client.send(config, HttpRequest("GET", "echo?again")).text == "/echo?again"
    assert server.connections == 2


@pytest.mark.parametrize(
    "framing", [{"Transfer-Encoding": "chunked"}, {"Content-Length": "0"}], ids=["te", "cl"]
)
def test_framing_headers_from_a_flow_cannot_smuggle_a_request_onto_the_connection(
    client, server, framing
):
    # Framed by these headers, the server would read this body as a second request, and its
    # answer would reach the next call on the kept-alive connection.
    smuggled = b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    config = connection(uri(server), headers=framing)

    sent = client.send(config, HttpRequest("POST", "echo", headers=framing, body=smuggled))
    after = client.send(config, HttpRequest("GET", "echo?after"))

    assert (sent.body, after.text) == (smuggled, "/echo?after")
    assert server.connections == 1
