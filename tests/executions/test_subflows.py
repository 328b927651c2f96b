import json

import pytest

from apps.accounts.models import Role
from apps.executions import launch, services
from apps.executions.models import Execution
from apps.executions.tasks import run_scheduled_flow
from apps.flows.models import Export, Flow
from tests.executions.conftest import as_json, call
from tests.executions.honest import assert_failed_answer, script_flow


def test_a_parent_flow_runs_its_sub_flow_and_merges_the_output(application, owner):
    child = script_flow(
        application, "double", "function main(ctx) { return {doubled: ctx.records[0].n * 2}; }"
    )
    parent = Flow.objects.create(
        application=application,
        name="parent",
        page_processors=[
            {
                "type": "flow",
                "_flowId": str(child.pk),
                "responseMapping": {
                    "lists": [],
                    "fields": [{"extract": "data[0].doubled", "generate": "result"}],
                },
            }
        ],
    )
    execution = launch.admin_test_run(parent, caller=launch.Caller(user=owner), input={"n": 21})
    assert execution.status == "succeeded", execution.error
    assert execution.response["data"]["records"] == [{"n": 21, "result": 42}]
    [child_run] = execution.children.all()
    assert (child_run.trigger, child_run.flow_id, child_run.status) == (
        "subflow",
        child.pk,
        "succeeded",
    )
    assert child_run.input == {"n": 21}
    assert child_run.caller == owner


def test_cycles_are_refused_at_save(admin_client, application):
    first = Flow.objects.create(application=application, name="first")
    second = Flow.objects.create(
        application=application,
        name="second",
        page_processors=[{"type": "flow", "_flowId": str(first.pk)}],
    )
    form = {
        "application": application.pk,
        "name": "first",
        "page_generators": "[]",
        "page_processors": json.dumps([{"type": "flow", "_flowId": str(second.pk)}]),
        "variables": "{}",
        "api": "{}",
        "timezone": "UTC",
        "timeout_ms": 60000,
        "max_concurrency": 0,
        "concurrency_policy": "queue",
        "schedule": "",
    }
    page = admin_client.post(f"/admin/flows/flow/{first.pk}/change/", form).content.decode()
    assert f"cycle: flow {first.pk} → flow {second.pk} → flow {first.pk}" in page
    form["page_processors"] = json.dumps([{"type": "flow", "_flowId": str(first.pk)}])
    page = admin_client.post(f"/admin/flows/flow/{first.pk}/change/", form).content.decode()
    assert f"cycle: flow {first.pk} → flow {first.pk}" in page


def test_a_cycle_that_got_past_validation_stops_at_the_depth_limit(application, owner, monkeypatch):
    loop = Flow.objects.create(application=application, name="loop")
    Flow.objects.filter(pk=loop.pk).update(
        page_processors=[{"type": "flow", "_flowId": str(loop.pk)}]
    )
    loop.refresh_from_db()
    execution = services.create_execution(flow=loop, trigger=Execution.Trigger.TEST, caller=owner)
    from apps.flows import pipeline

    # As if the cycle predates the check at save time.
    monkeypatch.setattr(pipeline, "cycle_through", lambda flow_id, called: None)
    execution = launch.run_queued(execution.pk)
    assert execution.status == "failed"  # its one record failed in the deepest child
    assert Execution.objects.count() == launch.MAX_SUBFLOW_DEPTH + 1
    deepest = Execution.objects.order_by("-created_at").first()
    assert deepest.errors.get().message.endswith(
        f"nested more than {launch.MAX_SUBFLOW_DEPTH} deep; stopped."
    )


# --- who may run the child (found by an outside security probe) -----------------------------

PARTNERS_ONLY = "function main(ctx) { return {ran: 'the partners-only child'}; }"


