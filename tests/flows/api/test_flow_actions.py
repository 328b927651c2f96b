"""The flow actions of seed 003: clone, run, replaceConnection, download/template and import,
dependencies, audit, logs; deleting what flows use; who may do what."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.utils import timezone
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient
from werkzeug.wrappers import Response

from apps.accounts.models import Role
from apps.accounts.privileges import Privilege
from apps.executions import launch, services
from apps.executions.models import Execution
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from apps.records.models import RecordType
from apps.surface.models import Operation
from tests.conftest import grant

PROBLEM = "application/problem+json"
ID_KEYS = ("_exportId", "_importId", "_scriptId", "_flowId")
PASS_THROUGH = "function main(ctx) { return ctx.records; }"


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return response.json()


def pointers(document: dict) -> dict[str, str]:
    return {error["pointer"]: error["detail"] for error in document.get("errors", [])}


def without_ids(steps: list) -> list:
    """Pipeline steps with their resource ids blanked: what a copy keeps the same."""
    return [{key: ("…" if key in ID_KEYS else value) for key, value in s.items()} for s in steps]


def connection_to(server: HTTPServer, name: str) -> Connection:
    return Connection.objects.create(
        name=name,
        base_uri=server.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )


@pytest.fixture
def second_api(local_api, httpserver) -> Connection:
    return connection_to(httpserver, "Second API")


@pytest.fixture
def eu_application(db) -> Application:
    return Application.objects.create(name="Usage Stats EU")


@pytest.fixture
def usage_flow(application, local_api, second_api) -> Flow:
    """Seed 002's orchestrated shape over two connections: a generator, a lookup, a
    script and an import."""
    trialers = Export.objects.create(name="Trialers", connection=local_api, relative_uri="/t")
    stats = Export.objects.create(
        name="Stats", connection=second_api, relative_uri="/stats/{{record.id}}"
    )
    shape = Script.objects.create(name="Shape", content=PASS_THROUGH)
    post = Import.objects.create(name="Post stats", connection=local_api, relative_uri="/s")
    return Flow.objects.create(
        application=application,
        name="Update Usage Stats for all Trialers",
        schedule="? 0 2 ? * *",
        timezone="America/Los_Angeles",
        page_generators=[{"_exportId": str(trialers.pk)}],
        page_processors=[
            {
                "type": "export",
                "_exportId": str(stats.pk),
                "responseMapping": {
                    "lists": [],
                    "fields": [{"extract": "data", "generate": "numFlows"}],
                },
            },
            {"type": "script", "_scriptId": str(shape.pk), "function": "main"},
            {"type": "import", "_importId": str(post.pk), "proceedOnFailure": True},
        ],
        variables={"greeting": "Hello"},
    )


@pytest.fixture
def targets(httpserver, local_api) -> tuple[Connection, Connection]:
    return connection_to(httpserver, "EU API"), connection_to(httpserver, "EU second")


# --- clone ---------------------------------------------------------------------------------


def test_clone_copies_the_exports_imports_and_scripts_onto_the_mapped_connections(
    manager, usage_flow, local_api, second_api, targets, eu_application
):
    eu_api, eu_second = targets
    original = manager.get(f"/api/v1/flows/{usage_flow.pk}").json()
    response = manager.post(
        f"/api/v1/flows/{usage_flow.pk}/clone",
        {
            "connectionMap": {str(local_api.pk): str(eu_api.pk), str(second_api.pk): eu_second.pk},
            "name": "Usage stats (EU)",
            "_integrationId": str(eu_application.pk),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    clone = response.json()
    assert clone["_id"] != original["_id"]
    assert (clone["name"], clone["_integrationId"], clone["disabled"]) == (
        "Usage stats (EU)",
        str(eu_application.pk),
        True,
    )
    assert without_ids(clone["pageProcessors"]) == without_ids(original["pageProcessors"])
    assert (clone["schedule"], clone["variables"]) == (original["schedule"], original["variables"])

    [generator] = clone["pageGenerators"]
    lookup, script, post = clone["pageProcessors"]
    new_trialers = Export.objects.get(pk=generator["_exportId"])
    new_stats = Export.objects.get(pk=lookup["_exportId"])
    new_post = Import.objects.get(pk=post["_importId"])
    new_shape = Script.objects.get(pk=script["_scriptId"])
    old_generator = original["pageGenerators"][0]
    old_lookup, old_script, old_post = original["pageProcessors"]
    assert generator["_exportId"] != old_generator["_exportId"]
    assert lookup["_exportId"] != old_lookup["_exportId"]
    assert script["_scriptId"] != old_script["_scriptId"]
    assert post["_importId"] != old_post["_importId"]
    assert (new_trialers.connection, new_stats.connection, new_post.connection) == (
        eu_api,
        eu_second,
        eu_api,
    )
    assert {r.application for r in (new_trialers, new_stats, new_post, new_shape)} == {
        eu_application
    }
    assert (new_stats.relative_uri, new_shape.content) == ("/stats/{{record.id}}", PASS_THROUGH)
    # The original is untouched.
    assert manager.get(f"/api/v1/flows/{usage_flow.pk}").json() == original
    assert Export.objects.get(pk=original["pageGenerators"][0]["_exportId"]).connection == local_api


def test_clone_of_a_simple_flow_of_seed_002_works_too(
    manager, application, local_api, targets, stats_export, stats_import
):
    simple = manager.post(
        "/api/v1/flows",
        {
            "name": "Send GitHub Events to Slack",
            "_integrationId": str(application.pk),
            "_exportId": str(stats_export.pk),
            "_importId": str(stats_import.pk),
        },
        format="json",
    ).json()
    eu_api, _ = targets
    response = manager.post(
        f"/api/v1/flows/{simple['_id']}/clone",
        {"connectionMap": {str(local_api.pk): str(eu_api.pk)}},
        format="json",
    )
    assert response.status_code == 201, response.json().get("errors")
    clone = response.json()
    assert clone["name"] == "Send GitHub Events to Slack (copy)"
    assert clone["_exportId"] not in (str(stats_export.pk), None)
    assert Import.objects.get(pk=clone["_importId"]).connection == eu_api


def test_clone_with_an_incomplete_connection_map_is_400_listing_the_unmapped(
    manager, usage_flow, local_api, second_api, targets
):
    eu_api, _ = targets
    flows, exports = Flow.objects.count(), Export.objects.count()
    response = manager.post(
        f"/api/v1/flows/{usage_flow.pk}/clone",
        {"connectionMap": {str(local_api.pk): str(eu_api.pk)}},
        format="json",
    )
    detail = pointers(problem_of(response, 400))["#/connectionMap"]
    assert f"{second_api.pk} (Second API)" in detail
    assert f"{local_api.pk} (" not in detail
    assert (Flow.objects.count(), Export.objects.count()) == (flows, exports)


def test_clone_onto_an_unknown_connection_is_400(manager, usage_flow, local_api, second_api):
    response = manager.post(
        f"/api/v1/flows/{usage_flow.pk}/clone",
        {"connectionMap": {str(local_api.pk): "999999", str(second_api.pk): str(second_api.pk)}},
        format="json",
    )
    errors = pointers(problem_of(response, 400))
    assert "999999 does not exist" in errors[f"#/connectionMap/{local_api.pk}"]
    assert Flow.objects.count() == 1


# --- run -----------------------------------------------------------------------------------

INPUT_SCHEMA = {
    "type": "object",
    "required": ["region"],
    "properties": {"region": {"type": "string"}},
}
TAG_WITH_INPUT = (
    "function main(ctx) {\n"
    "  debug('input ' + JSON.stringify(ctx.trigger.args.input));\n"
    "  return ctx.records.map(function (r) {\n"
    "    return {id: r.id, region: ctx.trigger.args.input.region};\n"
    "  });\n}"
)


@pytest.fixture
def orders_flow(application, local_api, httpserver) -> Flow:
    """Two page generators (orders in a window, returns), a script reading the run's input
    and an import to /sink."""
    httpserver.expect_request("/orders").respond_with_json({"data": [{"id": 1}, {"id": 2}]})
    httpserver.expect_request("/returns").respond_with_json({"data": [{"id": 9}]})
    httpserver.expect_request("/sink", method="POST").respond_with_json({"ok": True})
    orders = Export.objects.create(
        name="Orders",
        connection=local_api,
        relative_uri="/orders?since={{trigger.args.startDate}}",
        resource_path="data",
    )
    returns = Export.objects.create(
        name="Returns", connection=local_api, relative_uri="/returns", resource_path="data"
    )
    tag = Script.objects.create(name="Tag with input", content=TAG_WITH_INPUT)
    sink = Import.objects.create(name="Sink", connection=local_api, relative_uri="/sink")
    return Flow.objects.create(
        application=application,
        name="Orders",
        page_generators=[{"_exportId": str(orders.pk)}, {"_exportId": str(returns.pk)}],
        page_processors=[
            {"type": "script", "_scriptId": str(tag.pk)},
            {"type": "import", "_importId": str(sink.pk)},
        ],
        api={"inputSchema": INPUT_SCHEMA},
    )


def run_url(flow: Flow) -> str:
    return f"/api/v1/flows/{flow.pk}/run"


def test_run_with_valid_input_answers_201_with_the_queued_job(manager, orders_flow):
    response = manager.post(run_url(orders_flow), {"input": {"region": "EU"}}, format="json")
    assert response.status_code == 201, response.json()
    job = response.json()
    assert (job["status"], job["trigger"], job["input"], job["_flowId"]) == (
        "queued",
        "run",
        {"region": "EU"},
        str(orders_flow.pk),
    )
    assert Execution.objects.get(pk=job["_id"]).caller.username == "member"


def test_run_input_that_breaks_the_input_schema_is_400_with_errors(manager, orders_flow):
    wrong_type = problem_of(
        manager.post(run_url(orders_flow), {"input": {"region": 5}}, format="json"), 400
    )
    assert "#/input/region" in pointers(wrong_type)
    missing = problem_of(manager.post(run_url(orders_flow), {}, format="json"), 400)
    assert "region" in pointers(missing)["#/input"]
    assert not Execution.objects.exists()


def test_running_a_disabled_flow_is_409(manager, orders_flow):
    Flow.objects.filter(pk=orders_flow.pk).update(disabled=True)
    response = manager.post(run_url(orders_flow), {"input": {"region": "EU"}}, format="json")
    assert "disabled" in problem_of(response, 409)["detail"]


def test_an_unknown_run_field_is_400_naming_it(manager, orders_flow):
    response = manager.post(
        run_url(orders_flow), {"input": {"region": "EU"}, "colour": "red"}, format="json"
    )
    assert "Unknown field" in pointers(problem_of(response, 400))["#/colour"]


def test_export_ids_that_are_not_page_generators_are_400(manager, orders_flow, local_api):
    stranger = Export.objects.create(name="Stranger", connection=local_api, relative_uri="/x")
    response = manager.post(
        run_url(orders_flow),
        {"input": {"region": "EU"}, "_exportIds": [str(stranger.pk)]},
        format="json",
    )
    assert str(stranger.pk) in pointers(problem_of(response, 400))["#/_exportIds"]


def test_the_same_idempotency_key_twice_answers_the_same_job(manager, orders_flow):
    body = {"input": {"region": "EU"}}
    first = manager.post(run_url(orders_flow), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = manager.post(run_url(orders_flow), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["_id"] == second.json()["_id"]
    assert Execution.objects.filter(flow=orders_flow).count() == 1


def test_a_run_reaches_its_steps_with_its_input_export_ids_and_start_date(
    manager, orders_flow, httpserver
):
    orders_id = orders_flow.page_generators[0]["_exportId"]
    response = manager.post(
        run_url(orders_flow),
        {
            "input": {"region": "EU"},
            "_exportIds": [orders_id],
            "startDate": "2026-11-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()

    job = launch.run_queued(response.json()["_id"])

    assert (job.status, job.num_success, job.num_error) == ("succeeded", 2, 0), job.error
    paths = [request.path for request, _ in httpserver.log]
    assert "/returns" not in paths  # _exportIds ran only the orders generator
    [orders] = [request for request, _ in httpserver.log if request.path == "/orders"]
    assert orders.args["since"] == "2026-11-01T00:00:00Z"
    sent = [r.get_json() for r, _ in httpserver.log if r.path == "/sink"]
    assert sent == [{"id": 1, "region": "EU"}, {"id": 2, "region": "EU"}]
    script_step = job.steps.get(path="pageProcessors[0]")
    assert 'input {"region":"EU"}' in script_step.debug_lines


# --- replaceConnection ---------------------------------------------------------------------


@pytest.fixture
def server_b():
    server = HTTPServer(host="localhost", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def serve_pages(server: HTTPServer, tag: str, first_page=None) -> None:
    """/pages?page=N: one record per page, three pages; /lookup/<id> answers the tag."""

    def pages(request):
        number = int(request.args.get("page", "1"))
        if number == 1 and first_page is not None:
            first_page()
        body = [{"id": number}] if number <= 2 else []
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request("/pages").respond_with_handler(pages)
    for record_id in (1, 2):
        server.expect_request(f"/lookup/{record_id}").respond_with_json({"server": tag})


def run_in_thread(execution_id, results: list) -> threading.Thread:
    def target():
        try:
            results.append(launch.run_queued(execution_id))
        finally:
            db_connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_replace_connection_during_a_run_leaves_the_run_on_the_old_connection(
    manager, application, local_api, httpserver, server_b
):
    reached, release = threading.Event(), threading.Event()

    def hold():
        reached.set()
        release.wait(30)

    serve_pages(httpserver, "A", first_page=hold)
    serve_pages(server_b, "B")
    api_b = connection_to(server_b, "Server B")
    pages = Export.objects.create(
        name="Pages",
        connection=local_api,
        relative_uri="/pages",
        paging="page",
        page_size=1,
    )
    lookup = Export.objects.create(
        name="Lookup", connection=local_api, relative_uri="/lookup/{{record.id}}"
    )
    flow = Flow.objects.create(
        application=application,
        name="Paged",
        page_generators=[{"_exportId": str(pages.pk)}],
        page_processors=[
            {
                "type": "export",
                "_exportId": str(lookup.pk),
                "responseMapping": {
                    "lists": [],
                    "fields": [{"extract": "data[0].server", "generate": "server"}],
                },
            }
        ],
    )
    running = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN)
    results: list = []
    thread = run_in_thread(running.pk, results)
    try:
        assert reached.wait(15), "the run never called server A"
        assert Execution.objects.get(pk=running.pk).status == "running"
        response = manager.put(
            f"/api/v1/flows/{flow.pk}/replaceConnection",
            {"_connectionId": str(local_api.pk), "_newConnectionId": str(api_b.pk)},
            format="json",
        )
    finally:
        release.set()
        thread.join(30)
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "_flowId": str(flow.pk),
        "_connectionId": str(local_api.pk),
        "_newConnectionId": str(api_b.pk),
        "exports": sorted([str(pages.pk), str(lookup.pk)], key=int),
        "imports": [],
    }
    [finished] = results
    assert (finished.status, finished.num_success) == ("succeeded", 2), finished.error
    on_a = [(r.path, r.args.get("page")) for r, _ in httpserver.log]
    assert on_a == [
        ("/pages", "1"),
        ("/lookup/1", None),
        ("/pages", "2"),
        ("/lookup/2", None),
        ("/pages", "3"),
    ]
    assert server_b.log == []

    following = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN)
    following = launch.run_queued(following.pk)
    assert following.status == "succeeded", following.error
    assert len(httpserver.log) == 5  # nothing more on A
    assert [r.path for r, _ in server_b.log] == [
        "/pages",
        "/lookup/1",
        "/pages",
        "/lookup/2",
        "/pages",
    ]


def test_replace_connection_of_a_connection_the_flow_does_not_use_is_400(
    manager, usage_flow, targets
):
    eu_api, eu_second = targets
    response = manager.put(
        f"/api/v1/flows/{usage_flow.pk}/replaceConnection",
        {"_connectionId": str(eu_api.pk), "_newConnectionId": str(eu_second.pk)},
        format="json",
    )
    assert "uses no export or import" in pointers(problem_of(response, 400))["#/_connectionId"]


def test_replace_connection_with_an_unknown_connection_is_400(manager, usage_flow, local_api):
    response = manager.put(
        f"/api/v1/flows/{usage_flow.pk}/replaceConnection",
        {"_connectionId": str(local_api.pk), "_newConnectionId": "999999"},
        format="json",
    )
    assert "999999 does not exist" in pointers(problem_of(response, 400))["#/_newConnectionId"]
    first = Export.objects.get(pk=usage_flow.page_generators[0]["_exportId"])
    assert first.connection == local_api


# --- download / template → import ----------------------------------------------------------

TOKEN = "tok-3f9a-very-secret-bearer"


@pytest.fixture
def with_subflow(manager, application, httpserver) -> tuple[Flow, Flow, Connection]:
    """A flow calling a sub-flow; its connection has a bearer token set through the API."""
    created = manager.post(
        "/api/v1/connections",
        {
            "name": "CRM",
            "type": "http",
            "http": {
                "baseURI": httpserver.url_for("/").rstrip("/"),
                "auth": {"type": "bearer", "token": TOKEN},
                "allowedPrivateHosts": ["localhost", "127.0.0.1"],
            },
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    crm = Connection.objects.get(pk=created.json()["_id"])
    leads = Export.objects.create(name="Leads", connection=crm, relative_uri="/leads")
    post = Import.objects.create(name="Post lead", connection=crm, relative_uri="/leads")
    enrich = Script.objects.create(name="Enrich", content=PASS_THROUGH)
    score = Script.objects.create(name="Score", content=PASS_THROUGH)
    child = Flow.objects.create(
        application=application,
        name="Score lead",
        page_processors=[{"type": "script", "_scriptId": str(score.pk)}],
        variables={"threshold": 3},
    )
    parent = Flow.objects.create(
        application=application,
        name="Sync leads",
        description="nightly",
        schedule="0 2 * * *",
        page_generators=[{"_exportId": str(leads.pk)}],
        page_processors=[
            {"type": "script", "_scriptId": str(enrich.pk), "function": "main"},
            {
                "type": "flow",
                "_flowId": str(child.pk),
                "responseMapping": {"lists": [], "fields": [{"extract": "data", "generate": "s"}]},
            },
            {"type": "import", "_importId": str(post.pk), "proceedOnFailure": True},
        ],
        variables={"status": "open"},
    )
    return parent, child, crm


def test_download_is_a_bundle_without_secrets_and_template_is_the_same(manager, with_subflow):
    parent, child, crm = with_subflow
    assert crm.secrets() == {"token": TOKEN}
    response = manager.get(f"/api/v1/flows/{parent.pk}/download")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="Sync-leads.json"'
    assert TOKEN not in response.content.decode()
    bundle = response.json()
    assert bundle["_flowId"] == str(parent.pk)
    assert {f["_id"] for f in bundle["flows"]} == {str(parent.pk), str(child.pk)}
    assert [e["name"] for e in bundle["exports"]] == ["Leads"]
    assert [i["name"] for i in bundle["imports"]] == ["Post lead"]
    assert sorted(s["name"] for s in bundle["scripts"]) == ["Enrich", "Score"]
    [stub] = bundle["connections"]
    assert (stub["_id"], stub["name"], stub["http"]["auth"]) == (
        str(crm.pk),
        "CRM",
        {"type": "bearer"},
    )
    template = manager.get(f"/api/v1/flows/{parent.pk}/template")
    assert template.status_code == 200
    assert template.json() == bundle
    as_printed = manager.post(f"/api/v1/flows/{parent.pk}/template")  # Celigo's docs: POST
    assert as_printed.status_code == 200
    assert as_printed.json() == bundle


def test_a_downloaded_bundle_installs_into_another_integration_with_its_sub_flow(
    manager, with_subflow, eu_application, httpserver
):
    parent, child, crm = with_subflow
    eu_crm = connection_to(httpserver, "EU CRM")
    original = manager.get(f"/api/v1/flows/{parent.pk}").json()
    original_child = manager.get(f"/api/v1/flows/{child.pk}").json()
    bundle = manager.get(f"/api/v1/flows/{parent.pk}/download").json()

    response = manager.post(
        "/api/v1/flows/import",
        {
            "bundle": bundle,
            "connectionMap": {str(crm.pk): str(eu_crm.pk)},
            "_integrationId": str(eu_application.pk),
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    installed = response.json()
    ignored = {"_id", "_integrationId", "disabled", "lastModified", "createdAt"}
    steps = {"pageGenerators", "pageProcessors"}

    def same_apart_from_ids(document):
        return {k: v for k, v in document.items() if k not in ignored | steps}

    assert same_apart_from_ids(installed) == same_apart_from_ids(original)
    assert (installed["_integrationId"], installed["disabled"]) == (str(eu_application.pk), True)
    assert without_ids(installed["pageProcessors"]) == without_ids(original["pageProcessors"])
    [generator] = installed["pageGenerators"]
    script, subflow, post = installed["pageProcessors"]
    new_leads = Export.objects.get(pk=generator["_exportId"])
    new_post = Import.objects.get(pk=post["_importId"])
    new_enrich = Script.objects.get(pk=script["_scriptId"])
    assert generator["_exportId"] != original["pageGenerators"][0]["_exportId"]
    assert (new_leads.name, new_leads.connection, new_leads.application) == (
        "Leads",
        eu_crm,
        eu_application,
    )
    assert (new_post.connection, new_enrich.application) == (eu_crm, eu_application)
    assert new_enrich.pk != int(original["pageProcessors"][0]["_scriptId"])

    assert subflow["_flowId"] != str(child.pk)
    new_child = manager.get(f"/api/v1/flows/{subflow['_flowId']}").json()
    assert new_child["_integrationId"] == str(eu_application.pk)
    assert same_apart_from_ids(new_child) == same_apart_from_ids(original_child)
    new_score = Script.objects.get(pk=new_child["pageProcessors"][0]["_scriptId"])
    assert (new_score.name, new_score.application) == ("Score", eu_application)
    assert Flow.objects.filter(application=eu_application).count() == 2
    assert Flow.objects.filter(application=parent.application).count() == 2


@pytest.mark.parametrize(
    ("bundle", "pointer"),
    [
        ("not a bundle", "#/bundle"),
        ({"version": 99, "flows": []}, "#/bundle/version"),
        ({"version": 1, "_flowId": "1", "flows": "x"}, "#/bundle/flows"),
        ({"version": 1, "_flowId": "5", "flows": [{"_id": "6"}]}, "#/bundle/_flowId"),
    ],
)
def test_a_bad_bundle_is_400(manager, eu_application, bundle, pointer):
    response = manager.post(
        "/api/v1/flows/import",
        {"bundle": bundle, "_integrationId": str(eu_application.pk)},
        format="json",
    )
    assert pointer in pointers(problem_of(response, 400))
    assert not Flow.objects.exists()


# --- dependencies, audit, logs -------------------------------------------------------------


def test_dependencies_show_what_a_flow_uses_and_who_uses_a_sub_flow(
    manager, with_subflow, application
):
    parent, child, crm = with_subflow
    uses = manager.get(f"/api/v1/flows/{parent.pk}/dependencies").json()

    def names(kind, document=uses):
        return sorted(ref["name"] for ref in document["uses"][kind])

    assert uses["uses"]["integrations"] == [{"_id": str(application.pk), "name": application.name}]
    assert uses["uses"]["connections"] == [{"_id": str(crm.pk), "name": "CRM"}]
    assert (names("exports"), names("imports"), names("scripts")) == (
        ["Leads"],
        ["Post lead"],
        ["Enrich"],
    )
    assert uses["uses"]["flows"] == [{"_id": str(child.pk), "name": "Score lead"}]
    assert uses["usedBy"] == {"flows": []}

    used = manager.get(f"/api/v1/flows/{child.pk}/dependencies").json()
    assert used["usedBy"] == {"flows": [{"_id": str(parent.pk), "name": "Sync leads"}]}
    assert names("scripts", used) == ["Score"]
    assert used["uses"]["flows"] == []


def test_audit_shows_who_patched_the_schedule_from_what_to_what(manager, application):
    created = manager.post(
        "/api/v1/flows",
        {"name": "Nightly", "_integrationId": str(application.pk), "schedule": "? 0 2 ? * *"},
        format="json",
    )
    url = f"/api/v1/flows/{created.json()['_id']}"
    assert manager.patch(url, {"schedule": "0 3 * * *"}, format="json").status_code == 200

    response = manager.get(f"{url}/audit")

    assert response.status_code == 200
    newest, first = response.json()
    assert (newest["action"], newest["user"]) == ("changed", "member")
    assert newest["changes"] == [
        {"field": "schedule", "oldValue": "? 0 2 ? * *", "newValue": "0 3 * * *"}
    ]
    assert newest["time"].endswith("Z")
    assert (first["action"], first["user"], first["changes"]) == ("created", "member", [])


def test_logs_list_this_flow_s_jobs_only_newest_first(manager, application):
    mine = Flow.objects.create(application=application, name="mine")
    other = Flow.objects.create(application=application, name="other")

    def job(flow, minutes_ago):
        execution = services.create_execution(flow=flow, trigger="run")
        Execution.objects.filter(pk=execution.pk).update(
            created_at=timezone.now() - timedelta(minutes=minutes_ago)
        )
        return str(execution.pk)

    old, newest, middle = job(mine, 30), job(mine, 1), job(mine, 10)
    job(other, 5)
    response = manager.get(f"/api/v1/flows/{mine.pk}/logs")
    assert response.status_code == 200
    assert [j["_id"] for j in response.json()] == [newest, middle, old]


# --- deleting what a flow uses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("exports", lambda parent, child, crm: parent.page_generators[0]["_exportId"]),
        ("imports", lambda parent, child, crm: parent.page_processors[2]["_importId"]),
        ("scripts", lambda parent, child, crm: parent.page_processors[0]["_scriptId"]),
        ("connections", lambda parent, child, crm: crm.pk),
        ("integrations", lambda parent, child, crm: parent.application_id),
        ("flows", lambda parent, child, crm: child.pk),
    ],
)
def test_deleting_a_resource_a_flow_uses_is_409_naming_the_flow(
    manager, with_subflow, kind, resource
):
    parent, child, crm = with_subflow
    response = manager.delete(f"/api/v1/{kind}/{resource(parent, child, crm)}")
    document = problem_of(response, 409)
    assert "Sync leads" in document["detail"]
    assert {"_id": str(parent.pk), "name": "Sync leads"} in document["flows"]
    assert manager.get(f"/api/v1/{kind}/{resource(parent, child, crm)}").status_code == 200


# --- privileges ----------------------------------------------------------------------------


@pytest.fixture
def member_client(key_client, member) -> APIClient:
    """A key of an account with use_api_key and run_flows, without manage_flows."""
    return key_client(member)


def flow_writes(flow: Flow, connection: Connection) -> list[tuple[str, str, object]]:
    url = f"/api/v1/flows/{flow.pk}"
    swap = {"_connectionId": str(connection.pk), "_newConnectionId": str(connection.pk)}
    return [
        ("post", "/api/v1/flows", {"name": "x", "_integrationId": str(flow.application_id)}),
        ("put", url, {"name": "x", "_integrationId": str(flow.application_id)}),
        ("patch", url, {"description": "x"}),
        ("delete", url, None),
        ("post", f"{url}/clone", {"connectionMap": {}}),
        ("put", f"{url}/replaceConnection", swap),
        ("post", "/api/v1/flows/import", {"bundle": {}, "_integrationId": "1"}),
        ("post", "/api/v1/exports", {"name": "x"}),
        ("delete", f"/api/v1/connections/{connection.pk}", None),
    ]


def test_changing_flows_and_their_actions_need_manage_flows(member_client, usage_flow, local_api):
    for method, url, body in flow_writes(usage_flow, local_api):
        response = getattr(member_client, method)(url, body, format="json")
        document = problem_of(response, 403)
        assert document["privilege"] == "manage_flows", (method, url)
        assert "manage_flows" in document["detail"]
    assert Flow.objects.get(pk=usage_flow.pk).name == "Update Usage Stats for all Trialers"


def test_reading_flows_needs_manage_flows_or_view_executions(
    key_client, outsider, usage_flow, member_client
):
    reads = [
        "/api/v1/flows",
        f"/api/v1/flows/{usage_flow.pk}",
        f"/api/v1/flows/{usage_flow.pk}/dependencies",
        "/api/v1/exports",
    ]
    for url in reads:
        document = problem_of(member_client.get(url), 403)
        assert document["privileges"] == ["manage_flows", "view_executions"], url
    viewers = Role.objects.create(name="Viewers")
    grant(viewers, Privilege.USE_API_KEY, Privilege.VIEW_EXECUTIONS)
    viewers.members.add(outsider)
    viewer = key_client(outsider)
    for url in [*reads, f"/api/v1/flows/{usage_flow.pk}/logs"]:
        assert viewer.get(url).status_code == 200, url
    assert viewer.patch(f"/api/v1/flows/{usage_flow.pk}", {}, format="json").status_code == 403


def test_a_viewer_may_read_a_flow_s_audit_and_download_as_well_as_the_flow(
    key_client, outsider, usage_flow
):
    viewers = Role.objects.create(name="Viewers")
    grant(viewers, Privilege.USE_API_KEY, Privilege.VIEW_EXECUTIONS)
    viewers.members.add(outsider)
    viewer = key_client(outsider)
    assert viewer.get(f"/api/v1/flows/{usage_flow.pk}").status_code == 200
    for action in ("audit", "download", "template"):
        response = viewer.get(f"/api/v1/flows/{usage_flow.pk}/{action}")
        assert response.status_code == 200, (action, response.json())


def test_running_a_flow_needs_run_flows(key_client, outsider, usage_flow):
    role = Role.objects.create(name="Managers")
    grant(role, Privilege.USE_API_KEY, Privilege.MANAGE_FLOWS)
    role.members.add(outsider)
    response = key_client(outsider).post(f"/api/v1/flows/{usage_flow.pk}/run", {}, format="json")
    assert problem_of(response, 403)["privilege"] == "run_flows"


def test_without_a_key_every_flow_endpoint_is_401(api_client, usage_flow):
    url = f"/api/v1/flows/{usage_flow.pk}"
    for method, path in [
        ("get", "/api/v1/flows"),
        ("get", url),
        ("post", f"{url}/run"),
        ("post", f"{url}/clone"),
        ("get", f"{url}/download"),
        ("get", f"{url}/audit"),
        ("delete", url),
    ]:
        response = getattr(api_client, method)(path, {}, format="json")
        assert problem_of(response, 401)["status"] == 401, (method, path)


def test_deleting_a_flow_that_a_surface_operation_runs_is_409_naming_it(manager, application):
    flow = Flow.objects.create(application=application, name="on register")
    lead = RecordType.objects.create(application=application, name="Lead")
    Operation.objects.create(
        application=application, name="Register Lead", record_type=lead, flow=flow
    )
    answer = manager.delete(f"/api/v1/flows/{flow.pk}")
    assert answer.status_code == 409
    assert "Register Lead" in answer.json()["detail"]
    assert Flow.objects.filter(pk=flow.pk).exists()


def test_deleting_a_flow_that_handles_others_errors_is_409_naming_them(manager, application):
    """It answered 204 and unlinked itself: the failures it reported went nowhere (found
    by an outside probe). Named on a flow or on its integration, it is in use."""
    handler = Flow.objects.create(application=application, name="alert")
    Flow.objects.create(application=application, name="sync", error_flow=handler)

    refused = manager.delete(f"/api/v1/flows/{handler.pk}")

    assert refused.status_code == 409, refused.content
    assert "sync" in refused.json()["detail"]
    assert "error handler" in refused.json()["detail"]
    Flow.objects.filter(name="sync").update(error_flow=None)
    application.error_flow = handler
    application.save()
    assert manager.delete(f"/api/v1/flows/{handler.pk}").status_code == 409  # for its app
    application.error_flow = None
    application.save()
    assert manager.delete(f"/api/v1/flows/{handler.pk}").status_code == 204
