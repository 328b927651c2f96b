"""Edge cases of calling flows, in process (APIClient): each answers a clear 4xx or works."""

import json

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


def test_a_nul_character_is_stored_as_a_replacement_character(client, application):
    script_api(application, ECHO)
    response = client.post("/api/resources/edge", {"name": "a\u0000b"}, format="json")
    assert response.status_code == 200
    assert Execution.objects.get().request["body"] == {"name": "a\ufffdb"}


def test_keys_that_differ_by_a_nul_stay_apart(client, application):
    """An outside probe found {id: 'A-1', 'id\\0': 'B-2'} answered as {id: 'B-2'}."""
    script_api(
        application,
        "function main(ctx) { var o = {id: 'A-1'}; o['id\\u0000'] = 'B-2'; return [o]; }",
    )
    response = client.post("/api/resources/edge", {}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["records"] == [{"id": "A-1", "id\ufffd": "B-2"}]


def test_an_input_schema_may_not_fetch_remote_references():
    errors = api_errors({"inputSchema": {"$ref": "http://127.0.0.1:9/schema.json"}})
    assert any("only use local $ref" in error for error in errors)


def test_an_unusual_status_from_error_still_answers_a_problem(client, application):
    script_api(application, "function main(ctx) { error('Client went away', 499); }")
    response = client.post("/api/resources/edge", {}, format="json")
    assert response.status_code == 499
    assert response.json()["title"] == "Client error"


SITE_WIDE = {
    "Set-Cookie": "s=1",
    "Clear-Site-Data": '"cookies", "storage"',
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Access-Control-Allow-Origin": "https://evil.example",
    "Access-Control-Allow-Credentials": "true",
    "X-Frame-Options": "ALLOWALL",
    "Refresh": "0;url=https://evil.example/",
    "NEL": '{"report_to": "x", "max_age": 31536000}',
    "Report-To": '{"group": "x", "max_age": 31536000, "endpoints": [{"url": "https://e.x"}]}',
    "Alt-Svc": 'h2="evil.example:443"',
}


def test_headers_that_act_beyond_the_answer_are_dropped_and_the_rest_is_sent(client, application):
    """A flow's answer cannot sign the admin out, pin HSTS, open CORS or allow framing on
    Flowsite's origin (found by an outside security probe)."""
    headers = json.dumps(
        {**SITE_WIDE, "X-Ok": "yes", "X-Count": 3, "X-Flag": True, "X-Unset": None}
    )
    script_api(
        application,
        f"function main(ctx) {{ return {{statusCode: 200, headers: {headers}, body: 1}}; }}",
    )

    response = client.post("/api/resources/edge", {}, format="json")

    assert response.status_code == 200
    assert (response["X-Ok"], response["X-Count"], response["X-Flag"]) == ("yes", "3", "true")
    assert response["X-Frame-Options"] == "DENY"  # Flowsite's own
    assert "X-Unset" not in response  # a null header is not sent
    for name in set(SITE_WIDE) - {"X-Frame-Options"}:
        assert name not in response, name


@pytest.mark.parametrize(
    ("answer", "quoted"),
    [
        ("{statusCode: 201, headers: [['X-Id', '42']], body: 1}", "not an object"),
        ("{statusCode: 201, headers: 'X-Id: 42', body: 1}", "not an object"),
        ("{statusCode: 200, headers: {'X-Bad': 'a\\r\\nSet-Cookie: x=1'}, body: 1}", "X-Bad"),
        ("{statusCode: 200, headers: {'X Bad Name': 'v'}, body: 1}", "'X Bad Name'"),
        ("{statusCode: 200, headers: {'X-Customer': 'Jos\\u00e9'}, body: 1}", "X-Customer"),
        ("{statusCode: 200, headers: {'X-Meta': {v: 1}}, body: 1}", "X-Meta"),
        ("{statusCode: 600, body: {message: 'no'}}", "600"),
        ("{statusCode: 99, body: 1}", "99"),
        ("{statusCode: 200.5, body: 1}", "200.5"),
    ],
)
def test_an_answer_that_cannot_be_sent_as_set_fails_the_run_saying_why(
    client, application, answer, quoted
):
    """Before, the caller got a 500 internal error (or a 200 envelope) while the run was
    recorded a success (found by an outside probe)."""
    script_api(application, f"function main(ctx) {{ return {answer}; }}")

    response = client.post("/api/resources/edge", {}, format="json")

    assert response.status_code == 500
    problem = response.json()
    assert problem["type"].endswith("flow-failed"), problem
    assert quoted in problem["detail"], problem
    run = Execution.objects.get(pk=problem["processId"])
    assert (run.status, run.error) == ("failed", problem["detail"])


def test_the_default_envelope_carries_the_security_headers_too(client, application):
    """README: every flow answer carries them (an outside probe found only a flow's own
    answer did)."""
    script_api(application, "function main(ctx) { return [{html: '<script>1</script>'}]; }")

    response = client.post("/api/resources/edge", {}, format="json")

    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"


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
