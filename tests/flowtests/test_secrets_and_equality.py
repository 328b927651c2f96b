"""What a flow test keeps, reports and exports holds no secret, and compares values as JSON
(found by an outside probe: reports quoted secret variables, a saved test and its bundle
kept a token the API echoed and an access token in a recorded body, a test imported with
its flow could never pass with a secret in a URL, and `1` → `true` passed for unchanged)."""

import io
import json

import pytest
from django.core.management import call_command

from apps.core.redaction import REDACTED, without_secrets
from apps.flows import crypto
from apps.flows.engine.capture import Replay
from apps.flows.models import Application, Export, Flow, Script
from apps.flowtests import services
from apps.flowtests.models import FlowTest
from tests.flowtests.conftest import TOKEN, run

pytestmark = pytest.mark.django_db
SECRET = "S3CR3T-VAR-VALUE-77"


def keyed(pipeline: Flow) -> Flow:
    """The pipeline's lookup sends a secret variable in its URL and body."""
    Export.objects.filter(name="Credit limit").update(
        relative_uri="/credit/{{record.id}}?key={{variables.apiKey}}"
    )
    pipeline.set_secret_variables({"apiKey": SECRET})
    pipeline.save()
    return pipeline


@pytest.fixture
def server_gone(httpserver):
    """The recorded server stops for the test's replays (started again after)."""
    httpserver.stop()
    yield
    httpserver.start()


@pytest.fixture
def keyed_test(pipeline, owner):
    done = run(keyed(pipeline), owner)
    assert done.status == "succeeded", done.error
    return services.save_as_test(execution=done, name="keyed", user=owner)


def test_a_failing_report_quotes_no_secret_variable_anywhere_it_goes(
    manager, keyed_test, server_gone, tmp_path
):
    Export.objects.filter(name="Credit limit").update(
        relative_uri="/limits/{{record.id}}?key={{variables.apiKey}}"
    )
    flow = keyed_test.flow

    answer = manager.post(f"/api/v1/flows/{flow.pk}/tests/run")
    out, junit = io.StringIO(), tmp_path / "flow-tests.xml"
    with pytest.raises(SystemExit):
        call_command("test_flows", flow=[flow.name], junit=str(junit), stdout=out)

    [report] = answer.json()
    assert report["result"] == "failed"
    assert "/limits/1?key=[redacted]" in " ".join(report["summary"])
    keyed_test.refresh_from_db()
    for where in (answer.content.decode(), json.dumps(keyed_test.last_report), out.getvalue()):
        assert SECRET not in where
    assert SECRET not in junit.read_text()


def test_a_test_installed_from_a_bundle_passes_once_its_secret_variable_is_set(
    manager, keyed_test, server_gone
):
    flow = keyed_test.flow
    bundle = manager.get(f"/api/v1/flows/{flow.pk}/download").json()
    assert SECRET not in json.dumps(bundle)
    installed = manager.post(
        "/api/v1/flows/import",
        {
            "bundle": bundle,
            "connectionMap": {c["_id"]: c["_id"] for c in bundle["connections"]},
            "_integrationId": str(Application.objects.create(name="Elsewhere").pk),
        },
        format="json",
    )
    assert installed.status_code == 201, installed.json()
    copy_of = Flow.objects.get(pk=installed.json()["_id"])
    copy_of.set_secret_variables({"apiKey": SECRET})
    copy_of.save()

    [report] = services.run_tests(flow=copy_of)

    assert report["result"] == "passed", report["summary"]


@pytest.fixture
def echoing(application, crm, httpserver, owner) -> FlowTest:
    """A flow whose API quotes back the connection's token and hands out an access token."""
    httpserver.expect_request("/whoami").respond_with_json(
        {
            "data": [{"seen": f"Bearer {TOKEN}", "n": 1}],
            "session": {"access_token": "AT-LEAK-111", "refresh_token": "RT-LEAK-222"},
        }
    )
    whoami = Export.objects.create(
        name="Who am I", connection=crm, relative_uri="/whoami", resource_path="data"
    )
    flow = Flow.objects.create(
        application=application,
        name="who",
        capture_for_tests=True,
        page_generators=[{"_exportId": str(whoami.pk)}],
    )
    done = run(flow, owner)
    assert done.status == "succeeded", done.error
    return services.save_as_test(execution=done, name="who", user=owner)


def test_a_token_the_api_quoted_back_is_not_kept_in_the_test_nor_in_its_bundle(manager, echoing):
    listed = manager.get(f"/api/v1/flows/{echoing.flow_id}/tests").content.decode()
    bundle = manager.get(f"/api/v1/flows/{echoing.flow_id}/download").content.decode()

    assert TOKEN not in json.dumps(echoing.expected)
    assert TOKEN not in listed
    assert TOKEN not in bundle
    assert "Bearer [redacted]" in listed
    [report] = services.run_tests(flow=echoing.flow)
    assert report["result"] == "passed", report["summary"]


