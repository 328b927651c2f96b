"""The seed's orchestrated flow end to end: models → engine → real HTTP → execution rows."""

import json

import pytest
from werkzeug.wrappers import Response

from apps.executions import launch, services
from apps.executions.models import Execution
from apps.flows.models import Export, Flow, Import, Script

TRIALERS = {
    "/trialers/a": [{"id": 1, "email": "ann@x.test"}, {"id": 2, "email": "bob@x.test"}],
    "/trialers/b": [{"id": 3, "email": "cy@x.test"}],
}
USAGE = {1: (3, 7), 2: (0, 1), 3: (5, 2)}  # id -> (connections, flows)


@pytest.fixture
def usage_api(httpserver):
    for path, records in TRIALERS.items():
        httpserver.expect_request(path, method="GET").respond_with_json({"data": records})

    def usage(kind: int):
        def handler(request):
            user = int(request.args["user"])
            return Response(
                json.dumps({"data": USAGE[user][kind]}), content_type="application/json"
            )

        return handler

    httpserver.expect_request("/usage/connections").respond_with_handler(usage(0))
    httpserver.expect_request("/usage/flows").respond_with_handler(usage(1))
    stats_posted, crm_posted = [], []

    def stats(request):
        record = request.get_json()
        stats_posted.append(record)
        if record["id"] == 2:
            return Response(
                '{"message": "trialer 2 is archived"}', status=409, content_type="application/json"
            )
        return Response(
            json.dumps({"id": f"s{record['id']}"}), status=201, content_type="application/json"
        )

    def crm(request):
        crm_posted.append(request.get_json())
        return Response("{}", status=200, content_type="application/json")

    httpserver.expect_request("/stats", method="POST").respond_with_handler(stats)
    httpserver.expect_request("/crm/usage", method="PUT").respond_with_handler(crm)
    return stats_posted, crm_posted


@pytest.fixture
def orchestrated_flow(application, local_api) -> Flow:
    def lookup(name, path, generate):
        export = Export.objects.create(
            name=name,
            connection=local_api,
            relative_uri=f"{path}?user={{{{record.id}}}}",
            resource_path="data",
        )
        return {
            "type": "export",
            "_exportId": str(export.pk),
            "responseMapping": {"lists": [], "fields": [{"extract": "data", "generate": generate}]},
        }

    first = Export.objects.create(
        name="Trialers A", connection=local_api, relative_uri="/trialers/a", resource_path="data"
    )
    second = Export.objects.create(
        name="Trialers B", connection=local_api, relative_uri="/trialers/b", resource_path="data"
    )
    stats = Import.objects.create(name="Post stats", connection=local_api, relative_uri="/stats")
    crm = Import.objects.create(
        name="Update CRM",
        connection=local_api,
        method="PUT",
        relative_uri="/crm/usage",
        body={
            "email": "{{record.email}}",
            "numConnections": "{{record.numConnections[0]}}",
            "statsId": "{{record.statsId}}",
        },
    )
    return Flow.objects.create(
        application=application,
        name="Update Usage Stats for all Trialers",
        page_generators=[{"_exportId": str(first.pk)}, {"_exportId": str(second.pk)}],
        page_processors=[
            lookup("Connections", "/usage/connections", "numConnections"),
            lookup("Flows", "/usage/flows", "numFlows"),
            {
                "type": "import",
                "_importId": str(stats.pk),
                "proceedOnFailure": True,
                "responseMapping": {
                    "lists": [],
                    "fields": [{"extract": "id", "generate": "statsId"}],
                },
            },
            {
                "type": "import",
                "_importId": str(crm.pk),
                "responseMapping": {"lists": [], "fields": []},
            },
        ],
    )


