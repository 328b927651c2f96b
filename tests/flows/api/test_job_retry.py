"""POST /api/v1/jobs/<id>/retry: failed records from the step they failed at, or the whole
run of a failed job; never a job still going or one with nothing to retry."""

import json
import re

import pytest
from werkzeug.wrappers import Response

from apps.executions import launch, services
from apps.executions.models import Execution
from apps.flows.models import Export, Flow, Import, Script

PROBLEM = "application/problem+json"
NAME_ITEMS = (
    "function main(ctx) {\n"
    "  return ctx.records.map(function (r) { return {id: r.id, name: 'item-' + r.id}; });\n}"
)


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.fixture
def locked() -> set:
    """The item ids the target system refuses (422) for now."""
    return {2}


@pytest.fixture
def items_flow(application, local_api, httpserver, locked) -> Flow:
    """Three items, named by a script, each posted to /items/<id>; the import proceeds
    on failure, so a refused item makes a succeeded job with one record error."""
    httpserver.expect_request("/source").respond_with_json([{"id": 1}, {"id": 2}, {"id": 3}])

    def push(request):
        item = int(request.path.rsplit("/", 1)[1])
        if item in locked:
            return json_response({"message": f"item {item} is locked"}, 422)
        return json_response({"ok": True})

    httpserver.expect_request(re.compile(r"^/items/\d+$"), method="POST").respond_with_handler(push)
    source = Export.objects.create(name="Items", connection=local_api, relative_uri="/source")
    name = Script.objects.create(name="Name items", content=NAME_ITEMS)
    push_import = Import.objects.create(
        name="Push item", connection=local_api, relative_uri="/items/{{record.id}}"
    )
    return Flow.objects.create(
        application=application,
        name="Push items",
        page_generators=[{"_exportId": str(source.pk)}],
        page_processors=[
            {"type": "script", "_scriptId": str(name.pk)},
            {"type": "import", "_importId": str(push_import.pk), "proceedOnFailure": True},
        ],
    )


def retry_url(job_id) -> str:
    return f"/api/v1/jobs/{job_id}/retry"


def requests_since(httpserver, start: int) -> list[tuple[str, object]]:
    return [(r.path, r.get_json(silent=True)) for r, _ in httpserver.log[start:]]


def test_a_job_with_record_errors_retries_only_the_failed_record_from_its_step(
    manager, items_flow, httpserver, locked
):
    run = manager.post(f"/api/v1/flows/{items_flow.pk}/run", {}, format="json")
    assert run.status_code == 201, run.json()
    original = launch.run_queued(run.json()["_id"])
    assert (original.status, original.num_success, original.num_error) == (
        "completed_with_errors",
        3,
        1,
    )

    locked.clear()  # the target system accepts item 2 now
    response = manager.post(retry_url(original.pk))

    assert response.status_code == 201, response.json()
    retry = response.json()
    assert retry["_id"] != str(original.pk)
    assert (retry["trigger"], retry["status"], retry["_retryOfJobId"]) == (
        "retry",
        "queued",
        str(original.pk),
    )
    assert retry["caller"] == "member"
    before = len(httpserver.log)
    done = launch.run_queued(retry["_id"])
    assert (done.status, done.num_success, done.num_error) == ("succeeded", 1, 0), done.error
    # Neither the export nor the script ran again: item 2 as the script had named it.
    assert requests_since(httpserver, before) == [("/items/2", {"id": 2, "name": "item-2"})]
    steps = manager.get(f"/api/v1/jobs/{done.pk}").json()["steps"]
    assert [(s["step"], s["recordsIn"], s["errors"]) for s in steps] == [
        ("pageProcessors[1]", 1, 0)
    ]


