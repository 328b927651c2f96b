"""HTTPS goes through the guarded connection and verifies certificates."""

import contextlib
import datetime
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer

from apps.flows.outbound import BlockedAddress, HttpRequest, OutboundError
from tests.flows.outbound.helpers import connection


def https_server(directory, extension: x509.ExtensionType, critical: bool) -> HTTPServer:
    """A started local HTTPS server answering GET / with "secret", its certificate
    self-signed for the common name localhost with `extension` (at `server.cert_path`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(extension, critical=critical)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    server.expect_request("/").respond_with_data("secret")
    server.cert_path = cert_path
    return server


def trusted_server_context(tmp_path, monkeypatch) -> ssl.SSLContext:
    """A server-side TLS context whose certificate (localhost) the client trusts, for a
    hand-made server that misbehaves."""
    made = https_server(
        tmp_path, x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
    )
    made.stop()  # only its certificate and key are used
    monkeypatch.setenv("SSL_CERT_FILE", str(made.cert_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A local HTTPS server with a self-signed certificate for localhost (one per module:
    stopping a server takes half a second)."""
    server = https_server(
        tmp_path_factory.mktemp("tls"),
        x509.SubjectAlternativeName([x509.DNSName("localhost")]),
        critical=False,
    )
    yield server
    server.stop()


def test_an_untrusted_certificate_is_refused(client, tls_server, private_allowed):
    config = connection(f"https://localhost:{tls_server.port}")

    with pytest.raises(OutboundError, match=r"TLS failed: .*certificate verify failed") as caught:
        client.send(config, HttpRequest("GET", "/"))

    assert caught.value.retriable


def test_https_to_a_private_address_is_refused_before_the_handshake(
    client, tls_server, private_refused
):
    config = connection(f"https://localhost:{tls_server.port}")

    requests_before = len(tls_server.log)

    with pytest.raises(BlockedAddress):
        client.send(config, HttpRequest("GET", "/"))

    assert len(tls_server.log) == requests_before


def test_a_trusted_certificate_is_checked_against_the_host_name_of_the_url(
    client, tls_server, private_refused, monkeypatch
):
    # OpenSSL reads SSL_CERT_FILE whenever a context loads the default trust store.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.cert_path))
    allowed = ("localhost", "127.0.0.1")
    by_name = connection(f"https://localhost:{tls_server.port}", allowed_private_hosts=allowed)
    by_address = connection(f"https://127.0.0.1:{tls_server.port}", allowed_private_hosts=allowed)

    assert client.send(by_name, HttpRequest("GET", "/")).text == "secret"
    with pytest.raises(OutboundError, match=r"TLS failed: .*(mismatch|doesn't match)"):
        client.send(by_address, HttpRequest("GET", "/"))


def test_a_certificate_naming_the_host_only_in_its_common_name_is_refused(
    client, private_allowed, tmp_path, monkeypatch
):
    # Trusted (it is its own CA in SSL_CERT_FILE), but without a subjectAltName: browsers
    # and urllib3 do not fall back to the common name, and neither does the client.
    server = https_server(tmp_path, x509.BasicConstraints(ca=True, path_length=None), True)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert_path))
    try:
        with pytest.raises(OutboundError, match=r"TLS failed: .*(mismatch|doesn't match)"):
            client.send(connection(f"https://localhost:{server.port}"), HttpRequest("GET", "/"))
        assert server.log == []
    finally:
        server.stop()


def test_headers_sent_a_byte_at_a_time_over_tls_cannot_outlast_the_timeout(
    client, private_allowed, tmp_path, monkeypatch
):
    """The deadline holds for every receive over TLS too (the context's sslsocket_class):
    a server that sends its headers a byte at a time is cut off at the call's timeout."""
    context = trusted_server_context(tmp_path, monkeypatch)
    listener = socket.create_server(("127.0.0.1", 0))
    sent = []

    def drip() -> None:
        peer, _ = listener.accept()
        with contextlib.suppress(OSError), context.wrap_socket(peer, server_side=True) as tls:
            tls.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 1000:
                tls.sendall(bytes([byte]))
                sent.append(1)
                time.sleep(0.02)

    threading.Thread(target=drip, daemon=True).start()
    config = connection(f"https://localhost:{listener.getsockname()[1]}", timeout_ms=300)
    started = time.monotonic()
    try:
        with pytest.raises(OutboundError, match=r"^Timed out after 300 ms"):
            client.send(config, HttpRequest("GET", ""))
    finally:
        listener.close()
    assert time.monotonic() - started < 3
    assert len(sent) < 200  # given up long before the end


def test_a_server_that_reads_a_large_body_slowly_over_tls_cannot_outlast_the_timeout(
    client, private_allowed, tmp_path, monkeypatch
):
    """Sending ends by the call's deadline too, however the body is split into sends: a
    server reading a large body a little at a time is cut off at the call's timeout (each
    send bounded by the timeout alone would let the upload take as long as it liked)."""
    context = trusted_server_context(tmp_path, monkeypatch)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    received = []

    def sip() -> None:
        peer, _ = listener.accept()
        with contextlib.suppress(OSError), context.wrap_socket(peer, server_side=True) as tls:
            while chunk := tls.recv(4096):
                received.append(len(chunk))
                time.sleep(0.01)

    threading.Thread(target=sip, daemon=True).start()
    config = connection(f"https://localhost:{listener.getsockname()[1]}", timeout_ms=300)
    started = time.monotonic()
    try:
        with pytest.raises(OutboundError, match=r"^Timed out after 300 ms"):
            client.send(config, HttpRequest("POST", "upload", body=b"x" * 8_000_000))
    finally:
        listener.close()
    assert time.monotonic() - started < 3
    assert sum(received) < 4_000_000  # given up long before the end
