"""A connection's credentials go only to its own origin, and never into error excerpts,
against real local HTTP servers: `httpserver` is the connection's host, `other_host` a
second server (another port: another origin) that must never see a credential."""

import base64
import logging

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from apps.flows.outbound import Auth, HttpRequest, HttpStatusError, OutboundError
from apps.flows.outbound.errors import EXCERPT_CHARS, REDACTED, excerpt
from apps.flows.outbound.origin import literal_origin_problem, origin_of
from apps.flows.outbound.retry import RetryPolicy
from tests.flows.outbound.helpers import connection

pytestmark = pytest.mark.usefixtures("private_allowed")

SECRET_HEADERS = {"Ocp-Apim-Subscription-Key": "sub-key-789", "X-Tenant": "tenant-secret"}
CREDENTIAL_HEADERS = ("Authorization", "X-Secret-Key", *SECRET_HEADERS)


@pytest.fixture
def other_host():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def armed(base_uri: str, auth: Auth | None = None):
    """A connection with every kind of credential: an API key header, secret custom
    headers and a safe one."""
    return connection(
        base_uri,
        auth=auth or Auth(type="api_key_header", header_name="X-Secret-Key", api_key="key-456"),
        headers={"Accept": "application/json", **SECRET_HEADERS},
    )


def test_an_absolute_url_to_another_host_is_refused_before_any_request(
    client, httpserver, base_uri, other_host
):
    other = f"http://127.0.0.1:{other_host.port}/steal"

    with pytest.raises(
        OutboundError, match=r"not on the connection's http://127\.0\.0\.1"
    ) as caught:
        client.send(armed(base_uri), HttpRequest("GET", other))

    assert caught.value.attempts == 0
    assert not caught.value.retriable
    assert other_host.log == []
    assert httpserver.log == []


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1:{port}/x", "http://localhost:{port}/x", "http://127.0.0.1:1/x"],
    ids=["scheme", "host", "port"],
)
def test_any_change_of_scheme_host_or_port_is_another_origin(client, base_uri, httpserver, url):
    with pytest.raises(OutboundError, match="Refused to call"):
        client.send(armed(base_uri), HttpRequest("GET", url.format(port=httpserver.port)))

    assert httpserver.log == []


def test_an_absolute_url_on_the_connections_origin_is_called_with_its_credentials(
    client, httpserver, base_uri
):
    httpserver.expect_request("/next").respond_with_json([])

    same_origin = base_uri.replace("http://", "HTTP://")
    client.send(armed(f"{base_uri}/api"), HttpRequest("GET", f"{same_origin}/next"))

    request, _ = httpserver.log[0]
    assert request.headers["X-Secret-Key"] == "key-456"


def test_a_redirect_to_another_host_arrives_without_any_credential(
    client, httpserver, base_uri, other_host
):
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": f"http://127.0.0.1:{other_host.port}/landing"}
    )
    other_host.expect_request("/landing").respond_with_data("landed")

    response = client.send(
        armed(base_uri),
        HttpRequest("GET", "start", headers={"Authorization": "Bearer request-token"}),
    )

    assert response.text == "landed"
    first, _ = httpserver.log[0]
    for name in CREDENTIAL_HEADERS:
        assert name in first.headers
    (landed, _), *_ = other_host.log
    for name in CREDENTIAL_HEADERS:
        assert name not in landed.headers
    assert landed.headers["Accept"] == "application/json"  # on the safe list
    assert landed.headers["User-Agent"] == "Flowsite"


def test_a_bearer_token_does_not_follow_a_redirect_to_another_host(
    client, httpserver, base_uri, other_host
):
    httpserver.expect_request("/start").respond_with_data(
        "", status=307, headers={"Location": f"http://127.0.0.1:{other_host.port}/landing"}
    )
    other_host.expect_request("/landing", method="POST").respond_with_data("landed")

    client.send(
        armed(base_uri, Auth(type="bearer", token="tok-123")),
        HttpRequest("POST", "start", json={"a": 1}),
    )

    landed, _ = other_host.log[0]
    assert "Authorization" not in landed.headers
    assert landed.get_json() == {"a": 1}  # a 307 keeps the body: it is the caller's data


