"""The flow as a diagram (apps/executions/diagram.py): trigger → page generators → page
processors, each linked to its page (a sub-flow to its flow), with the last run's records in
and out and errors on the flow's page and that run's on a run's page; a step whose resource
is gone drawn as missing; a fixed number of queries however many runs and steps."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.executions import launch
from apps.executions.models import Execution, StepRun
from apps.flows.models import Application, Connection, Export, Flow, Import, Script

pytestmark = pytest.mark.django_db
Status = Execution.Status


@pytest.fixture
def crm(db) -> Connection:
    return Connection.objects.create(name="CRM", base_uri="https://crm.example.com")


@pytest.fixture
def sales(db) -> Application:
    return Application.objects.create(name="Sales")


@pytest.fixture
def notify(sales) -> Flow:
    return Flow.objects.create(application=sales, name="notify")


@pytest.fixture
def resources(sales, crm):
    return {
        "leads": Export.objects.create(name="Leads", connection=crm, relative_uri="/leads"),
        "company": Export.objects.create(name="Company", connection=crm, relative_uri="/c"),
        "shape": Script.objects.create(name="Shape", content="function main(ctx) {}"),
        "push": Import.objects.create(name="Push to ERP", connection=crm, relative_uri="/erp"),
    }


@pytest.fixture
def sync(sales, resources, notify) -> Flow:
    return Flow.objects.create(
        application=sales,
        name="sync-leads",
        schedule="0 2 * * *",
        timezone="Europe/Amsterdam",
        api={"enabled": True, "method": "GET", "path": "/leads", "mode": "sync"},
        page_generators=[{"_exportId": str(resources["leads"].pk)}],
        page_processors=[
            {"type": "export", "_exportId": resources["company"].pk, "proceedOnFailure": True},
            {"type": "script", "_scriptId": str(resources["shape"].pk), "function": "shape"},
            {"type": "flow", "_flowId": str(notify.pk)},
            {"type": "import", "_importId": str(resources["push"].pk)},
        ],
    )


def a_run(flow, status=Status.SUCCEEDED, **values) -> Execution:
    values = {"trigger": Execution.Trigger.API, "mode": "sync", **values}
    return Execution.objects.create(flow=flow, flow_name=str(flow), status=status, **values)


def steps(run, *counters) -> None:
    """counters: (path, in, out, errors) per step, in order."""
    StepRun.objects.bulk_create(
        StepRun(
            execution=run,
            position=position,
            path=path,
            kind="export" if path.startswith("pageGenerators") else "script",
            name=path,
            records_in=records_in,
            records_out=records_out,
            errors=errors,
            duration_ms=12.5,
        )
        for position, (path, records_in, records_out, errors) in enumerate(counters)
    )


def flow_page(client, flow) -> str:
    response = client.get(reverse("admin:flows_flow_change", args=[flow.pk]))
    assert response.status_code == 200
    return response.content.decode()


def run_page(client, run) -> str:
    response = client.get(reverse("admin:executions_execution_change", args=[run.pk]))
    assert response.status_code == 200
    return response.content.decode()


def box(html: str, path: str) -> str:
    """The HTML of the diagram's box for one step (data-step="<path>")."""
    assert f'data-step="{path}"' in html, f"no box for {path}"
    return html.split(f'data-step="{path}"', 1)[1].split('class="diagram-box', 1)[0]


def counter(html: str, path: str, name: str) -> str:
    found = re.search(rf'<b class="diagram-{name}">([^<]*)</b>', box(html, path))
    assert found, f"no {name} counter on {path}"
    return found.group(1)


def test_the_flow_page_draws_its_triggers_and_steps_each_linked_to_its_page(
    admin_client, sync, resources, notify
):
    html = flow_page(admin_client, sync)
    diagram = html.split('id="flow-diagram"', 1)[1]

    assert "At 02:00, every day (Europe/Amsterdam)" in diagram
    assert "GET /api/resources/leads · sync" in diagram
    assert reverse("admin:flows_flow_test_run", args=[sync.pk]) in diagram
    leads = box(html, "pageGenerators[0]")
    assert "reads pages" in leads
    assert f'href="{reverse("admin:flows_export_change", args=[resources["leads"].pk])}"' in leads
    lookup = box(html, "pageProcessors[0]")
    assert "lookup · looks up" in lookup
    assert "Company" in lookup
    assert "proceeds on failure" in lookup
    script = box(html, "pageProcessors[1]")
    assert f'href="{reverse("admin:flows_script_change", args=[resources["shape"].pk])}"' in script
    assert "function shape()" in script
    assert "proceeds on failure" not in script
    subflow = box(html, "pageProcessors[2]")
    assert "sub-flow · calls" in subflow
    notify_url = reverse("admin:flows_flow_change", args=[notify.pk])
    assert f'href="{notify_url}">Sales / notify' in subflow
    assert "Push to ERP" in box(html, "pageProcessors[3]")
    assert 'id="diagram-pageProcessors-3"' in html
    assert "No run yet" in diagram
    assert counter(html, "pageProcessors[0]", "in") == "—"


