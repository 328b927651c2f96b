"""Text that is not valid Unicode, made by a script or sent by an API: a lone surrogate,
such as the first half of an emoji cut by `slice`. No database stores it and no answer
encodes it, so it reaches the run as U+FFFD, and the run is stored, answered and shown as
any other (found by an outside probe: before, a sync run was lost behind a 500, an async
one looked "running" for minutes, and a run page or job document was a 500)."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import create_api_key
from apps.executions import launch, services
from apps.executions.models import Execution
from apps.flows.models import Export
from tests.executions.honest import script_flow

EMOJI_NAME = {"name": "\U0001f600abc"}  # a real emoji: valid Unicode going in
CUT = "\ufffd"  # what the cut-off half becomes


@pytest.fixture
def client(integration) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=integration).plaintext}")
    return client


def api_flow(application, source: str, **fields):
    return script_flow(
        application,
        "cut",
        source,
        api={"enabled": True, "method": "POST", "path": "/cut", "mode": "sync"},
        **fields,
    )


@pytest.mark.parametrize(
    "failing",
    [
        "throw new Error('Name too long, starts with ' + n.slice(0, 1));",
        "error('Name too long, starts with ' + n.slice(0, 1), 400);",
    ],
)
def test_a_script_error_quoting_half_an_emoji_is_a_recorded_failed_run(
    client, application, failing
):
    api_flow(application, f"function main(ctx) {{ var n = ctx.records[0].name; {failing} }}")

    response = client.post("/api/resources/cut", EMOJI_NAME, format="json")

    assert response.status_code in (400, 500)
    problem = response.json()
    assert problem["type"].endswith("flow-failed"), problem
    assert f"starts with {CUT}" in problem["detail"]
    run = Execution.objects.get(pk=problem["processId"])
    assert run.status == "failed"
    assert f"starts with {CUT}" in run.error


def test_records_and_debug_lines_with_half_an_emoji_are_stored_shown_and_answered(
    client, admin_client, admin_user, application
):
    api_flow(
        application,
        "function main(ctx) { var n = ctx.records[0].name; debug('first', n.slice(0, 1)); "
        "var o = {initial: n.slice(0, 1)}; o['k' + n.slice(0, 1)] = 1; return o; }",
    )

    response = client.post("/api/resources/cut", EMOJI_NAME, format="json")

    assert response.status_code == 200, response.content
    [record] = response.json()["data"]["records"]
    assert record == {"initial": CUT, f"k{CUT}": 1}
    run = Execution.objects.get()
    assert run.status == "succeeded"
    page = admin_client.get(f"/admin/executions/execution/{run.pk}/change/")
    assert page.status_code == 200
    assert CUT in page.content.decode()
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=admin_user).plaintext}")
    job = reader.get(f"/api/v1/jobs/{run.pk}")
    assert job.status_code == 200, job.content
    assert job.json()["status"] == "succeeded"


def test_a_text_answer_with_half_an_emoji_is_sent(client, application):
    api_flow(
        application,
        "function main(ctx) { return {statusCode: 200, contentType: 'text/plain', "
        "body: 'Hi ' + ctx.records[0].name.slice(0, 1)}; }",
    )

    response = client.post("/api/resources/cut", EMOJI_NAME, format="json")

    assert response.status_code == 200
    assert response.content.decode() == f"Hi {CUT}"
    assert Execution.objects.get().status == "succeeded"


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [{"name": "Jos\\u00e9 \\ud83d"}]}',  # a JSON escape
        b'{"items": [{"name": "Jos\xc3\xa9 \xed\xa0\xbd"}]}',  # raw bytes (CESU-8, WTF-8)
    ],
)
def test_an_api_answering_a_cut_emoji_gives_a_readable_run(
    admin_client, admin_user, application, local_api, httpserver, body
):
    httpserver.expect_request("/people").respond_with_data(body, content_type="application/json")
    export = Export.objects.create(
        name="People", connection=local_api, relative_uri="/people", resource_path="items"
    )
    flow = script_flow(
        application, "people", "function main(ctx) { return ctx.records; }", generators=[export]
    )

    run = launch.admin_test_run(flow, caller=launch.Caller(user=admin_user))
    assert run.status == "succeeded", run.error
    assert run.response["data"]["records"] == [{"name": f"José {CUT}"}]
    page = admin_client.get(f"/admin/executions/execution/{run.pk}/change/")
    assert page.status_code == 200


def test_an_outcome_that_cannot_be_stored_is_recorded_as_a_failed_run(
    client, application, monkeypatch
):
    """Whatever stops a run's outcome from being stored (here a value the store refuses,
    as a lone surrogate was), the run is recorded failed saying so and its caller is told,
    instead of a 500 with no run, or a worker's run left running for minutes."""
    api_flow(application, "function main(ctx) { return [{ok: 1}]; }")
    clip, failed = services._clip, []

    def refuses_once(record, secrets):
        if not failed:
            failed.append(record)
            raise ValueError("a value the store refuses")
        return clip(record, secrets)

    monkeypatch.setattr(services, "_clip", refuses_once)

    response = client.post("/api/resources/cut", {}, format="json")

    assert response.status_code == 500
    problem = response.json()
    assert problem["type"].endswith("flow-failed"), problem
    assert "could not be stored: a value the store refuses" in problem["detail"]
    run = Execution.objects.get(pk=problem["processId"])
    assert (run.status, run.error) == ("failed", problem["detail"])