@pytest.fixture
def wrapped(sales):
    """A role-restricted child flow, and an anonymous-friendly API flow that wraps it."""
    child = script_flow(
        sales,
        "partners only",
        PARTNERS_ONLY,
        api={"enabled": True, "method": "POST", "path": "/partners", "roles": ["Partners"]},
    )
    wrapper = Flow.objects.create(
        application=sales,
        name="wrapper",
        page_processors=[
            {
                "type": "flow",
                "_flowId": str(child.pk),
                "responseMapping": {"fields": [{"extract": "data", "generate": "child"}]},
            }
        ],
        api={"enabled": True, "method": "POST", "path": "/wrapper", "allowAnonymous": True},
    )
    return child, wrapper


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["anonymous", "an account outside the role"])
def test_a_wrapper_flow_does_not_open_a_role_restricted_child(
    live_server, wrapped, caller_key, who
):
    child, _ = wrapped
    key = caller_key if who != "anonymous" else None
    direct = call(live_server, "POST", "/api/resources/partners", key=key, body={"x": 1})
    assert direct.status in (401, 403)

    response = call(live_server, "POST", "/api/resources/wrapper", key=key, body={"x": 1})

    problem = assert_failed_answer(response, 500, "Partners")
    assert "the partners-only child" not in response.data.decode()
    assert problem["errors"][0]["record"] == {"x": 1}
    assert not Execution.objects.filter(flow=child).exists()


@pytest.mark.django_db(transaction=True)
def test_a_member_of_the_childs_role_runs_it_through_the_wrapper(
    live_server, wrapped, integration, caller_key
):
    child, _ = wrapped
    Role.objects.create(name="Partners").members.add(integration)

    response = call(live_server, "POST", "/api/resources/wrapper", key=caller_key, body={"x": 1})

    assert response.status == 200, response.data[:2000]
    [record] = as_json(response)["data"]["records"]
    assert record["child"] == [{"ran": "the partners-only child"}]
    assert Execution.objects.get(flow=child).caller == integration


def test_a_schedule_runs_the_child_with_the_builders_authority(wrapped):
    child, wrapper = wrapped
    Flow.objects.filter(pk=wrapper.pk).update(schedule="0 9 * * *")  # a tick of it

    started = run_scheduled_flow(wrapper.pk)

    run = Execution.objects.get(pk=started)
    assert run.status == "succeeded", run.error
    assert Execution.objects.get(flow=child).status == "succeeded"


def test_a_sub_flow_stops_when_its_parent_or_grandparent_is_cancelled(
    application, monkeypatch, django_assert_num_queries
):
    """A parent's cancel did not reach the sub-flow it was running: the child went on to
    the end, and the parent's cancel waited for it (an outside probe)."""
    monkeypatch.setattr(services, "CANCEL_CHECK_SECONDS", 0)
    flow = Flow.objects.create(application=application, name="any")

    def run(trigger="subflow", parent=None):
        return services.create_execution(
            flow=flow, trigger=trigger, parent=parent, status="running"
        )

    grandparent = run(trigger="api")
    parent = run(parent=grandparent)
    child = run(parent=parent)
    handler = run(trigger="error_handler", parent=grandparent)  # not a sub-flow of it
    checks = {run: services._cancel_check(run) for run in (grandparent, parent, child, handler)}
    assert not any(check() for check in checks.values())

    services.cancel_execution(grandparent)

    assert [checks[run]() for run in (grandparent, parent, child)] == [True, True, True]
    assert not checks[handler]()
    # A parent calls its sub-flow once per record: the chain is read from the parent's run
    # in this process, not walked again (the review of the first version).
    sibling = run(parent=parent)
    with django_assert_num_queries(0):
        assert services._cancelled_with(sibling) == [sibling.pk, parent.pk, grandparent.pk]


def test_a_sub_flow_that_starts_after_its_parent_was_cancelled_stops_before_its_first_step(
    application, local_api, httpserver
):
    """A sub-flow that waited for a slot started ~2.5 s after its parent's cancel, made its
    call and succeeded (an outside probe): a sub-flow asks at its first checkpoint."""
    httpserver.expect_request("/side-effect").respond_with_json([{"done": True}])
    export = Export.objects.create(name="side", connection=local_api, relative_uri="/side-effect")
    flow = Flow.objects.create(
        application=application, name="child", page_generators=[{"_exportId": str(export.pk)}]
    )
    parent = services.create_execution(flow=flow, trigger="api", status="running")
    child = services.create_execution(flow=flow, trigger="subflow", parent=parent)
    services.cancel_execution(parent)

    assert services.claim(child) == "claimed"
    ran = services.execute(child)

    assert ran.status == "cancelled"
    assert httpserver.log == []
