"""Requests, authentication, redirects and limits, against a real local HTTP server."""

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from apps.flows.outbound import (
    Auth,
    ConnectionConfig,
    HttpRequest,
    OutboundError,
    ResponseTooLarge,
    get_client,
)
from apps.flows.outbound import (
    client as client_module,
)
from tests.flows.outbound.helpers import connection

pytestmark = pytest.mark.usefixtures("private_allowed")


def test_a_get_joins_the_base_uri_adds_the_query_and_sends_the_default_headers(
    client, httpserver: HTTPServer, base_uri
):
    expected_query = "status=open&tag=a&tag=b&page=2&active=true"
    httpserver.expect_request(
        "/api/contacts",
        method="GET",
        query_string=expected_query,
        headers={"X-Tenant": "acme"},
    ).respond_with_json({"contacts": []})
    config = connection(f"{base_uri}/api/", headers={"X-Tenant": "acme"})
    request = HttpRequest(
        "get",
        "/contacts?status=open",
        query={"tag": ["a", "b"], "page": 2, "active": True, "skipped": None},
    )

    response = client.send(config, request)

    assert response.status == 200
    assert response.json() == {"contacts": []}
    assert response.headers["content-type"] == "application/json"
    assert response.url == f"{base_uri}/api/contacts?{expected_query}"
    assert response.elapsed_ms > 0


def test_a_post_sends_its_json_body_as_application_json(client, httpserver, base_uri):
    httpserver.expect_request(
        "/items",
        method="POST",
        json={"name": "Ada", "tags": ["x"]},
        headers={"Content-Type": "application/json"},
    ).respond_with_json({"id": 1}, status=201)

    response = client.send(
        connection(base_uri), HttpRequest("POST", "items", json={"name": "Ada", "tags": ["x"]})
    )

    assert response.status == 201
    assert response.json() == {"id": 1}


def test_a_raw_body_is_sent_as_given(client, httpserver, base_uri):
    httpserver.expect_request("/upload", method="PUT", data=b"\x00raw").respond_with_data("ok")

    response = client.send(
        connection(base_uri),
        HttpRequest("PUT", "upload", body=b"\x00raw", headers={"Content-Type": "x/y"}),
    )

    assert response.text == "ok"


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        pytest.param(
            Auth(type="basic", username="ada", password="s3cret"),
            "Authorization",
            "Basic " + base64.b64encode(b"ada:s3cret").decode(),
            id="basic",
        ),
        pytest.param(
            Auth(type="bearer", token="tok-123"), "Authorization", "Bearer tok-123", id="bearer"
        ),
        pytest.param(
            Auth(type="api_key_header", header_name="X-Secret-Key", api_key="key-456"),
            "X-Secret-Key",
            "key-456",
            id="api_key_header",
        ),
    ],
)
def test_each_auth_kind_sends_its_header(client, httpserver, base_uri, auth, header, value):
    httpserver.expect_request("/me", headers={header: value}).respond_with_json({"ok": True})

    response = client.send(connection(base_uri, auth=auth), HttpRequest("GET", "me"))

    assert response.json() == {"ok": True}


def test_no_auth_sends_no_authorization_header(client, httpserver, base_uri):
    httpserver.expect_request("/me").respond_with_json({})

    client.send(connection(base_uri), HttpRequest("GET", "me"))

    request, _ = httpserver.log[0]
    assert "Authorization" not in request.headers
    assert request.headers["User-Agent"] == "Flowsite"


