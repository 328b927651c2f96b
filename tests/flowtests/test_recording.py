"""What is recorded, where it is kept and for how long: the cap, the purge, sub-flows."""

import pytest

from apps.core.exceptions import ApiProblem
from apps.executions import launch
from apps.executions import services as executions
from apps.executions.models import Execution, RunRecording
from apps.executions.recording import load
from apps.executions.services import purge_executions
from apps.flows.models import Flow, Script
from apps.flowtests import services

pytestmark = pytest.mark.django_db


def test_run(flow, owner, **query):
    return launch.admin_test_run(flow, caller=launch.Caller(user=owner), query=query)


test_run.__test__ = False


def test_a_recording_over_the_cap_keeps_nothing_and_cannot_become_a_test(greeting, owner, settings):
    settings.FLOWSITE_TEST_CAPTURE_MAX_BYTES = 100
    run = test_run(greeting, owner, name="Ada")
    stored = RunRecording.objects.get(execution=run)
    assert not stored.complete
    assert stored.data == ""
    assert stored.size_bytes > 100
    with pytest.raises(ApiProblem) as refused:
        services.save_as_test(execution=run, name="big", user=owner)
    assert refused.value.status_code == 409
    assert "FLOWSITE_TEST_CAPTURE_MAX_BYTES" in str(refused.value.detail)


def test_a_recording_is_purged_with_its_run_and_a_saved_test_keeps_its_copy(greeting, owner):
    run = test_run(greeting, owner, name="Ada")
    services.save_as_test(execution=run, name="Ada", user=owner)
    Execution.objects.filter(pk=run.pk).update(created_at="2000-01-01T00:00:00Z")
    assert purge_executions(older_than_days=1) >= 1
    assert not RunRecording.objects.exists()
    [report] = services.run_tests(flow=greeting)
    assert report["result"] == "passed"


def test_sub_flow_results_are_recorded_and_replayed_without_running_the_child(application, owner):
    wrap = Script.objects.create(
        name="wrap", content="function main(ctx) { return {name: ctx.records[0].name}; }"
    )
    hello = Script.objects.create(
        name="hello",
        content="function main(ctx) { return {result: 'Hello ' + ctx.records[0].name}; }",
    )
    greeting = Flow.objects.create(
        application=application,
        name="child",
        page_processors=[{"type": "script", "_scriptId": str(hello.pk)}],
    )
    parent = Flow.objects.create(
        application=application,
        name="parent",
        page_processors=[
            {"type": "script", "_scriptId": str(wrap.pk)},
            {
                "type": "flow",
                "_flowId": str(greeting.pk),
                "responseMapping": {"fields": [{"extract": "data[0].result", "generate": "said"}]},
            },
        ],
    )
    run = launch.admin_test_run(parent, caller=launch.Caller(user=owner), input={"name": "Bo"})
    assert run.status == "succeeded", run.error
    [subflow] = load(run)["subflows"]
    assert subflow["flowId"] == greeting.pk
    assert subflow["result"]["status"] == "succeeded"
    services.save_as_test(execution=run, name="parent", user=owner)
    children = Execution.objects.filter(flow=greeting).count()
    [report] = services.run_tests(flow=parent)
    assert report["result"] == "passed", report["summary"]
    assert report["steps"][1]["recordsOut"] == {"expected": 1, "actual": 1}
    assert Execution.objects.filter(flow=greeting).count() == children


def test_a_re_run_made_to_save_a_test_records_and_a_flow_with_capture_for_tests_does(
    greeting, owner
):
    rerun = executions.create_execution(
        flow=greeting, trigger="retry", caller=owner, options={"captureForTests": True}
    )
    launch.run_queued(rerun.pk)  # fails (no request to greet): recorded all the same
    assert RunRecording.objects.get(execution=rerun).complete
    plain = executions.create_execution(flow=greeting, trigger="run", caller=owner)
    launch.run_queued(plain.pk)
    assert not RunRecording.objects.filter(execution=plain).exists()
    greeting.capture_for_tests = True
    greeting.save()
    captured = executions.create_execution(flow=greeting, trigger="run", caller=owner)
    launch.run_queued(captured.pk)
    assert RunRecording.objects.filter(execution=captured).exists()