def test_secret_fields_of_a_recorded_response_body_do_not_travel_in_bundles(manager, echoing):
    bundle = manager.get(f"/api/v1/flows/{echoing.flow_id}/download").json()

    [exchange] = bundle["tests"][0]["recording"]["exchanges"]
    body = json.loads(exchange["response"]["body"])
    assert body["session"] == {"access_token": "[redacted]", "refresh_token": "[redacted]"}
    assert "LEAK" not in json.dumps(bundle)


@pytest.fixture
def flags_test(pipeline, owner):
    """make(value): the pipeline with a script setting `flag` to `value`, saved as a test."""

    def make(value: str) -> Flow:
        flagger = Script.objects.create(
            name="flagger",
            content=f"function main(ctx) {{ ctx.records.forEach(function (r) {{ r.flag = {value}; "
            "}); return ctx.records; }",
        )
        pipeline.page_processors = [
            *pipeline.page_processors[:1],
            {"type": "script", "_scriptId": str(flagger.pk)},
            *pipeline.page_processors[1:],
        ]
        pipeline.save()
        done = run(pipeline, owner)
        assert done.status == "succeeded", done.error
        services.save_as_test(execution=done, name="flags", user=owner)
        return pipeline

    return make


@pytest.mark.parametrize(("before", "after"), [("1", "true"), ("0", "false"), ("1", "'1'")])
def test_a_value_that_changed_type_fails_the_test(flags_test, before, after):
    """`1` → `true` passed: Python's True == 1; a real run then sent `true`."""
    flow = flags_test(before)
    script = Script.objects.get(name="flagger")
    script.content = script.content.replace(f"r.flag = {before};", f"r.flag = {after};")
    script.save()

    [report] = services.run_tests(flow=flow)

    assert report["result"] == "failed"
    lookup = next(step for step in report["steps"] if step["step"] == "pageProcessors[1]")
    assert lookup["firstDifferenceOut"]["diff"][0]["path"] == "/flag"


def test_a_bundle_with_two_tests_of_one_name_is_a_400_naming_them(manager, keyed_test):
    bundle = manager.get(f"/api/v1/flows/{keyed_test.flow_id}/download").json()
    bundle["tests"].append({**bundle["tests"][0], "name": " keyed "})

    answer = manager.post(
        "/api/v1/flows/import",
        {
            "bundle": bundle,
            "connectionMap": {c["_id"]: c["_id"] for c in bundle["connections"]},
            "_integrationId": str(keyed_test.flow.application_id),
        },
        format="json",
    )

    assert answer.status_code == 400, answer.content
    [error] = answer.json()["errors"]
    assert error["pointer"] == "#/tests[1]/name"
    assert "tests[0] of the same flow is named 'keyed'" in error["detail"]


def test_a_recording_keeps_no_secret_of_its_run_even_one_changed_since(manager, pipeline, owner):
    """Tests were redacted with the flow's secrets as they are when saved: a value changed
    since stayed in clear in the test, its bundle and the admin (an outside probe)."""
    done = run(keyed(pipeline), owner)
    assert done.status == "succeeded", done.error
    pipeline.set_secret_variables({"apiKey": "another-value-now"})
    pipeline.save()

    test = services.save_as_test(execution=done, name="later", user=owner)
    bundle = manager.get(f"/api/v1/flows/{pipeline.pk}/download").content.decode()

    assert SECRET not in json.dumps(crypto.decrypt_json(test.recording))
    assert SECRET not in json.dumps(test.expected)
    assert SECRET not in bundle
    [report] = services.run_tests(flow=pipeline)
    assert report["result"] == "passed", report["summary"]  # a rotated secret breaks no test


def test_a_replay_compares_values_under_secret_looking_names_and_lets_redacted_ones_pass():
    """Redacting by name on both sides let a changed pageToken or signature pass (the
    review); a value a bundle redacted, or a secret since rotated, still matches."""
    tape = Replay(
        {},
        where=lambda: "pageProcessors[0]",
        drop_header=lambda name: False,
        conceal=lambda value: without_secrets(value, {SECRET}),
        redacted=REDACTED,
    )

    assert not tape.same({"pageToken": "A", "signature": "x"}, {"pageToken": "B", "signature": "x"})
    assert not tape.same({"signature": "x"}, {"signature": "y"})
    assert tape.same({"key": REDACTED, "n": 1}, {"key": "rotated-key", "n": 1})
    assert tape.same({"url": f"/a?k={REDACTED}"}, {"url": f"/a?k={SECRET}"})
    assert not tape.same({"n": 1}, {"n": True})
