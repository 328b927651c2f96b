"""Live runs (issue 13): a run reports its progress while it goes on, cheaply (one UPDATE
per report, batched per page and by time), and the admin's run page and runs list read it
through a small JSON endpoint."""

import json
import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from werkzeug.wrappers import Response

from apps.executions import services
from apps.executions.models import Execution, StepRun
from apps.flows.models import Export, Flow, Import
from tests.executions.test_api_query_budget import captured, greeting_flow, key_client

Status = Execution.Status
WRITES = {"INSERT", "UPDATE", "DELETE"}
PROGRESS = {
    "current": "pageProcessors[0]",
    "numSuccess": 40,
    "numError": 2,
    "steps": [
        {"path": "pageGenerators[0]", "kind": "export", "name": "Leads", "in": 0, "out": 42},
        {"path": "pageProcessors[0]", "kind": "import", "name": "Post", "in": 42, "out": 40},
    ],
}
for step, errors in zip(PROGRESS["steps"], (0, 2), strict=True):
    step["errors"] = errors


def slow_pages(httpserver, local_api, application, *, pages: int, seconds: float) -> Flow:
    """A flow whose generator reads `pages` pages (of 10 records, the last of 5), each
    taking `seconds`, and posts each record to the same local server."""

    def page(request):
        time.sleep(seconds)
        number = int(request.args.get("page", "1"))
        size = 10 if number < pages else 5 if number == pages else 0
        records = [{"page": number, "n": n} for n in range(size)]
        return Response(json.dumps(records), content_type="application/json")

    httpserver.expect_request("/leads").respond_with_handler(page)
    httpserver.expect_request("/posted", method="POST").respond_with_json({"ok": True})
    export = Export.objects.create(
        name="Leads", connection=local_api, relative_uri="/leads", paging="page", page_size=10
    )
    post = Import.objects.create(name="Post", connection=local_api, relative_uri="/posted")
    return Flow.objects.create(
        application=application,
        name="Slow leads",
        page_generators=[{"_exportId": str(export.pk)}],
        page_processors=[{"type": "import", "_importId": str(post.pk)}],
    )


def run_here(flow: Flow, owner) -> tuple[Execution, list[str]]:
    """A queued run claimed and run in this thread, and the SQL its run wrote."""
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)
    assert services.claim(execution) == "claimed"
    execution.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        services.execute(execution)
    return execution, [q["sql"] for q in queries.captured_queries]


def progress_writes(sql: list[str]) -> list[str]:
    return [s for s in sql if s.startswith("UPDATE") and '"progress"' in s]


# --- The engine's reports, written -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_of_slow_pages_writes_one_update_per_page_not_per_record(
    httpserver, local_api, application, owner
):
    flow = slow_pages(httpserver, local_api, application, pages=3, seconds=0.6)
    execution, sql = run_here(flow, owner)

    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert execution.num_success == 25
    # 3 pages (25 records, 3 reads, 25 posts): a report per page, each one UPDATE.
    writes = progress_writes(sql)
    assert len(writes) == 3, writes
    assert all(s.startswith('UPDATE "executions_execution" SET') for s in writes)
    assert execution.progress["steps"][0]["out"] == 25  # the last report, after page 3
    assert execution.progress["current"] == "pageGenerators[0]"
    # The steps are written once, at the end, as before.
    assert len([s for s in sql if s.startswith('INSERT INTO "executions_steprun"')]) == 1


@pytest.mark.django_db(transaction=True)
def test_a_quick_run_writes_no_progress(httpserver, local_api, application, owner):
    flow = slow_pages(httpserver, local_api, application, pages=2, seconds=0.0)
    execution, sql = run_here(flow, owner)
    execution.refresh_from_db()
    assert execution.num_success == 15
    assert progress_writes(sql) == []
    assert execution.progress is None


@pytest.mark.django_db(transaction=True)
def test_a_sync_api_call_gains_no_write(application, integration):
    # Outside a test transaction, so progress is on: the call still writes its run and its
    # steps once, at the end.
    greeting_flow(application)
    client = key_client(integration)
    assert client.get("/api/resources/greeting?name=warm").status_code == 200
    response, _, writes, _ = captured(client, "/api/resources/greeting?name=Leor")
    assert response.status_code == 200
    assert [sql.split()[0:3] for sql in writes if "executions_" in sql] == [
        ["INSERT", "INTO", '"executions_execution"'],
        ["INSERT", "INTO", '"executions_steprun"'],
    ], writes


# --- The JSON endpoint ----------------------------------------------------------------


def a_run(flow, status, **values) -> Execution:
    return Execution.objects.create(
        flow=flow, flow_name=str(flow), trigger=Execution.Trigger.RUN, status=status, **values
    )


def progress_url(execution_id) -> str:
    return reverse("admin:executions_execution_progress", args=[execution_id])


@pytest.mark.django_db
def test_a_running_run_s_progress_is_its_last_report(admin_client, greeting):
    running = a_run(greeting, Status.RUNNING, progress=PROGRESS, num_success=40, num_error=2)
    response = admin_client.get(progress_url(running.pk))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]  # the admin's never_cache
    body = response.json()
    assert body["status"] == "running"
    assert body["finished"] is False
    assert (body["numSuccess"], body["numError"]) == (40, 2)
    assert body["current"] == "pageProcessors[0]"
    assert body["currentName"] == "Post"
    assert body["steps"] == PROGRESS["steps"]
    assert body["colour"]