def test_the_seed_orchestrated_flow_runs_end_to_end(orchestrated_flow, usage_api, owner):
    stats_posted, crm_posted = usage_api
    execution = services.create_execution(
        flow=orchestrated_flow, trigger=Execution.Trigger.RUN, caller=owner
    )
    execution = launch.run_queued(execution.pk)

    assert execution.status == "completed_with_errors", execution.error
    # As in Celigo, a lookup's `data` is the list of records it found.
    assert stats_posted == [
        {"id": 1, "email": "ann@x.test", "numConnections": [3], "numFlows": [7]},
        {"id": 2, "email": "bob@x.test", "numConnections": [0], "numFlows": [1]},
        {"id": 3, "email": "cy@x.test", "numConnections": [5], "numFlows": [2]},
    ]
    # Record 2 failed the stats import but proceeded (proceedOnFailure) to the CRM update.
    assert crm_posted == [
        {"email": "ann@x.test", "numConnections": 3, "statsId": "s1"},
        {"email": "bob@x.test", "numConnections": 0, "statsId": None},
        {"email": "cy@x.test", "numConnections": 5, "statsId": "s3"},
    ]
    assert (execution.num_success, execution.num_error, execution.num_ignore) == (3, 1, 0)
    [error] = execution.errors.all()
    assert (error.step_path, error.http_status) == ("pageProcessors[2]", 409)
    assert "archived" in error.body_excerpt
    assert error.record["id"] == 2
    steps = {step.path: step for step in execution.steps.all()}
    assert [steps[p].records_out for p in ("pageGenerators[0]", "pageGenerators[1]")] == [2, 1]
    assert steps["pageProcessors[0]"].records_in == 3
    assert steps["pageProcessors[2]"].errors == 1
    assert steps["pageProcessors[3]"].records_out == 3
    assert steps["pageProcessors[3]"].sample_out[0]["statsId"] == "s1"
    assert execution.started_at <= execution.finished_at


def test_the_axway_greeting_script_answers_with_its_status_and_result(application, owner):
    greeting = Script.objects.create(
        name="prepareResponse",
        content="function main(ctx) {\n  debug('greeting', ctx.trigger.args.request.query.name);\n"
        "  return {statusCode: 200, result: 'Hello ' + ctx.trigger.args.request.query.name}\n}",
    )
    flow = Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(greeting.pk)}],
    )
    execution = launch.admin_test_run(
        flow, caller=launch.Caller(user=owner), query={"name": "Leor"}
    )
    assert execution.status == "succeeded", execution.error
    assert execution.response == {"statusCode": 200, "result": "Hello Leor"}
    assert execution.status_code == 200
    assert execution.steps.get().debug_lines == ["greeting Leor"]


def test_a_missing_resource_fails_the_run_with_the_reason(application, owner):
    flow = Flow.objects.create(
        application=application,
        name="broken",
        page_processors=[{"type": "script", "_scriptId": "999"}],
    )
    execution = launch.admin_test_run(flow, caller=launch.Caller(user=owner))
    assert execution.status == "failed"
    assert "script 999 does not exist" in execution.error


def test_secrets_in_the_trigger_request_are_redacted_before_storage(application, owner):
    flow = Flow.objects.create(application=application, name="echo")
    execution = services.create_execution(
        flow=flow,
        trigger=Execution.Trigger.API,
        caller=owner,
        request={
            "headers": {"authorization": "Bearer fs_secret", "cookie": "s=1", "x-trace": "t"},
            "body": {"user": "ann", "password": "hunter2", "nested": [{"apiKey": "k"}]},
        },
    )
    execution.refresh_from_db()
    stored = json.dumps(execution.request)
    assert "fs_secret" not in stored
    assert "hunter2" not in stored
    assert '"k"' not in stored
    assert execution.request["headers"]["x-trace"] == "t"
    assert execution.request["body"]["user"] == "ann"


def test_values_a_database_rejects_are_cleaned_before_storage(
    application, local_api, httpserver, owner
):
    httpserver.expect_request("/odd").respond_with_data(
        '[{"score": NaN, "name": "nul\\u0000byte"}]', content_type="application/json"
    )
    export = Export.objects.create(name="Odd", connection=local_api, relative_uri="/odd")
    flow = Flow.objects.create(
        application=application, name="odd", page_generators=[{"_exportId": str(export.pk)}]
    )
    execution = launch.admin_test_run(flow, caller=launch.Caller(user=owner))
    assert execution.status == "succeeded", execution.error
    execution.refresh_from_db()
    cleaned = [{"score": None, "name": "nul\ufffdbyte"}]
    assert execution.response["data"]["records"] == cleaned
    assert execution.steps.get().sample_out == cleaned


def test_a_queued_run_of_a_flow_disabled_since_is_cancelled(application, owner):
    flow = Flow.objects.create(application=application, name="later")
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)
    Flow.objects.filter(pk=flow.pk).update(disabled=True)
    execution = launch.run_queued(execution.pk)
    assert execution.status == "cancelled"
    assert "disabled" in execution.error