def test_credentials_do_not_come_back_when_a_redirect_chain_returns_home(
    client, httpserver, base_uri, other_host
):
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": f"http://127.0.0.1:{other_host.port}/away"}
    )
    other_host.expect_request("/away").respond_with_data(
        "", status=302, headers={"Location": f"{base_uri}/back"}
    )
    httpserver.expect_request("/back").respond_with_data("home")

    assert client.send(armed(base_uri), HttpRequest("GET", "start")).text == "home"

    back, _ = httpserver.log[1]
    assert "X-Secret-Key" not in back.headers
    assert "Ocp-Apim-Subscription-Key" not in back.headers


def test_a_redirect_on_the_same_host_keeps_every_credential(client, httpserver, base_uri):
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": f"{base_uri}/new"}
    )
    httpserver.expect_request("/new").respond_with_data("moved")

    client.send(armed(base_uri, Auth(type="bearer", token="tok-123")), HttpRequest("GET", "old"))

    moved, _ = httpserver.log[1]
    assert moved.headers["Authorization"] == "Bearer tok-123"
    for name, value in SECRET_HEADERS.items():
        assert moved.headers[name] == value


def echo(request: Request) -> Response:
    """A server that quotes the request back in its error, as some debugging APIs do."""
    lines = [f"{name}: {value}" for name, value in request.headers.items()]
    lines.append(request.get_data(as_text=True))
    return Response("Unauthorized. You sent:\n" + "\n".join(lines), status=401)


def test_echoed_basic_credentials_are_redacted_in_the_stored_excerpt(client, httpserver, base_uri):
    httpserver.expect_request("/me").respond_with_handler(echo)
    auth = Auth(type="basic", username="ada", password="s3cret-pass")

    with pytest.raises(HttpStatusError) as caught:
        client.send(armed(base_uri, auth), HttpRequest("GET", "me"))

    text = caught.value.body_excerpt
    assert f"Authorization: Basic {REDACTED}" in text
    assert base64.b64encode(b"ada:s3cret-pass").decode() not in text
    assert f"Ocp-Apim-Subscription-Key: {REDACTED}" in text
    assert "sub-key-789" not in text
    assert "Accept: application/json" in text  # not a secret


@pytest.mark.parametrize(
    ("auth", "secret"),
    [
        (Auth(type="bearer", token="tok-123456"), "tok-123456"),
        (Auth(type="api_key_header", header_name="X-Secret-Key", api_key="key-456"), "key-456"),
    ],
    ids=["bearer", "api_key_header"],
)
def test_every_echoed_secret_is_redacted(client, httpserver, base_uri, auth, secret):
    httpserver.expect_request("/me").respond_with_handler(echo)

    with pytest.raises(HttpStatusError) as caught:
        client.send(armed(base_uri, auth), HttpRequest("GET", "me"))

    assert secret not in caught.value.body_excerpt
    assert REDACTED in caught.value.body_excerpt


def test_a_token_endpoint_echoing_the_client_secret_is_redacted(client, httpserver, base_uri):
    httpserver.expect_request("/oauth/token").respond_with_handler(echo)
    auth = Auth(
        type="oauth2_client_credentials",
        token_url=f"{base_uri}/oauth/token",
        client_id="flowsite",
        client_secret="very/secret+value",
    )

    with pytest.raises(OutboundError) as caught:
        client.send(connection(base_uri, auth=auth), HttpRequest("GET", "things"))

    assert "client_id=flowsite" in caught.value.body_excerpt
    assert "secret" not in caught.value.body_excerpt.replace("client_secret", "")


def test_a_non_json_answer_quoting_a_secret_is_redacted_when_parsed(client, httpserver, base_uri):
    httpserver.expect_request("/page").respond_with_data(
        "<html>your key sub-key-789 is wrong</html>", content_type="text/html"
    )
    response = client.send(armed(base_uri), HttpRequest("GET", "page"))

    with pytest.raises(OutboundError) as caught:
        response.json()

    assert caught.value.body_excerpt == f"<html>your key {REDACTED} is wrong</html>"
    assert "sub-key-789" not in str(caught.value)


def test_a_secret_cut_by_the_end_of_the_excerpt_is_not_left_half_shown():
    secret = "abcdefghijklmnopqrstuvwxyz"
    body = ("x" * (EXCERPT_CHARS - 10) + secret + "y" * 100).encode()

    text = excerpt(body, [secret])

    assert len(text) == EXCERPT_CHARS
    assert text.endswith("[redacted]")
    assert "abcdefghij" not in text


def test_json_escaped_and_percent_encoded_secrets_are_redacted_too():
    secret = 'p/ss"wörd+1'
    body = (
        '{"echo": "p\\/ss\\"w\\u00f6rd+1", "raw": "p/ss\\"wörd+1", '
        '"form": "p%2Fss%22w%C3%B6rd%2B1"}'
    ).encode()

    assert excerpt(body, [secret]).count(REDACTED) == 3


