"""A recorded run keeps the time and the random numbers its scripts used; a replay gives
them back, so a flow that stamps or draws passes its test."""

import pytest

from apps.executions import launch
from apps.executions.models import RunRecording
from apps.executions.recording import load
from apps.flows.models import Flow, Script
from apps.flowtests import services
from tests.executions.honest import script_flow

pytestmark = pytest.mark.django_db

STAMP = """'use strict';
function main(ctx) {
  return {
    at: Date.now(),
    iso: new Date().toISOString(),
    year: new Date(2020, 1, 3).getFullYear(),
    isDate: new Date() instanceof Date,
    draw: Math.random(),
  };
}
"""


@pytest.fixture
def stamped(application) -> Flow:
    script = Script.objects.create(name="stamp", content=STAMP)
    return Flow.objects.create(
        application=application,
        name="stamp",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
    )


def test_a_replay_uses_the_recorded_time_and_random_numbers(stamped, owner):
    run = launch.admin_test_run(stamped, caller=launch.Caller(user=owner))
    assert run.status == "succeeded", run.error
    recording = load(run)
    [clock] = recording["clocks"]
    assert clock["step"] == "pageProcessors[0]"
    assert len(clock["times"]) == 3  # Date.now() and two new Date()
    assert len(clock["randoms"]) == 1
    [record] = recording["steps"]["pageProcessors[0]"]["out"]
    assert record["at"] == clock["times"][0]
    assert record["draw"] == clock["randoms"][0]
    assert record["year"] == 2020
    assert record["isDate"] is True
    services.save_as_test(execution=run, name="stamps", user=owner)
    [report] = services.run_tests(flow=stamped)
    assert report["result"] == "passed", report["summary"]


def test_a_missing_function_still_fails_the_recorded_run_as_it_would(stamped, owner):
    stamped.page_processors = [{**stamped.page_processors[0], "function": "nope"}]
    stamped.save()
    run = launch.admin_test_run(stamped, caller=launch.Caller(user=owner))
    assert run.status == "failed"
    assert "does not define a function named 'nope'" in run.errors.get().message


def test_a_script_that_reads_the_clock_very_often_still_runs_when_recorded(application, owner):
    """The readings filled the script's memory: a recorded run failed where the same run
    unrecorded succeeded (an outside probe). Past MAX_TAPED_VALUES the recording is cut.
    A million readings: well past the cut, and within the CPU-time limit on a slow, busy
    machine (two million ran past it there)."""
    flow = script_flow(
        application,
        "busy clock",
        "function main(ctx) { var s = 0; for (var i = 0; i < 500000; i++) "
        "{ s += Date.now() % 7 + Math.random(); } return [{ran: s > 0}]; }",
    )

    run = launch.admin_test_run(flow, caller=launch.Caller(user=owner))

    assert run.status == "succeeded", run.error
    assert not RunRecording.objects.get(execution=run).complete  # cut: it cannot be a test
    with pytest.raises(services.NoRecording, match="was cut"):
        services.save_as_test(execution=run, name="busy", user=owner)