@pytest.mark.django_db
def test_a_finished_run_s_progress_is_its_steps(admin_client, greeting):
    done = a_run(greeting, Status.SUCCEEDED, progress=PROGRESS, num_success=42)
    StepRun.objects.create(
        execution=done, position=0, path="pageProcessors[0]", kind="script", name="greet",
        records_in=42, records_out=42,
    )  # fmt: skip
    body = admin_client.get(progress_url(done.pk)).json()
    assert body["finished"] is True
    assert body["current"] == ""
    assert body["steps"] == [
        {"path": "pageProcessors[0]", "kind": "script", "name": "greet", "in": 42, "out": 42,
         "errors": 0}
    ]  # fmt: skip


@pytest.mark.django_db
def test_an_unknown_run_is_404(admin_client):
    response = admin_client.get(progress_url(uuid.uuid4()))
    assert response.status_code == 404
    assert response.json() == {"detail": "No such run."}


@pytest.mark.django_db
def test_a_staff_member_who_may_not_view_runs_is_refused(client, outsider, greeting):
    running = a_run(greeting, Status.RUNNING, progress=PROGRESS)
    client.force_login(outsider)
    response = client.get(progress_url(running.pk))
    assert response.status_code == 403
    listed = client.get(reverse("admin:executions_execution_progress_list"), {"id": running.pk})
    assert listed.status_code == 403


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_the_login(client, greeting):
    running = a_run(greeting, Status.RUNNING)
    response = client.get(progress_url(running.pk))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_the_endpoint_runs_a_fixed_number_of_queries(
    admin_client, greeting, django_assert_num_queries
):
    running = a_run(greeting, Status.RUNNING, progress=PROGRESS)
    few, many = a_run(greeting, Status.FAILED), a_run(greeting, Status.FAILED)
    for position in range(20):
        StepRun.objects.create(execution=many, position=position, path=f"p[{position}]")
    StepRun.objects.create(execution=few, position=0, path="p[0]")
    admin_client.get(progress_url(running.pk))  # the session is warm
    with django_assert_num_queries(3):  # the session, its user, the run
        admin_client.get(progress_url(running.pk))
    for finished in (few, many):
        with django_assert_num_queries(4):  # + the finished run's steps
            admin_client.get(progress_url(finished.pk))


@pytest.mark.django_db
def test_the_runs_list_endpoint_answers_for_several_runs_in_one_query(
    admin_client, greeting, django_assert_num_queries
):
    runs = [a_run(greeting, Status.RUNNING, progress=PROGRESS) for _ in range(5)]
    runs.append(a_run(greeting, Status.SUCCEEDED, num_success=3))
    url = reverse("admin:executions_execution_progress_list")
    query = "?" + "&".join(f"id={run.pk}" for run in runs)
    admin_client.get(url + query)
    with django_assert_num_queries(3):
        response = admin_client.get(url + query)
    states = {state["id"]: state for state in response.json()["runs"]}
    assert len(states) == 6
    assert states[str(runs[0].pk)]["currentName"] == "Post"
    assert states[str(runs[-1].pk)]["finished"] is True
    assert "steps" not in states[str(runs[0].pk)]
    assert admin_client.get(url + "?id=nope").status_code == 400


# --- The pages --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_running_run_s_page_has_the_live_panel_and_a_finished_one_its_steps(
    admin_client, greeting
):
    running = a_run(greeting, Status.RUNNING, progress=PROGRESS)
    html = admin_client.get(
        reverse("admin:executions_execution_change", args=[running.pk])
    ).content.decode()
    assert f'data-url="{progress_url(running.pk)}"' in html
    assert "executions/live_run.js" in html
    assert 'class="live-step current" data-path="pageProcessors[0]"' in html
    assert "Post (pageProcessors[0])" in html
    assert 'id="execution-steps"' not in html

    done = a_run(greeting, Status.SUCCEEDED)
    html = admin_client.get(
        reverse("admin:executions_execution_change", args=[done.pk])
    ).content.decode()
    assert 'id="execution-steps"' in html
    assert 'id="live-run"' not in html


@pytest.mark.django_db
def test_run_now_on_several_flows_links_to_the_runs_list_of_just_those_runs(
    admin_client, sales, monkeypatch
):
    from apps.executions import queue

    monkeypatch.setattr(queue, "send_run", lambda execution_id: None)
    flows = [Flow.objects.create(application=sales, name=f"flow {n}") for n in range(3)]
    page = admin_client.post(
        "/admin/flows/flow/",
        {"action": "run_now", "_selected_action": [flow.pk for flow in flows]},
        follow=True,
    ).content.decode()
    runs = list(Execution.objects.filter(flow__in=flows))
    assert len(runs) == 3
    assert "Queued 3 runs:" in page
    link = page.split('Queued 3 runs: <a href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert link.startswith("/admin/executions/execution/?id__in=")
    listed = admin_client.get(link).content.decode()
    assert "3 executions" in listed or "3 results" in listed
    assert 'id="live-runs"' in listed
    assert "executions/live_run.js" in listed
    other = a_run(flows[0], Status.SUCCEEDED)
    assert str(other.pk)[:8] not in listed