@pytest.mark.parametrize(
    ("relative_uri", "refused"),
    [
        ("/leads", False),
        ("leads?status={{variables.status}}", False),
        ("https://crm.example.com/leads", False),
        ("HTTPS://CRM.example.com:443/leads", False),
        ("https://crm.example.com", False),
        ("{{variables.next}}", False),  # judged when called
        ("https://{{variables.tenant}}.example.com/x", False),  # judged when called
        ("https://crm.example.com{{variables.path}}", False),  # judged when called
        ("https://evil.example/leads", True),
        ("https://crm.example.com:8443/leads", True),
        ("http://crm.example.com/leads", True),
        ("https://evil.example/?next={{variables.x}}", True),
        ("http://{{variables.host}}/x", True),  # the scheme is already literal
        ("ftp://crm.example.com/file", True),
        ("https://crm.example.com\\@evil.example/", False),  # urllib3 goes to crm.example.com
    ],
)
def test_a_literal_relative_uri_is_judged_by_the_origin_it_names(relative_uri, refused):
    problem = literal_origin_problem(relative_uri, "https://crm.example.com/api")

    assert (problem is not None) == refused, problem


def test_origins_fill_in_default_ports_and_ignore_case():
    assert origin_of("HTTPS://Crm.Example.com/api") == ("https", "crm.example.com", 443)
    assert origin_of("http://crm.example.com:8080") == ("http", "crm.example.com", 8080)
    assert origin_of("/relative") is None
    assert origin_of("ftp://crm.example.com") is None


@pytest.mark.parametrize("name", ["Accept", "X-Request-Id"])
def test_an_api_key_under_a_safe_headers_name_does_not_follow_a_redirect_either(
    client, httpserver, base_uri, other_host, name
):
    """The key went on to the other host: redirects kept the safe-list headers by name (an
    outside probe); the admin and the API now refuse such a name, but one stored before
    still stays home."""
    httpserver.expect_request("/start").respond_with_data(
        "", status=307, headers={"Location": f"http://127.0.0.1:{other_host.port}/landing"}
    )
    other_host.expect_request("/landing").respond_with_data("landed")

    client.send(
        armed(base_uri, Auth(type="api_key_header", header_name=name, api_key="key-456")),
        HttpRequest("GET", "start"),
    )

    first, _ = httpserver.log[0]
    assert first.headers[name] == "key-456"
    landed, _ = other_host.log[0]
    assert landed.headers.get(name) != "key-456"


@pytest.fixture
def outbound_log():
    """The outbound client's log records, caught on its own logger (whatever LOGGING says
    of propagation)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("flowsite.outbound")
    level, disabled = logger.level, logger.disabled  # a test that reconfigures logging
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.disabled = disabled


def test_a_status_error_quotes_no_credential_a_redirect_put_in_its_url(
    client, httpserver, base_uri, outbound_log
):
    """`HTTP 404 from <the URL a redirect led to>` quoted the key that URL carried, to the
    caller, the run and the log of retries (an outside probe)."""
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": "/gone?apikey=tok-123456789&signature=sig-987654"}
    )
    httpserver.expect_request("/gone").respond_with_data("no", status=503)

    with pytest.raises(HttpStatusError) as caught:
        client.send(
            armed(base_uri, Auth(type="bearer", token="tok-123456789")),
            HttpRequest("GET", "start"),
            retry=RetryPolicy(max_attempts=2, base_delay_s=0.01),
        )

    assert "tok-123456789" not in caught.value.message
    assert "tok-123456789" not in str(caught.value.url)
    assert f"apikey={REDACTED}" in caught.value.message
    assert "sig-987654" not in caught.value.message  # a signed URL's own secret, by its name
    logged = " ".join(record.getMessage() for record in outbound_log)
    assert "Retrying GET" in logged
    assert "tok-123456789" not in logged


def test_a_secret_quoted_back_as_html_safe_json_is_redacted_too():
    """Go's encoding/json writes & < > as \\u0026 \\u003c \\u003e: such a quote of a secret
    stayed readable in error excerpts (an outside probe)."""
    secret = "Bear&er<Tok>99"
    body = b'{"Authorization": "Bearer Bear\\u0026er\\u003cTok\\u003e99"}'

    shown = excerpt(body, [secret])

    assert "Bear\\u0026er" not in shown
    assert REDACTED in shown
