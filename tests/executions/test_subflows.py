import json

from apps.executions import launch, services
from apps.executions.models import Execution
from apps.flows.models import Flow, Script


def script_flow(application, name, source, **fields) -> Flow:
    script = Script.objects.create(name=name, content=source)
    return Flow.objects.create(
        application=application,
        name=name,
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        **fields,
    )


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
