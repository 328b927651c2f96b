"""Connection secrets stay with their host (issue 11, point 4): relative URIs that lead
elsewhere are refused at save and at run time, custom headers off the safe list are
write-only and encrypted, and stored error excerpts never quote a connection's secret.

`httpserver` is the connection's host; `other_host` is a second local server (another port,
so another origin) that must never receive a credential."""

import base64
import dataclasses
import json

import pytest
from django.core.checks import Tags, run_checks
from django.db import connection as db
from django.db.migrations.executor import MigrationExecutor
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from apps.executions import launch
from apps.executions.models import ExecutionError
from apps.flows import crypto
from apps.flows.models import Connection, Export, Flow, Import
from apps.flows.outbound import HttpRequest, get_client
from apps.flows.pipeline import connection_config

SUBSCRIPTION_KEY = "Zq8-subscription-key-41x"  # distinctive: found nowhere unless leaked
API_KEY = "Zq8-api-key-77y"


@pytest.fixture
def other_host():
    server = HTTPServer(host="localhost", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def keyed_api(local_api) -> Connection:
    """The local API with an API key and a secret custom header (Azure API Management's)."""
    local_api.auth_type = Connection.AuthType.API_KEY_HEADER
    local_api.header_name = "X-Secret-Key"
    local_api.headers = {"Accept": "application/json"}
    local_api.set_secrets(api_key=API_KEY)
    local_api.set_secret_headers({"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY})
    local_api.save()
    return local_api


def dump_all_tables() -> str:
    rows = []
    with db.cursor() as cursor:
        for table in db.introspection.table_names():
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")  # noqa: S608
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def run(manager, flow: Flow):
    answer = manager.post(f"/api/v1/flows/{flow.pk}/run", {}, format="json")
    assert answer.status_code == 201, answer.content
    return launch.run_queued(answer.json()["_id"])


def import_flow(application, connection: Connection, relative_uri: str) -> Flow:
    """A flow posting each record read from /records on the connection's host."""
    source = Export.objects.create(name="Records", connection=connection, relative_uri="/records")
    sink = Import.objects.create(name="Sink", connection=connection, relative_uri=relative_uri)
    return Flow.objects.create(
        application=application,
        name="Push",
        skip_retries=True,
        page_generators=[{"_exportId": str(source.pk)}],
        page_processors=[{"type": "import", "_importId": str(sink.pk), "proceedOnFailure": True}],
    )


# --- at run time ------------------------------------------------------------------------


def test_a_templated_url_leading_to_another_host_fails_its_record_and_sends_it_nothing(
    manager, application, keyed_api, httpserver, other_host
):
    home, away = httpserver.port, other_host.port
    httpserver.expect_request("/records").respond_with_json([{"port": home}, {"port": away}])
    httpserver.expect_request("/collect", method="POST").respond_with_json({"ok": True})
    other_host.expect_request("/collect").respond_with_json({"stolen": True})
    # The port is a template: judged when called, not at save.
    flow = import_flow(application, keyed_api, "http://localhost:{{record.port}}/collect")

    done = run(manager, flow)

    assert (done.status, done.num_error) == ("completed_with_errors", 1)
    assert other_host.log == []  # not a request, so not a credential
    (error,) = ExecutionError.objects.filter(execution=done)
    assert error.record == {"port": away}
    assert f"Refused to call http://localhost:{away}/collect" in error.message
    collected, _ = httpserver.log[1]
    assert collected.headers["X-Secret-Key"] == API_KEY
    assert collected.headers["Ocp-Apim-Subscription-Key"] == SUBSCRIPTION_KEY


def test_a_secret_custom_header_is_still_sent_to_its_own_host(
    manager, application, keyed_api, httpserver
):
    httpserver.expect_request("/records").respond_with_json([])

    flow = import_flow(application, keyed_api, "/collect")
    assert run(manager, flow).status == "succeeded"

    request, _ = httpserver.log[0]
    assert request.headers["Ocp-Apim-Subscription-Key"] == SUBSCRIPTION_KEY
    assert request.headers["Accept"] == "application/json"


def test_a_redirect_to_another_host_arrives_without_the_connections_secrets(
    manager, application, keyed_api, httpserver, other_host
):
    httpserver.expect_request("/records").respond_with_data(
        "", status=302, headers={"Location": other_host.url_for("/records")}
    )
    other_host.expect_request("/records").respond_with_json([])

    assert run(manager, import_flow(application, keyed_api, "/collect")).status == "succeeded"

    (landed, _), *_ = other_host.log
    assert "X-Secret-Key" not in landed.headers
    assert "Ocp-Apim-Subscription-Key" not in landed.headers
    assert landed.headers["Accept"] == "application/json"


def test_echoed_basic_credentials_are_not_in_the_stored_excerpt(
    manager, application, local_api, httpserver
):
    local_api.auth_type = Connection.AuthType.BASIC
    local_api.username = "ada"
    local_api.set_secrets(password="Zq8-basic-password")
    local_api.set_secret_headers({"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY})
    local_api.save()

    def echo(request: Request) -> Response:
        quoted = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
        return Response(f"Denied. You sent:\n{quoted}", status=403)

    httpserver.expect_request("/records").respond_with_json([{"id": 1}])
    httpserver.expect_request("/collect", method="POST").respond_with_handler(echo)

    done = run(manager, import_flow(application, local_api, "/collect"))

    (error,) = ExecutionError.objects.filter(execution=done)
    assert error.http_status == 403
    assert "Authorization: Basic [redacted]" in error.body_excerpt
    assert "Ocp-Apim-Subscription-Key: [redacted]" in error.body_excerpt
    stored = dump_all_tables()
    assert base64.b64encode(b"ada:Zq8-basic-password").decode() not in stored
    assert "Zq8-basic-password" not in stored
    assert SUBSCRIPTION_KEY not in stored


# --- at save: relative URIs -----------------------------------------------------------------


def export_form(connection: Connection, relative_uri: str) -> dict:
    return {
        "name": "Leads",
        "application": "",
        "connection": connection.pk,
        "method": "GET",
        "relative_uri": relative_uri,
        "query": "{}",
        "headers": "{}",
        "body": "null",
        "resource_path": "",
        "paging": "none",
        "page_size": "",
        "page_size_param": "pageSize",
        "page_param": "page",
        "next_path": "",
        "cursor_param": "cursor",
        "max_pages": "10000",
        "records": "{}",
    }


def test_the_admin_refuses_an_export_whose_relative_uri_leads_to_another_host(
    admin_client, local_api
):
    response = admin_client.post(
        "/admin/flows/export/add/", export_form(local_api, "https://evil.example/leads")
    )

    assert response.status_code == 200
    assert "the connection&#x27;s credentials go only to its own host" in response.content.decode()
    assert not Export.objects.exists()


def test_the_admin_saves_an_export_whose_absolute_uri_stays_on_the_host(admin_client, local_api):
    uri = f"{local_api.base_uri}/leads?status={{{{variables.status}}}}"

    response = admin_client.post("/admin/flows/export/add/", export_form(local_api, uri))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Export.objects.get().relative_uri == uri


def test_an_import_whose_relative_uri_leads_to_another_host_is_refused_by_the_api(
    manager, local_api
):
    answer = manager.post(
        "/api/v1/imports",
        {
            "name": "Push",
            "_connectionId": str(local_api.pk),
            "http": {"relativeURI": "http://127.0.0.1:9/collect/{{record.id}}"},
        },
        format="json",
    )

    assert answer.status_code == 400
    assert [e["pointer"] for e in answer.json()["errors"]] == ["#/http/relativeURI"]


# --- secrets do not follow a connection to another host --------------------------------------


def records_flow(application, connection: Connection) -> Flow:
    source = Export.objects.create(name="Read", connection=connection, relative_uri="/records")
    return Flow.objects.create(
        application=application,
        name="Read",
        skip_retries=True,
        page_generators=[{"_exportId": str(source.pk)}],
    )


def test_pointing_a_connection_at_another_host_needs_its_secrets_again_and_sends_none(
    manager, application, keyed_api, httpserver, other_host
):
    """A builder who may edit connections cannot read a write-only key by pointing its
    connection at a server of theirs (found by an outside security probe)."""
    httpserver.expect_request("/records").respond_with_json([])
    other_host.expect_request("/records").respond_with_json([])
    home = keyed_api.base_uri

    moved = manager.patch(
        f"/api/v1/connections/{keyed_api.pk}",
        {"http": {"baseURI": other_host.url_for("/").rstrip("/")}},
        format="json",
    )

    assert moved.status_code == 400, moved.content
    problem = moved.json()
    assert [e["pointer"] for e in problem["errors"]] == ["#/http/baseURI"]
    detail = problem["errors"][0]["detail"]
    assert "API key" in detail
    assert "secret header Ocp-Apim-Subscription-Key" in detail
    assert API_KEY not in moved.content.decode()
    keyed_api.refresh_from_db()
    assert keyed_api.base_uri == home
    assert run(manager, records_flow(application, keyed_api)).status == "succeeded"
    assert other_host.log == []
    assert len(httpserver.log) == 1


def test_a_connection_moved_with_its_secrets_given_again_sends_them_to_the_new_host(
    manager, application, keyed_api, other_host
):
    other_host.expect_request("/records").respond_with_json([])

    moved = manager.patch(
        f"/api/v1/connections/{keyed_api.pk}",
        {
            "http": {
                "baseURI": other_host.url_for("/").rstrip("/"),
                "headers": {"Ocp-Apim-Subscription-Key": "new-subscription-key"},
                "auth": {"type": "api_key_header", "apiKey": "new-api-key"},
            }
        },
        format="json",
    )

    assert moved.status_code == 200, moved.content
    assert run(manager, records_flow(application, keyed_api)).status == "succeeded"
    (request, _), *_ = other_host.log
    assert request.headers["X-Secret-Key"] == "new-api-key"
    assert request.headers["Ocp-Apim-Subscription-Key"] == "new-subscription-key"


def test_a_new_path_on_the_same_host_keeps_the_secrets(manager, keyed_api):
    moved = manager.patch(
        f"/api/v1/connections/{keyed_api.pk}",
        {"http": {"baseURI": keyed_api.base_uri + "/v2"}},
        format="json",
    )

    assert moved.status_code == 200, moved.content
    keyed_api.refresh_from_db()
    assert keyed_api.secrets() == {"api_key": API_KEY}
    assert keyed_api.secret_headers() == {"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}


def test_a_merge_patch_null_removes_a_secret_header_and_is_refused_for_a_secret(manager, keyed_api):
    """RFC 7396: null removes a member. It answered 200 and kept the secret, which the
    document never shows (found by an outside probe)."""
    url = f"/api/v1/connections/{keyed_api.pk}"

    removed = manager.patch(
        url, {"http": {"headers": {"Ocp-Apim-Subscription-Key": None}}}, format="json"
    )
    refused = manager.patch(url, {"http": {"auth": {"apiKey": None}}}, format="json")
    all_refused = manager.patch(url, {"http": {"headers": None}}, format="json")

    assert removed.status_code == 200, removed.content
    assert refused.status_code == 400, refused.content
    assert "null cannot remove a stored secret" in refused.content.decode()
    assert all_refused.status_code == 400, all_refused.content
    keyed_api.refresh_from_db()
    assert keyed_api.secret_headers() == {}
    assert keyed_api.secrets() == {"api_key": API_KEY}


def test_a_new_token_url_host_needs_the_client_secret_again(manager):
    connection = Connection.objects.create(
        name="CRM",
        base_uri="https://crm.example.com",
        auth_type=Connection.AuthType.OAUTH2,
        token_url="https://login.example.com/token",
        client_id="flowsite",
    )
    connection.set_secrets(client_secret="Zq8-client-secret")
    connection.save()
    url = f"/api/v1/connections/{connection.pk}"
    auth = {"type": "oauth2_client_credentials", "clientId": "flowsite"}

    refused = manager.patch(
        url,
        {"http": {"auth": {**auth, "tokenURL": "https://203.0.113.9/token"}}},
        format="json",
    )
    given = manager.patch(
        url,
        {
            "http": {
                "auth": {
                    **auth,
                    "tokenURL": "https://203.0.113.9/token",
                    "clientSecret": "Zq8-new-secret",
                }
            }
        },
        format="json",
    )

    assert refused.status_code == 400, refused.content
    assert [e["pointer"] for e in refused.json()["errors"]] == ["#/http/auth/tokenURL"]
    assert "OAuth client secret" in refused.json()["errors"][0]["detail"]
    assert given.status_code == 200, given.content
    connection.refresh_from_db()
    assert connection.token_url == "https://203.0.113.9/token"
    assert connection.secrets() == {"client_secret": "Zq8-new-secret"}


def test_the_admin_moves_a_connection_only_with_its_secrets_given_again_or_cleared(admin_client):
    connection = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    connection.set_secret_headers({"X-Tenant-Key": "Zq8-tenant"})
    connection.save()
    url = f"/admin/flows/connection/{connection.pk}/change/"
    moved = {**CONNECTION_FORM, "base_uri": "https://elsewhere.example.net", "headers": "{}"}

    refused = admin_client.post(url, moved)
    cleared = admin_client.post(url, {**moved, "clear_secrets": "on"})

    assert refused.status_code == 200
    assert "not to https://crm.example.com" in refused.content.decode()
    assert "secret header X-Tenant-Key" in refused.content.decode()
    assert cleared.status_code == 302, cleared.content.decode()[:3000]
    connection.refresh_from_db()
    assert connection.base_uri == "https://elsewhere.example.net"
    assert connection.secret_headers() == {}


@pytest.mark.parametrize(
    "http",
    [
        {"baseURI": "https://bob:Zq8-url-pass@crm.example.com"},
        {
            "baseURI": "https://crm.example.com",
            "auth": {
                "type": "oauth2_client_credentials",
                "tokenURL": "https://bob:Zq8-url-pass@login.example.com/token",
                "clientId": "flowsite",
                "clientSecret": "s",
            },
        },
    ],
)
def test_a_url_with_a_password_in_it_is_refused_at_save_without_quoting_it(manager, http):
    answer = manager.post(
        "/api/v1/connections", {"name": "CRM", "type": "http", "http": http}, format="json"
    )

    assert answer.status_code == 400, answer.content
    assert "must not contain credentials" in answer.json()["errors"][0]["detail"]
    assert "Zq8-url-pass" not in answer.content.decode()
    assert not Connection.objects.exists()


def test_a_flow_answer_never_hands_its_caller_a_secret_the_api_quoted_back(
    key_client, integration, application, keyed_api, httpserver
):
    """An API may echo what it was sent (a /me page, httpbin, an error body). The caller of
    a flow is not the connection's host (found by an outside security probe)."""
    httpserver.expect_request("/records").respond_with_json(
        [{"echo": {"X-Secret-Key": API_KEY}, "note": f"sub={SUBSCRIPTION_KEY}"}]
    )
    flow = records_flow(application, keyed_api)
    flow.api = {"enabled": True, "method": "GET", "path": "/echo", "mode": "sync"}
    flow.save()

    answer = key_client(integration).get("/api/resources/echo")

    assert answer.status_code == 200, answer.content
    text = answer.content.decode()
    assert API_KEY not in text
    assert SUBSCRIPTION_KEY not in text
    assert answer.json()["data"]["records"] == [
        {"echo": {"X-Secret-Key": "[redacted]"}, "note": "sub=[redacted]"}
    ]
    assert API_KEY not in dump_all_tables()
    assert SUBSCRIPTION_KEY not in dump_all_tables()


def test_short_header_values_off_the_safe_list_are_not_cut_out_of_answers(
    key_client, integration, application, local_api, httpserver
):
    """Found by the review: "4.0" and "1" (stored as secret headers: they are off the safe
    list) were replaced in every answer, the envelope's processId included."""
    local_api.set_secret_headers({"OData-Version": "4.0", "X-Tenant": "1"})
    local_api.save()
    record = {"sku": "A-2014", "price": "14.00", "odata": "4.0"}
    httpserver.expect_request("/records").respond_with_json([record])
    flow = records_flow(application, local_api)
    flow.api = {"enabled": True, "method": "GET", "path": "/read", "mode": "sync"}
    flow.save()

    answer = key_client(integration).get("/api/resources/read")

    assert answer.status_code == 200, answer.content
    assert answer.json()["data"]["records"] == [record]
    assert "[redacted]" not in answer.json()["processId"]


def test_a_host_header_is_refused_at_save_and_never_sent(manager, keyed_api, httpserver):
    """Found by the review: a Host of its own sent the credentials to another site on a
    server that routes by Host (a shared host, a CDN), without changing the origin."""
    refused = manager.patch(
        f"/api/v1/connections/{keyed_api.pk}",
        {"http": {"headers": {"Host": "attacker-app.example"}}},
        format="json",
    )
    assert refused.status_code == 400, refused.content
    assert "Host" in refused.json()["errors"][0]["detail"]

    httpserver.expect_request("/").respond_with_json({})
    config = connection_config(keyed_api)
    config = dataclasses.replace(config, headers={**config.headers, "Host": "attacker-app.example"})
    get_client().send(config, HttpRequest("GET", "/", headers={"host": "attacker-app.example"}))
    (request, _), *_ = httpserver.log
    assert request.headers["Host"] == httpserver.url_for("/").split("/")[2]


def test_a_token_url_the_parsers_read_apart_is_refused(manager, local_api):
    """Found by the review: a tab inside a token URL made it origin-less to the check but
    not to the client, which strips it and calls the host."""
    local_api.auth_type = Connection.AuthType.BEARER
    local_api.set_secrets(token="Zq8-bearer", client_secret="Zq8-client-secret")
    local_api.save()

    answer = manager.patch(
        f"/api/v1/connections/{local_api.pk}",
        {
            "http": {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "clientId": "flowsite",
                    "tokenURL": "http://local\thost:9/token",
                }
            }
        },
        format="json",
    )

    assert answer.status_code == 400, answer.content
    details = " ".join(e["detail"] for e in answer.json()["errors"])
    assert "spaces or control characters" in details


# --- custom headers: write-only, encrypted ---------------------------------------------------

CONNECTION_FORM = {
    "name": "CRM",
    "type": "http",
    "base_uri": "https://crm.example.com",
    "auth_type": "none",
    "header_name": "X-API-Key",
    "allowed_private_hosts": "",
    "concurrency": 1,
}


def test_a_secret_custom_header_is_encrypted_and_never_shown_in_the_admin(admin_client):
    headers = {"Accept": "application/json", "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}
    response = admin_client.post(
        "/admin/flows/connection/add/", {**CONNECTION_FORM, "headers": json.dumps(headers)}
    )
    assert response.status_code == 302, response.content.decode()[:3000]

    connection = Connection.objects.get(name="CRM")
    assert connection.headers == {"Accept": "application/json"}
    assert connection.secret_headers() == {"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}
    assert SUBSCRIPTION_KEY not in dump_all_tables()
    page = admin_client.get(f"/admin/flows/connection/{connection.pk}/change/").content.decode()
    assert SUBSCRIPTION_KEY not in page
    assert "Secret headers stored (hidden): Ocp-Apim-Subscription-Key" in page
    assert "application/json" in page  # a safe header is shown
    assert connection_config(connection).headers == headers


def test_a_secret_header_left_out_is_kept_and_an_empty_one_is_removed(admin_client):
    connection = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    connection.set_secret_headers({"X-Tenant": "t-1", "X-Region-Key": "r-1"})
    connection.save()
    url = f"/admin/flows/connection/{connection.pk}/change/"

    kept = admin_client.post(url, {**CONNECTION_FORM, "headers": '{"X-Tenant": "t-2"}'})
    assert kept.status_code == 302
    connection.refresh_from_db()
    assert connection.secret_headers() == {"X-Region-Key": "r-1", "X-Tenant": "t-2"}

    removed = admin_client.post(url, {**CONNECTION_FORM, "headers": '{"x-tenant": ""}'})
    assert removed.status_code == 302
    connection.refresh_from_db()
    assert connection.secret_headers() == {"X-Region-Key": "r-1"}


def test_a_typed_secret_header_is_not_shown_back_when_the_form_has_an_error(admin_client):
    response = admin_client.post(
        "/admin/flows/connection/add/",
        {
            **CONNECTION_FORM,
            "base_uri": "",  # an error elsewhere in the form
            "headers": json.dumps({"Accept": "text/csv", "X-Tenant-Key": SUBSCRIPTION_KEY}),
        },
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Required for an HTTP connection." in page
    assert SUBSCRIPTION_KEY not in page
    assert "text/csv" in page
    # The builder is told what to type again (an outside probe found it silently gone).
    assert "Not shown again, being secret: the header X-Tenant-Key. Type it again" in page


def test_a_typed_secret_is_named_to_type_again_when_the_form_has_an_error(admin_client):
    response = admin_client.post(
        "/admin/flows/connection/add/",
        {**CONNECTION_FORM, "base_uri": "", "auth_type": "bearer", "token": SUBSCRIPTION_KEY},
    )

    page = response.content.decode()
    assert SUBSCRIPTION_KEY not in page
    assert "Not shown again, being secret: Bearer token. Type it again before you save." in page


def test_a_form_with_an_error_and_no_secret_typed_says_nothing_of_secrets(admin_client):
    response = admin_client.post(
        "/admin/flows/connection/add/", {**CONNECTION_FORM, "base_uri": ""}
    )

    assert "Not shown again" not in response.content.decode()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Key": "a\r\nInjected: b"}, "The value of X-Key has a line break"),
        ({"Bad Name": "x"}, "is not a valid header name"),
    ],
)
def test_a_header_that_would_break_the_request_is_refused_without_quoting_it(
    admin_client, headers, message
):
    response = admin_client.post(
        "/admin/flows/connection/add/", {**CONNECTION_FORM, "headers": json.dumps(headers)}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert "Injected" not in response.content.decode()


def test_clearing_the_secrets_clears_the_secret_headers_too(admin_client):
    connection = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    connection.set_secret_headers({"X-Tenant": "t-1"})
    connection.save()

    admin_client.post(
        f"/admin/flows/connection/{connection.pk}/change/",
        {**CONNECTION_FORM, "headers": "{}", "clear_secrets": "on"},
    )

    connection.refresh_from_db()
    assert connection.secret_headers() == {}


# --- the data migration ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_secret_headers_and_its_reverse_restores_them():
    before = [("flows", "0008_connection_secret_headers")]
    after = [("flows", "0009_connection_secret_headers_data")]
    executor = MigrationExecutor(db)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("flows", "Connection")
    headers = {"Accept": "application/json", "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}
    row = old.objects.create(name="Legacy", base_uri="https://x.example", headers=headers)
    try:
        executor = MigrationExecutor(db)
        executor.migrate(after)
        # The model as of that migration: later ones add columns the table has not yet.
        then = executor.loader.project_state(after).apps.get_model("flows", "Connection")
        migrated = then.objects.get(pk=row.pk)
        assert migrated.headers == {"Accept": "application/json"}
        secret_headers = crypto.decrypt_json(migrated.secret_headers_encrypted)
        assert secret_headers == {"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}
        assert SUBSCRIPTION_KEY not in dump_all_tables()

        executor = MigrationExecutor(db)
        executor.migrate(before)
        restored = old.objects.get(pk=row.pk)
        assert (restored.headers, restored.secret_headers_encrypted) == (headers, "")
        assert crypto.decrypt_json(restored.secret_headers_encrypted) == {}
    finally:
        executor = MigrationExecutor(db)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_secrets_the_key_cannot_decrypt_are_warned_about_at_start(db, settings, application):
    """`make run`'s `serve` runs the checks that read the database at start: a lost or
    changed FLOWSITE_ENCRYPTION_KEY is said there, naming what it breaks."""
    crm = Connection.objects.create(name="CRM", base_uri="https://crm.example")
    crm.set_secrets(token="t-0123456789")
    crm.save()
    erp = Connection.objects.create(name="ERP", base_uri="https://erp.example")
    erp.set_secret_headers({"X-Api-Key": "k-0123456789"})
    erp.save()
    Connection.objects.create(name="Open", base_uri="https://open.example")
    flow = Flow.objects.create(application=application, name="Signs")
    flow.set_secret_variables({"signingKey": "s-0123456789"})
    flow.save()
    assert not [m for m in database_checks() if m.id.startswith("flowsite.")]

    settings.FLOWSITE_ENCRYPTION_KEY = "a-completely-different-key-of-32-bytes!!"

    found = {m.id: m for m in database_checks() if m.id.startswith("flowsite.")}
    assert set(found) == {"flowsite.W001", "flowsite.W002"}
    assert '2 connection(s) ("CRM", "ERP")' in found["flowsite.W001"].msg
    assert '1 flow(s) ("Signs")' in found["flowsite.W002"].msg
    assert "FLOWSITE_ENCRYPTION_KEY" in found["flowsite.W001"].msg
    # Only where the database is meant to be read: not on every command.
    assert not [m for m in run_checks() if m.id.startswith("flowsite.")]


def database_checks():
    return run_checks(tags=[Tags.database], databases=["default"])
