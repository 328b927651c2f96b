"""The SSRF guard: private destinations are refused after DNS, on every hop, unless allowed."""

import ipaddress
import socket

import pytest
from pytest_httpserver import HTTPServer

from apps.flows.outbound import (
    Auth,
    BlockedAddress,
    HttpRequest,
    OutboundError,
    RetryPolicy,
    guard,
)
from apps.flows.outbound.guard import AddressPolicy, address_kind
from tests.flows.outbound.helpers import connection

HINT = (
    "Outbound calls to private networks are off; set FLOWSITE_ALLOW_PRIVATE_NETWORKS=1 or add "
    "the host to the connection's allowed private hosts."
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test, not a bind
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("93.184.216.34", None),
        ("::ffff:93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_the_classifier_names_every_non_public_address(address, kind):
    assert address_kind(address) == kind


def addrinfo(address: str, port: int) -> tuple:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


def test_a_policy_keeps_only_the_permitted_candidates(private_refused):
    public, private = addrinfo("93.184.216.34", 443), addrinfo("10.0.0.7", 443)
    policy = AddressPolicy.from_allowlist(["10.0.0.0/24"])

    assert AddressPolicy().permitted("api.example", [private, public]) == [public]
    assert policy.permitted("api.example", [private, public]) == [private, public]
    with pytest.raises(BlockedAddress, match=r"api.example \(10.0.0.7\): it is a private address"):
        AddressPolicy().permitted("api.example", [private])


def test_an_ipv4_mapped_loopback_candidate_is_refused(private_refused):
    with pytest.raises(BlockedAddress, match=r"it is a loopback address"):
        AddressPolicy().permitted("api.example", [addrinfo("::ffff:127.0.0.1", 80)])


def test_an_invalid_allowlist_entry_is_reported(client):
    config = connection("https://api.example", allowed_private_hosts=("10.0.0.0/33",))

    with pytest.raises(OutboundError, match=r"Invalid allowed private host '10.0.0.0/33'"):
        client.send(config, HttpRequest("GET", "/"))


def test_a_loopback_ip_is_refused_and_nothing_is_sent(
    client, httpserver: HTTPServer, base_uri, private_refused, fake_time
):
    httpserver.expect_request("/").respond_with_data("reached")

    with pytest.raises(BlockedAddress) as caught:
        client.send(connection(base_uri), HttpRequest("GET", "/"), retry=RetryPolicy())

    assert str(caught.value) == (
        f"Refused to connect to 127.0.0.1: it is a loopback address. {HINT}"
    )
    assert not caught.value.retriable
    assert caught.value.attempts == 1
    assert caught.value.url == f"{base_uri}/"
    assert fake_time.sleeps == []
    assert httpserver.log == []


def test_localhost_is_refused_after_resolving_it(client, httpserver, private_refused):
    httpserver.expect_request("/").respond_with_data("reached")

    with pytest.raises(BlockedAddress) as caught:
        client.send(connection(f"http://localhost:{httpserver.port}"), HttpRequest("GET", "/"))

    assert str(caught.value) == (
        f"Refused to connect to localhost (127.0.0.1): it is a loopback address. {HINT}"
    )
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("host", "entry"),
    [("127.0.0.1", "127.0.0.1/32"), ("127.0.0.1", "127.0.0.1"), ("localhost", "LocalHost")],
)
def test_the_connection_allowlist_permits_a_private_host(
    client, httpserver, private_refused, host, entry
):
    httpserver.expect_request("/").respond_with_data("reached")
    config = connection(f"http://{host}:{httpserver.port}", allowed_private_hosts=(entry,))

    assert client.send(config, HttpRequest("GET", "/")).text == "reached"


def test_a_redirect_to_a_loopback_host_is_refused(client, httpserver, private_refused):
    port = httpserver.port
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": f"http://localhost:{port}/secret"}
    )
    httpserver.expect_request("/secret").respond_with_data("leaked")
    config = connection(f"http://127.0.0.1:{port}", allowed_private_hosts=("127.0.0.1",))

    with pytest.raises(BlockedAddress, match=r"localhost \(127.0.0.1\): it is a loopback"):
        client.send(config, HttpRequest("GET", "start"))

    assert [request.path for request, _ in httpserver.log] == ["/start"]


def test_a_token_request_goes_through_the_guard_too(client, httpserver, private_refused):
    port = httpserver.port
    httpserver.expect_request("/token").respond_with_json({"access_token": "t"})
    auth = Auth(
        type="oauth2_client_credentials",
        token_url=f"http://localhost:{port}/token",
        client_id="id",
        client_secret="very-secret",
    )
    config = connection(f"http://127.0.0.1:{port}", auth=auth, allowed_private_hosts=("127.0.0.1",))

    with pytest.raises(BlockedAddress):
        client.send(config, HttpRequest("GET", "things"))

    assert httpserver.log == []


@pytest.fixture
def public_name_resolving_to_loopback(monkeypatch) -> None:
    """DNS rebinding: a public-looking name whose answer points at this machine."""
    real_resolve = guard.resolve

    def resolve(host: str, port: int):
        if host == "public.example":
            return [addrinfo("127.0.0.1", port)]
        return real_resolve(host, port)

    monkeypatch.setattr(guard, "resolve", resolve)


@pytest.mark.usefixtures("public_name_resolving_to_loopback")
def test_a_public_name_resolving_to_loopback_is_refused(client, httpserver, private_refused):
    httpserver.expect_request("/").respond_with_data("reached")

    with pytest.raises(BlockedAddress) as caught:
        client.send(connection(f"http://public.example:{httpserver.port}"), HttpRequest("GET", "/"))

    assert str(caught.value).startswith(
        "Refused to connect to public.example (127.0.0.1): it is a loopback address."
    )
    assert httpserver.log == []


@pytest.mark.usefixtures("public_name_resolving_to_loopback")
@pytest.mark.parametrize("entry", ["127.0.0.0/8", "public.example"])
def test_an_allowed_name_connects_to_its_resolved_address_and_keeps_its_host_header(
    client, httpserver, private_refused, entry
):
    httpserver.expect_request("/").respond_with_data("reached")
    config = connection(f"http://public.example:{httpserver.port}", allowed_private_hosts=(entry,))

    assert client.send(config, HttpRequest("GET", "/")).text == "reached"
    request, _ = httpserver.log[0]
    assert request.headers["Host"] == f"public.example:{httpserver.port}"


def test_the_setting_allows_every_private_address(client, httpserver, base_uri, settings):
    settings.FLOWSITE_ALLOW_PRIVATE_NETWORKS = True
    httpserver.expect_request("/").respond_with_data("reached")

    assert client.send(connection(base_uri), HttpRequest("GET", "/")).text == "reached"


def test_cidr_entries_accept_ipv6_networks():
    policy = AddressPolicy.from_allowlist(["fd00::/8", " intranet.local "])

    assert policy.networks == (ipaddress.ip_network("fd00::/8"),)
    assert policy.hosts == frozenset({"intranet.local"})