def test_a_failed_job_retries_the_whole_run_with_the_same_input(
    manager, application, local_api, httpserver
):
    state = {"down": True}

    def flaky(request):
        if state["down"]:
            return json_response({"message": "maintenance"}, 400)
        return json_response([{"id": 7}, {"id": 8}])

    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    httpserver.expect_request("/sink", method="POST").respond_with_json({"ok": True})
    source = Export.objects.create(name="Flaky", connection=local_api, relative_uri="/flaky")
    sink = Import.objects.create(name="Sink", connection=local_api, relative_uri="/sink")
    flow = Flow.objects.create(
        application=application,
        name="Flaky sync",
        skip_retries=True,
        page_generators=[{"_exportId": str(source.pk)}],
        page_processors=[{"type": "import", "_importId": str(sink.pk)}],
    )
    run = manager.post(
        f"/api/v1/flows/{flow.pk}/run",
        {"input": {"batch": "B1"}, "variables": {"region": "EU"}},
        format="json",
    )
    original = launch.run_queued(run.json()["_id"])
    assert original.status == "failed"
    assert [r.path for r, _ in httpserver.log] == ["/flaky"]

    state["down"] = False
    response = manager.post(retry_url(original.pk))

    assert response.status_code == 201, response.json()
    retry = response.json()
    assert (retry["trigger"], retry["_retryOfJobId"], retry["input"]) == (
        "retry",
        str(original.pk),
        {"batch": "B1"},
    )
    assert Execution.objects.get(pk=retry["_id"]).variables == {"region": "EU"}
    done = launch.run_queued(retry["_id"])
    assert (done.status, done.num_success) == ("succeeded", 2), done.error
    assert requests_since(httpserver, 1) == [
        ("/flaky", None),
        ("/sink", {"id": 7}),
        ("/sink", {"id": 8}),
    ]


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_job_still_going_cannot_be_retried(manager, items_flow, status):
    job = services.create_execution(flow=items_flow, trigger="run")
    Execution.objects.filter(pk=job.pk).update(status=status)
    response = manager.post(retry_url(job.pk))
    assert (response.status_code, response["Content-Type"]) == (409, PROBLEM)
    assert status in response.json()["detail"]
    assert Execution.objects.count() == 1


def test_a_job_that_succeeded_without_errors_cannot_be_retried(manager, items_flow, locked):
    locked.clear()
    job = services.create_execution(flow=items_flow, trigger="run")
    job = launch.run_queued(job.pk)
    assert (job.status, job.num_error) == ("succeeded", 0)
    response = manager.post(retry_url(job.pk))
    assert (response.status_code, response["Content-Type"]) == (409, PROBLEM)
    assert "succeeded: there is nothing to retry" in response.json()["detail"]
    assert Execution.objects.count() == 1


def test_a_job_is_retried_once_at_a_time(manager, items_flow):
    job = services.create_execution(flow=items_flow, trigger="run")
    Execution.objects.filter(pk=job.pk).update(status="failed")
    first = manager.post(retry_url(job.pk))
    assert first.status_code == 201
    again = manager.post(retry_url(job.pk))  # the first retry is still queued
    assert again.status_code == 409
    assert first.json()["_id"] in again.json()["detail"]
    assert Execution.objects.count() == 2


def test_a_failed_execute_job_is_not_retried_without_its_record(manager, items_flow):
    job = services.create_execution(flow=items_flow, trigger="execute")
    Execution.objects.filter(pk=job.pk).update(status="failed")
    answer = manager.post(retry_url(job.pk))
    assert answer.status_code == 409
    assert "send the Execute() again" in answer.json()["detail"]


def test_the_same_idempotency_key_answers_the_same_retry_even_after_it_finished(
    manager, items_flow, locked
):
    """A retry sent again after a lost answer started a second whole run, even with the same
    key (an outside probe): a key names one retry of one job, as it names one run."""
    run = manager.post(f"/api/v1/flows/{items_flow.pk}/run", {}, format="json")
    original = launch.run_queued(run.json()["_id"])
    retry_with = {"HTTP_IDEMPOTENCY_KEY": "retry-7"}

    first = manager.post(retry_url(original.pk), **retry_with)
    assert first.status_code == 201, first.json()
    launch.run_queued(first.json()["_id"])  # it ended: the guard against two at once is off
    again = manager.post(retry_url(original.pk), **retry_with)

    assert again.status_code == 200, again.json()
    assert again.json()["_id"] == first.json()["_id"]
    assert Execution.objects.filter(retry_of=original).count() == 1
    other = manager.post(f"/api/v1/flows/{items_flow.pk}/run", {}, format="json")
    reused = manager.post(retry_url(launch.run_queued(other.json()["_id"]).pk), **retry_with)
    assert reused.status_code == 422, reused.json()  # the key asked for another job's retry