def test_the_flow_page_shows_the_last_started_runs_numbers_and_links_to_it(admin_client, sync):
    older = a_run(sync)
    steps(older, ("pageGenerators[0]", 0, 99, 0))
    last = a_run(sync, Status.COMPLETED_WITH_ERRORS, num_success=4, num_error=1)
    steps(
        last,
        ("pageGenerators[0]", 0, 5, 0),
        ("pageProcessors[0]", 5, 5, 0),
        ("pageProcessors[1]", 5, 4, 1),
    )
    a_run(sync, Status.QUEUED)  # has done nothing yet: not the one shown

    html = flow_page(admin_client, sync)

    assert f'href="{reverse("admin:executions_execution_change", args=[last.pk])}"' in html
    assert "Completed with errors" in html.split('id="flow-diagram"', 1)[1]
    assert counter(html, "pageGenerators[0]", "out") == "5"
    assert counter(html, "pageProcessors[0]", "in") == "5"
    assert counter(html, "pageProcessors[0]", "out") == "5"
    assert counter(html, "pageProcessors[1]", "errors") == "1"
    assert "diagram-has-errors" in html.split('data-step="pageProcessors[1]"', 1)[0][-300:]
    assert counter(html, "pageProcessors[3]", "in") == "—"  # it did not run


def test_steps_whose_resource_is_gone_are_drawn_missing_not_a_crash(admin_client, sales):
    gone = Script.objects.create(name="gone", content="")
    gone_id = gone.pk
    gone.delete()
    flow = Flow.objects.create(
        application=sales,
        name="half-edited",
        page_generators=[{"_exportId": "not an id"}, "an export"],
        page_processors=[
            {"type": "script", "_scriptId": str(gone_id)},
            {"type": "webhook", "_scriptId": "1"},
            ["not", "an", "object"],
            {"type": "flow"},
        ],
    )

    html = flow_page(admin_client, flow)

    assert "missing: no export chosen" in box(html, "pageGenerators[0]")
    assert "missing: not an object" in box(html, "pageGenerators[1]")
    assert f"missing: script {gone_id} does not exist" in box(html, "pageProcessors[0]")
    assert "missing: not a step kind" in box(html, "pageProcessors[1]")
    assert "webhook" in box(html, "pageProcessors[1]")
    assert "missing: not an object" in box(html, "pageProcessors[2]")
    assert "missing: no flow chosen" in box(html, "pageProcessors[3]")

    flow.page_generators = {"not": "a list"}
    flow.page_processors = "nor this"
    flow.save()
    assert "one record: the trigger's input" in flow_page(admin_client, flow)


def test_a_runs_page_shows_that_runs_numbers_its_sub_flow_run_and_steps_since_removed(
    admin_client, sync, notify
):
    run = a_run(
        sync,
        Status.FAILED,
        request={"method": "GET", "path": "/api/resources/leads", "query": {}, "headers": {}},
        caller_label="integration",
    )
    steps(
        run,
        ("pageGenerators[0]", 0, 3, 0),
        ("pageProcessors[0]", 3, 3, 0),
        ("pageProcessors[1]", 3, 2, 1),
        ("pageProcessors[2]", 2, 2, 0),
        ("pageProcessors[7]", 2, 0, 2),  # a step the flow has no more
    )
    child = a_run(notify, parent=run, trigger=Execution.Trigger.SUBFLOW)
    newer = a_run(sync)
    steps(newer, ("pageGenerators[0]", 0, 50, 0))

    html = run_page(admin_client, run)
    diagram = html.split('id="flow-diagram"', 1)[1]

    assert "This run" in diagram
    assert "API call" in diagram
    assert "GET /api/resources/leads · by integration" in diagram
    assert counter(html, "pageGenerators[0]", "out") == "3"  # this run's, not the newer one's
    assert counter(html, "pageProcessors[1]", "errors") == "1"
    subflow = box(html, "pageProcessors[2]")
    assert f'href="{reverse("admin:executions_execution_change", args=[child.pk])}"' in subflow
    assert "1 sub-flow run<" in subflow
    assert "no longer has" in diagram
    assert counter(html, "pageProcessors[7]", "errors") == "2"


def test_a_sub_flow_called_many_times_links_to_its_runs_listed(admin_client, sync, notify):
    run = a_run(sync)
    for _ in range(3):
        a_run(notify, parent=run, trigger=Execution.Trigger.SUBFLOW)
    subflow = box(run_page(admin_client, run), "pageProcessors[2]")
    assert "3 sub-flow runs" in subflow
    assert f"parent__exact={run.pk}" in subflow
    assert f"flow__id__exact={notify.pk}" in subflow
    listed = admin_client.get(
        reverse("admin:executions_execution_changelist")
        + f"?parent__exact={run.pk}&flow__id__exact={notify.pk}"
    )
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 3


