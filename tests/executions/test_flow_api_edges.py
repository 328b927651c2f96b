"""Edge cases of calling flows, in process (APIClient): each answers a clear 4xx or works."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import create_api_key
from apps.executions.models import Execution
from apps.flows.api_settings import api_errors
from apps.flows.models import Flow, Script


@pytest.fixture
def client(integration) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=integration).plaintext}")
    return client


def script_api(application, source: str, **api) -> Flow:
    script = Script.objects.create(name="s", content=source)
    return Flow.objects.create(
        application=application,
        name="edge",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "POST", "path": "/edge", **api},
    )


ECHO = "function main(ctx) { return {statusCode: 200, body: ctx.records[0]}; }"


@pytest.mark.parametrize(
    "body", ['{"a": NaN}', '{"a": Infinity}', "[" * 5000 + "]" * 5000, '{"n": ' + "9" * 5000 + "}"]
)
def test_json_that_javascript_or_python_would_choke_on_is_a_400(client, application, body):
    script_api(application, ECHO)
    response = client.post("/api/resources/edge", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_a_nul_character_is_stored_without_it(client, application):
    script_api(application, ECHO)
    response = client.post("/api/resources/edge", {"name": "a\u0000b"}, format="json")
    assert response.status_code == 200
    assert Execution.objects.get().request["body"] == {"name": "ab"}


def test_an_input_schema_may_not_fetch_remote_references():
    errors = api_errors({"inputSchema": {"$ref": "http://127.0.0.1:9/schema.json"}})
    assert any("only use local $ref" in error for error in errors)


def test_an_unusual_status_from_error_still_answers_a_problem(client, application):
    script_api(application, "function main(ctx) { error('Client went away', 499); }")
    response = client.post("/api/resources/edge", {}, format="json")
    assert response.status_code == 499
    assert response.json()["title"] == "Client error"


def test_headers_a_flow_cannot_send_are_dropped(client, application):
    script_api(
        application,
        "function main(ctx) { return {statusCode: 200, headers: {'X-Ok': 'yes', "
        "'X-Bad': 'a\\r\\nSet-Cookie: x=1', 'X Bad Name': 'v', 'Set-Cookie': 's=1'}, body: 1}; }",
    )
    response = client.post("/api/resources/edge", {}, format="json")
    assert response.status_code == 200
    assert response["X-Ok"] == "yes"
    assert "X-Bad" not in response
    assert "Set-Cookie" not in response


def test_an_overlong_idempotency_key_is_refused(client, application):
    script_api(application, ECHO)
    response = client.post("/api/resources/edge", {}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 400
    assert not Execution.objects.exists()


def test_a_secret_in_the_query_string_is_redacted_from_the_stored_url(client, application):
    script_api(application, ECHO)
    client.post("/api/resources/edge?api_key=s3cret&x=1", {}, format="json")
    request = Execution.objects.get().request
    assert "s3cret" not in request["url"]
    assert request["query"] == {"api_key": "[redacted]", "x": "1"}


def test_anonymous_callers_cannot_tell_missing_flows_from_protected_ones(application):
    anonymous = APIClient()
    assert anonymous.get("/api/1/action/Nope/nothing/trigger").status_code == 401
    assert anonymous.get("/api/resources/nothing").status_code == 401