class TokenServer:
    """An OAuth2 token endpoint handing out t1, t2, ... and an API accepting live tokens."""

    def __init__(self, httpserver: HTTPServer, expires_in: int = 3600):
        self.issued = 0
        self.revoked: set[str] = set()
        self.forms: list[dict[str, str]] = []
        self.api_tokens: list[str] = []
        self.expires_in = expires_in
        httpserver.expect_request("/oauth/token", method="POST").respond_with_handler(self.token)
        httpserver.expect_request("/api/things").respond_with_handler(self.api)

    def token(self, request: Request) -> Response:
        self.issued += 1
        self.forms.append(dict(request.form))
        return Response(
            f'{{"access_token": "t{self.issued}", "token_type": "Bearer", '
            f'"expires_in": {self.expires_in}}}',
            content_type="application/json",
        )

    def api(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.api_tokens.append(token)
        if not token or token in self.revoked:
            return Response("revoked", status=401)
        return Response('{"ok": true}', content_type="application/json")


def oauth_connection(base_uri: str, **auth_options) -> ConnectionConfig:
    auth = Auth(
        type="oauth2_client_credentials",
        token_url=f"{base_uri}/oauth/token",
        client_id="flowsite",
        client_secret="very-secret",
        **auth_options,
    )
    return connection(f"{base_uri}/api", auth=auth)


def test_an_oauth2_token_is_fetched_once_and_reused(client, httpserver, base_uri):
    server = TokenServer(httpserver)
    config = oauth_connection(base_uri, scope="read write")

    for _ in range(3):
        assert client.send(config, HttpRequest("GET", "things")).json() == {"ok": True}

    assert server.issued == 1
    assert server.forms == [
        {
            "grant_type": "client_credentials",
            "client_id": "flowsite",
            "client_secret": "very-secret",
            "scope": "read write",
        }
    ]
    assert server.api_tokens == ["t1", "t1", "t1"]


def test_an_oauth2_token_is_refreshed_after_a_401(client, httpserver, base_uri):
    server = TokenServer(httpserver)
    config = oauth_connection(base_uri)
    client.send(config, HttpRequest("GET", "things"))
    server.revoked.add("t1")

    response = client.send(config, HttpRequest("GET", "things"))

    assert response.status == 200
    assert server.issued == 2
    assert server.api_tokens == ["t1", "t1", "t2"]


def test_an_oauth2_token_is_refreshed_before_it_expires(client, httpserver, base_uri):
    # 20 s of validity is inside the 30 s safety margin: every call needs a new token.
    server = TokenServer(httpserver, expires_in=20)
    config = oauth_connection(base_uri)

    client.send(config, HttpRequest("GET", "things"))
    client.send(config, HttpRequest("GET", "things"))

    assert server.api_tokens == ["t1", "t2"]


def test_a_failing_token_request_names_the_token_url_and_status_but_not_the_secret(
    client, httpserver, base_uri
):
    httpserver.expect_request("/oauth/token").respond_with_json(
        {"error": "invalid_client"}, status=401
    )

    with pytest.raises(OutboundError) as caught:
        client.send(oauth_connection(base_uri), HttpRequest("GET", "things"))

    assert str(caught.value) == f"Token request to {base_uri}/oauth/token failed with HTTP 401"
    assert caught.value.status == 401
    assert "invalid_client" in caught.value.body_excerpt
    assert "very-secret" not in str(caught.value)
    assert len(httpserver.log) == 1  # the API itself was never called


def test_a_redirect_is_followed_to_another_path(client, httpserver, base_uri):
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_json({"here": True})

    response = client.send(connection(base_uri), HttpRequest("GET", "old"))

    assert response.json() == {"here": True}
    assert response.url == f"{base_uri}/new"


def test_a_303_turns_a_post_into_a_get_without_body(client, httpserver, base_uri):
    httpserver.expect_request("/submit", method="POST").respond_with_data(
        "", status=303, headers={"Location": "/result"}
    )
    httpserver.expect_request("/result", method="GET").respond_with_json({"done": True})

    response = client.send(connection(base_uri), HttpRequest("POST", "submit", json={"a": 1}))

    assert response.json() == {"done": True}
    redirected, _ = httpserver.log[1]
    assert redirected.method == "GET"
    assert redirected.get_data() == b""
    assert "Content-Type" not in redirected.headers


def test_a_307_keeps_the_method_and_body(client, httpserver, base_uri):
    httpserver.expect_request("/v1/items", method="POST").respond_with_data(
        "", status=307, headers={"Location": "/v2/items"}
    )
    httpserver.expect_request("/v2/items", method="POST", json={"a": 1}).respond_with_json({})

    assert client.send(connection(base_uri), HttpRequest("POST", "v1/items", json={"a": 1}))


def test_a_redirect_to_another_host_drops_the_credentials(client, httpserver, base_uri):
    elsewhere = f"http://localhost:{httpserver.port}/landing"
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": elsewhere}
    )
    httpserver.expect_request("/landing").respond_with_data("landed")
    auth = Auth(type="api_key_header", header_name="X-Secret-Key", api_key="key-456")

    response = client.send(
        connection(base_uri, auth=auth),
        HttpRequest("GET", "start", headers={"Authorization": "Basic abc"}),
    )

    assert response.text == "landed"
    first, second = (request for request, _ in httpserver.log)
    assert first.headers["X-Secret-Key"] == "key-456"
    assert "X-Secret-Key" not in second.headers
    assert "Authorization" not in second.headers


def test_more_than_five_redirects_fail(client, httpserver, base_uri):
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )

    with pytest.raises(OutboundError, match="Too many redirects"):
        client.send(connection(base_uri), HttpRequest("GET", "loop"))

    assert len(httpserver.log) == 6


