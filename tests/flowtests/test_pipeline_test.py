"""Done when: a flow of paged export → lookup → script → data-table import has a test that
passes offline with outbound sockets refused and the recorded server stopped; a changed
script fails it with a diff naming the step and the first differing record."""

import pytest
import urllib3

from apps.executions import launch
from apps.executions import services as executions
from apps.executions.models import RunRecording
from apps.flows import crypto
from apps.flows.models import Export, Flow, Script
from apps.flowtests import services
from apps.flowtests.offline import OutboundRefused, offline
from apps.records.models import Record
from tests.flowtests.conftest import TOKEN, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def saved(pipeline, owner, httpserver):
    done = run(pipeline, owner)
    assert done.status == "succeeded", done.error
    assert Record.objects.count() == 3
    test = services.save_as_test(execution=done, name="scores three customers", user=owner)
    Record.objects.all().delete()
    httpserver.stop()  # the recorded server is gone: a replay must not need it
    yield test
    httpserver.start()


def test_the_recording_holds_the_exchanges_in_order_without_credentials(pipeline, owner):
    done = run(pipeline, owner)
    stored = RunRecording.objects.get(execution=done)
    assert TOKEN not in stored.data
    recording = crypto.decrypt_json(stored.data)
    assert TOKEN not in str(recording)
    urls = [(e["step"], e["method"], e["url"].split("/", 3)[-1]) for e in recording["exchanges"]]
    assert urls == [
        ("pageGenerators[0]", "GET", "customers?pageSize=2&page=1"),
        ("pageProcessors[0]", "GET", "credit/1"),
        ("pageProcessors[0]", "GET", "credit/2"),
        ("pageGenerators[0]", "GET", "customers?pageSize=2&page=2"),
        ("pageProcessors[0]", "GET", "credit/3"),
    ]
    assert [w["data"]["Rating"] for w in recording["writes"]] == ["Hot", "Cold", "Hot"]
    assert recording["writes"][0]["result"]["RecordID"]
    assert len(recording["steps"]["pageProcessors[2]"]["out"]) == 3


def test_the_saved_test_passes_offline_with_the_server_stopped_and_writes_nothing(saved):
    [report] = services.run_tests(flow=saved.flow)
    assert report["result"] == "passed", report["summary"]
    assert [step["passed"] for step in report["steps"]] == [True] * 4
    assert not Record.objects.exists()  # a replay's writes are answered, never made


def test_changing_the_script_fails_naming_the_step_the_record_and_the_write(saved):
    Script.objects.filter(name="score").update(
        content=Script.objects.get(name="score").content.replace("> 1000", "> 2000")
    )
    [report] = services.run_tests(flow=saved.flow)
    assert report["result"] == "failed"
    steps = {step["step"]: step for step in report["steps"]}
    script = steps["pageProcessors[1]"]
    assert not script["passed"]
    assert script["firstDifferenceOut"]["index"] == 2  # Initech: 1500 is not > 2000
    assert script["firstDifferenceOut"]["diff"] == [
        {"path": "/Rating", "expected": "Hot", "actual": "Cold"}
    ]
    assert steps["pageProcessors[0]"]["passed"]
    [write] = steps["pageProcessors[2]"]["mismatches"]
    assert write["kind"] == "write"
    assert write["problem"] == "changed"
    assert report["summary"][0].startswith("pageProcessors[1] (score): record 2 out differs")


def test_a_request_the_recording_lacks_fails_naming_it(saved):
    Export.objects.filter(name="Credit limit").update(relative_uri="/limits/{{record.id}}")
    [report] = services.run_tests(flow=saved.flow)
    assert report["result"] == "failed"
    lookup = next(step for step in report["steps"] if step["step"] == "pageProcessors[0]")
    problems = [m for m in lookup["mismatches"] if m["kind"] == "request"]
    assert problems[0]["problem"] == "changed"
    assert "/limits/1" in problems[0]["message"]
    assert "/credit/1" in problems[0]["message"]


def test_a_step_added_since_the_recording_fails_naming_it(saved):
    flow = saved.flow
    flow.page_processors = [*flow.page_processors, flow.page_processors[1]]
    flow.save()
    [report] = services.run_tests(flow=flow)
    assert report["result"] == "failed"
    assert report["structure"][0]["step"] == "pageProcessors[3]"
    assert "was added since the recording" in report["summary"][0]


def test_ignored_fields_and_relaxed_requests_let_a_test_pass(saved):
    Script.objects.filter(name="score").update(
        content=Script.objects.get(name="score").content.replace("> 1000", "> 2000")
    )
    services.update_test(test=saved, changes={"ignored_fields": ["Rating"]})
    [report] = services.run_tests(flow=saved.flow)
    assert report["result"] == "passed", report["summary"]


def test_no_internet_socket_connects_during_a_replay(httpserver):
    with offline(), pytest.raises(urllib3.exceptions.NewConnectionError) as refused:
        urllib3.PoolManager(retries=False).request("GET", httpserver.url_for("/"))
    assert isinstance(refused.value.__cause__, OutboundRefused)


def test_a_run_of_only_some_page_generators_replays_only_those(pipeline, owner, httpserver):
    customers = pipeline.page_generators[0]["_exportId"]
    other = Export.objects.create(
        name="Unused", connection=Export.objects.get(pk=customers).connection, relative_uri="/x"
    )
    pipeline.page_generators = [*pipeline.page_generators, {"_exportId": str(other.pk)}]
    pipeline.save()
    execution = executions.create_execution(
        flow=pipeline, trigger="run", caller=owner, options={"_exportIds": [customers]}
    )
    done = launch.run_queued(execution.pk)
    assert done.status == "succeeded", done.error
    services.save_as_test(execution=done, name="only customers", user=owner)
    [report] = services.run_tests(flow=pipeline)
    assert report["result"] == "passed", report["summary"]


def test_a_step_removed_since_the_recording_fails_naming_it(saved):
    flow = saved.flow
    flow.page_processors = flow.page_processors[:2]
    flow.save()
    [report] = services.run_tests(flow=flow)
    assert report["result"] == "failed"
    [removed] = report["structure"]
    assert removed["step"] == "pageProcessors[2]"
    assert "(import 'Upsert lead') was removed since the recording" in removed["message"]
    gone = next(step for step in report["steps"] if step["step"] == "pageProcessors[2]")
    assert {(m["kind"], m["problem"]) for m in gone["mismatches"]} == {("write", "unused")}
    assert gone["recordsIn"] == {"expected": 3, "actual": 0}


def test_a_flow_that_cannot_run_any_more_is_a_failed_test_saying_why(saved):
    flow = saved.flow
    flow.page_processors = [*flow.page_processors[:1], {"type": "script", "_scriptId": "999999"}]
    Flow.objects.filter(pk=flow.pk).update(page_processors=flow.page_processors)
    flow.refresh_from_db()
    [report] = services.run_tests(flow=flow)
    assert report["result"] == "failed"
    assert report["summary"][0].startswith("The flow cannot run:")
