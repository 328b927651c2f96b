"""The demo's greeting flow: a Test run saved as a test passes offline; a changed script
fails it with a diff naming the step and the first differing record."""

import pytest

from apps.executions import launch
from apps.executions.models import RunRecording
from apps.flows.models import Script
from apps.flowtests import services
from apps.flowtests.offline import is_offline

pytestmark = pytest.mark.django_db


def a_test_run(flow, owner, **query):
    return launch.admin_test_run(flow, caller=launch.Caller(user=owner), query=query)


def test_a_test_run_of_the_greeting_is_recorded_and_its_saved_test_passes_offline(greeting, owner):
    run = a_test_run(greeting, owner, name="Ada")
    assert run.status == "succeeded"
    assert RunRecording.objects.get(execution=run).complete
    test = services.save_as_test(execution=run, name="Greets Ada", user=owner)
    assert test.expected["answer"] == {"statusCode": 200, "result": "Hello Ada"}
    [report] = services.run_tests(flow=greeting)
    assert report["result"] == "passed", report
    test.refresh_from_db()
    assert test.last_result == "passed"


def test_changing_the_script_fails_the_greeting_test_naming_the_step_and_record(greeting, owner):
    services.save_as_test(execution=a_test_run(greeting, owner, name="Ada"), name="Ada", user=owner)
    Script.objects.filter(name="prepareResponse").update(
        content="function main(ctx) { return {statusCode: 200, result: 'Hi ' + "
        "ctx.trigger.args.request.query.name}; }"
    )
    greeting.refresh_from_db()
    [report] = services.run_tests(flow=greeting)
    assert report["result"] == "failed"
    [step] = report["steps"]
    assert step["step"] == "pageProcessors[0]"
    assert not step["passed"]
    assert step["firstDifferenceOut"]["index"] == 0
    assert step["firstDifferenceOut"]["diff"] == [
        {"path": "/result", "expected": "Hello Ada", "actual": "Hi Ada"}
    ]
    assert "pageProcessors[0] (prepareResponse): record 0 out" in report["summary"][0]


def test_other_runs_are_not_recorded(greeting, owner):
    launch.run(greeting, caller=launch.Caller(user=owner))
    assert not RunRecording.objects.exists()
    assert not is_offline()