def test_a_run_whose_flow_is_gone_draws_the_steps_it_ran(admin_client, sync):
    run = a_run(sync)
    steps(run, ("pageGenerators[0]", 0, 3, 0), ("pageProcessors[0]", 3, 3, 0))
    retry = a_run(sync, retry_of=run, trigger=Execution.Trigger.RETRY)
    sync.delete()
    run.refresh_from_db()

    html = run_page(admin_client, run)

    assert "The flow is gone" in html
    assert counter(html, "pageProcessors[0]", "out") == "3"
    retried = run_page(admin_client, retry)
    assert f"again after run {str(run.pk)[:8]}" in retried


def test_a_running_run_shows_its_last_progress_report_and_the_step_it_is_in(admin_client, sync):
    running = a_run(
        sync,
        Status.RUNNING,
        progress={
            "current": "pageProcessors[0]",
            "numSuccess": 0,
            "numError": 1,
            "steps": [
                {"path": "pageGenerators[0]", "kind": "export", "in": 0, "out": 40, "errors": 0},
                {"path": "pageProcessors[0]", "kind": "export", "in": 12, "out": 11, "errors": 1},
            ],
        },
    )

    for html in (flow_page(admin_client, sync), run_page(admin_client, running)):
        assert counter(html, "pageGenerators[0]", "out") == "40"
        assert counter(html, "pageProcessors[0]", "errors") == "1"
        assert counter(html, "pageProcessors[1]", "in") == "—"
        before = html.split('data-step="pageProcessors[0]"', 1)[0][-400:]
        assert "diagram-current" in before
        assert "Running" in html.split('id="flow-diagram"', 1)[1]


def test_a_real_runs_steps_land_on_their_boxes(admin_client, sales, admin_user):
    fan_out = Script.objects.create(
        name="Fan out", content="function main(ctx) { return [{n: 1}, {n: 2}, {n: 3}]; }"
    )
    shout = Script.objects.create(
        name="Shout",
        content="function main(ctx) { return ctx.records.map(function (r) "
        "{ if (r.n === 2) { throw new Error('no'); } return r; }); }",
    )
    flow = Flow.objects.create(
        application=sales,
        name="numbers",
        page_processors=[
            {"type": "script", "_scriptId": str(fan_out.pk)},
            {"type": "script", "_scriptId": str(shout.pk), "proceedOnFailure": True},
        ],
    )
    run = launch.admin_test_run(flow, caller=launch.Caller(user=admin_user), input={})

    html = flow_page(admin_client, flow)

    assert "one record: the trigger's input" in html
    for step in StepRun.objects.filter(execution=run):
        assert counter(html, step.path, "in") == str(step.records_in)
        assert counter(html, step.path, "out") == str(step.records_out)
        assert counter(html, step.path, "errors") == str(step.errors)
    assert list(StepRun.objects.filter(execution=run).values_list("records_in", "errors")) == [
        (1, 0),
        (3, 3),  # a script that throws fails its page's records
    ]


def many_runs(flow, count: int) -> None:
    """`count` finished runs of the flow, each with a step run per step."""
    runs = Execution.objects.bulk_create(
        Execution(
            id=uuid.uuid4(), flow=flow, flow_name=str(flow), trigger="api", status=Status.SUCCEEDED
        )
        for _ in range(count)
    )
    StepRun.objects.bulk_create(
        StepRun(execution=run, position=0, path="pageGenerators[0]", kind="export", name="x")
        for run in runs
    )


def queries(client, url: str) -> int:
    assert client.get(url).status_code == 200  # warm: the session and permissions
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_flow_page_runs_the_same_queries_with_10_and_with_1000_runs(admin_client, sync):
    url = reverse("admin:flows_flow_change", args=[sync.pk])
    many_runs(sync, 10)
    with_10 = queries(admin_client, url)
    many_runs(sync, 990)
    with_1000 = queries(admin_client, url)
    assert with_1000 == with_10
    assert with_10 <= 30, with_10


def test_a_runs_page_runs_the_same_queries_with_10_and_with_1000_runs(admin_client, sync):
    many_runs(sync, 9)
    run = a_run(sync)
    steps(run, ("pageGenerators[0]", 0, 3, 0), ("pageProcessors[2]", 3, 3, 0))
    a_run(Flow.objects.get(name="notify"), parent=run, trigger=Execution.Trigger.SUBFLOW)
    url = reverse("admin:executions_execution_change", args=[run.pk])
    with_10 = queries(admin_client, url)
    many_runs(sync, 990)
    with_1000 = queries(admin_client, url)
    assert with_1000 == with_10
    assert with_10 <= 30, with_10


def test_the_diagrams_queries_do_not_grow_with_its_steps(admin_client, sync):
    url = reverse("admin:flows_flow_change", args=[sync.pk])
    a_run(sync)
    few = queries(admin_client, url)
    sync.page_generators = sync.page_generators * 5
    sync.page_processors = sync.page_processors * 5
    sync.save()
    assert queries(admin_client, url) == few