def test_a_body_over_the_size_limit_is_refused(client, httpserver, base_uri, settings):
    settings.FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES = 1000
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    httpserver.expect_request("/fits").respond_with_data(b"x" * 1000)

    with pytest.raises(ResponseTooLarge, match="larger than 1000 bytes") as caught:
        client.send(connection(base_uri), HttpRequest("GET", "big"))
    assert not caught.value.retriable
    assert len(client.send(connection(base_uri), HttpRequest("GET", "fits")).body) == 1000


def test_json_on_an_html_response_says_what_came_instead(client, httpserver, base_uri):
    httpserver.expect_request("/page").respond_with_data(
        "<html>Login</html>", content_type="text/html"
    )
    response = client.send(connection(base_uri), HttpRequest("GET", "page"))

    with pytest.raises(OutboundError) as caught:
        response.json()

    assert str(caught.value).startswith(
        f"Expected a JSON response from {base_uri}/page but got text/html"
    )
    assert caught.value.body_excerpt == "<html>Login</html>"
    assert not caught.value.retriable


def test_an_absolute_url_bypasses_the_base_uri(client, httpserver, base_uri):
    httpserver.expect_request("/next", query_string="cursor=2").respond_with_json([])

    response = client.send(
        connection(f"{base_uri}/api"), HttpRequest("GET", f"{base_uri}/next?cursor=2")
    )

    assert response.json() == []


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "http://user:pw@example.com/"], ids=["ftp", "credentials"]
)
def test_urls_the_client_cannot_call_are_refused_up_front(client, url):
    with pytest.raises(OutboundError) as caught:
        client.send(connection("https://example.com"), HttpRequest("GET", url))

    assert caught.value.attempts == 0
    assert "pw" not in str(caught.value)


def test_secrets_never_appear_in_reprs():
    auth = Auth(
        type="oauth2_client_credentials",
        password="secret-password",
        token="secret-token",
        api_key="secret-api-key",
        client_secret="secret-client",
    )
    config = ConnectionConfig(
        key="1", base_uri="https://x.example", headers={"X-Key": "secret-header"}, auth=auth
    )
    request = HttpRequest("GET", "/", headers={"Authorization": "secret-request"})

    for text in (repr(auth), repr(config), repr(request)):
        assert "secret" not in text
    assert "oauth2_client_credentials" in repr(config)


def test_secrets_never_appear_in_error_messages(client, httpserver, base_uri):
    httpserver.expect_request("/me").respond_with_data("nope", status=403)
    auth = Auth(type="basic", username="ada", password="secret-password")

    with pytest.raises(OutboundError) as caught:
        client.send(connection(base_uri, auth=auth), HttpRequest("GET", "me"))

    assert str(caught.value) == f"HTTP 403 from {base_uri}/me"
    encoded = base64.b64encode(b"ada:secret-password").decode()
    assert "secret-password" not in repr(caught.value)
    assert encoded not in repr(caught.value)


def test_a_cancelled_call_is_not_sent(client, httpserver, base_uri):
    with pytest.raises(OutboundError, match="Cancelled") as caught:
        client.send(connection(base_uri), HttpRequest("GET", "me"), cancelled=lambda: True)

    assert caught.value.attempts == 0
    assert httpserver.log == []


def test_connections_with_the_same_key_share_a_pool_and_old_pools_are_closed(
    client, httpserver, base_uri, monkeypatch
):
    monkeypatch.setattr(client_module, "MAX_POOL_MANAGERS", 2)
    httpserver.expect_request("/").respond_with_data("ok")
    for key in ("a", "b", "a", "c"):
        client.send(ConnectionConfig(key=key, base_uri=base_uri), HttpRequest("GET", ""))

    assert list(client._slots) == ["a", "c"]  # "b" was least recently used


def test_concurrent_calls_share_the_client_safely(httpserver, base_uri):
    httpserver.expect_request("/n").respond_with_handler(
        lambda request: Response(request.args["i"])
    )
    shared = get_client()
    assert get_client() is shared
    config = connection(base_uri)
    barrier = threading.Barrier(8)

    def call(i: int) -> str:
        if i < 8:
            barrier.wait()
        return shared.send(config, HttpRequest("GET", "n", query={"i": i})).text

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(40)))

    assert results == [str(i) for i in range(40)]


def test_a_secret_quoted_by_http_client_in_an_invalid_header_error_is_redacted(client, base_uri):
    # http.client refuses the header and quotes its value as bytes: b'Bearer s3cr\xe9t-tok\n'
    config = connection(base_uri, auth=Auth(type="bearer", token="s3cr\u00e9t-tok\n"))

    with pytest.raises(OutboundError, match=r"^Invalid request to ") as caught:
        client.send(config, HttpRequest("GET", "me"))

    assert "s3cr" not in str(caught.value)
    assert "[redacted]" in str(caught.value)
