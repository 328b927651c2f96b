"""Flow tests travel with the flow's and the integration's bundles (recordings redacted),
and a flow's runTestsOnSave guard refuses a save whose tests fail (400) unless ?force=true."""

import copy
import json

import pytest

from apps.flows.models import Application, Connection, Export, Flow
from apps.flowtests import services
from apps.flowtests.models import FlowTest
from tests.flowtests.conftest import TOKEN, run

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def tested(pipeline, owner, httpserver):
    done = run(pipeline, owner)
    assert done.status == "succeeded", done.error
    services.save_as_test(execution=done, name="scores three customers", user=owner)
    httpserver.stop()
    yield pipeline
    httpserver.start()


def test_a_flow_bundle_carries_its_tests_which_install_and_pass_with_the_copy(manager, tested):
    bundle = manager.get(f"/api/v1/flows/{tested.pk}/download").json()
    [test] = bundle["tests"]
    assert test["_flowId"] == str(tested.pk)
    assert test["name"] == "scores three customers"
    assert len(test["recording"]["exchanges"]) == 5
    assert TOKEN not in str(bundle)
    connections = {c["_id"]: c["_id"] for c in bundle["connections"]}
    other = Application.objects.create(name="Elsewhere")
    installed = manager.post(
        "/api/v1/flows/import",
        {"bundle": bundle, "connectionMap": connections, "_integrationId": str(other.pk)},
        format="json",
    )
    assert installed.status_code == 201, installed.json()
    copy_of = Flow.objects.get(pk=installed.json()["_id"])
    [report] = services.run_tests(flow=copy_of)
    assert report["result"] == "passed", report["summary"]


def test_an_integration_bundle_carries_its_tests(manager, tested):
    bundle = manager.get(f"/api/v1/integrations/{tested.application_id}/download").json()
    assert [t["name"] for t in bundle["tests"]] == ["scores three customers"]
    tested.application.name = "Old"
    tested.application.save()
    imported = manager.post("/api/v1/integrations/import", {"bundle": bundle}, format="json")
    assert imported.status_code == 201, imported.json()
    [test] = FlowTest.objects.exclude(flow=tested)
    assert test.flow.application_id == int(imported.json()["integration"]["_id"])
    [report] = services.run_tests(flow=test.flow)
    assert report["result"] == "passed", report["summary"]


def test_a_bad_test_in_a_bundle_is_a_400_naming_it(manager, tested):
    bundle = manager.get(f"/api/v1/flows/{tested.pk}/download").json()
    bundle["tests"][0]["relaxed"] = ["headers"]
    connections = {c["_id"]: c["_id"] for c in bundle["connections"]}
    answer = manager.post(
        "/api/v1/flows/import",
        {
            "bundle": bundle,
            "connectionMap": connections,
            "_integrationId": str(tested.application_id),
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == "#/tests[0]/relaxed"


def test_the_guard_refuses_a_save_whose_tests_fail_unless_forced(manager, tested):
    url = f"/api/v1/flows/{tested.pk}"
    assert manager.get(url).json()["runTestsOnSave"] is False
    on = manager.patch(url, {"runTestsOnSave": True}, format="json")
    assert on.status_code == 200, on.json()
    processors = copy.deepcopy(tested.page_processors)
    processors[0]["responseMapping"]["fields"][0]["generate"] = "credit"
    refused = manager.patch(url, {"pageProcessors": processors}, format="json")
    assert refused.status_code == 400
    assert refused["Content-Type"].startswith(PROBLEM)
    problem = refused.json()
    assert problem["type"].endswith("flow-tests-failed")
    assert "'scores three customers'" in problem["detail"]
    assert "?force=true" in problem["detail"]
    [failing] = problem["tests"]
    assert failing["name"] == "scores three customers"
    assert failing["summary"]
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "limit"
    forced = manager.patch(f"{url}?force=true", {"pageProcessors": processors}, format="json")
    assert forced.status_code == 200, forced.json()
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "credit"


def test_the_guard_refuses_an_admin_save_whose_tests_fail_unless_ticked(admin_client, tested):
    Flow.objects.filter(pk=tested.pk).update(run_tests_on_save=True)
    processors = copy.deepcopy(tested.page_processors)
    processors[0]["responseMapping"]["fields"][0]["generate"] = "credit"
    form = {
        "application": tested.application_id,
        "name": tested.name,
        "timezone": "UTC",
        "timeout_ms": 60000,
        "max_concurrency": 0,
        "concurrency_policy": "queue",
        "run_tests_on_save": "on",
        "capture_for_tests": "on",
        "page_generators": json.dumps(tested.page_generators),
        "page_processors": json.dumps(processors),
        "variables": "{}",
        "api": "{}",
    }
    url = f"/admin/flows/flow/{tested.pk}/change/"
    refused = admin_client.post(url, form)
    assert refused.status_code == 200
    assert "Not saved: its tests fail (scores three customers" in refused.content.decode()
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "limit"
    # Unticking the guard in the same save does not skip it (the review).
    unticked = {k: v for k, v in form.items() if k != "run_tests_on_save"}
    assert "Not saved: its tests fail" in admin_client.post(url, unticked).content.decode()

    saved = admin_client.post(url, {**form, "save_despite_failing_tests": "on"})
    assert saved.status_code == 302
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "credit"


def test_a_put_that_leaves_the_guard_out_is_still_guarded(manager, tested):
    """A Celigo-style PUT (no runTestsOnSave) turned the guard off and skipped it at once."""
    Flow.objects.filter(pk=tested.pk).update(run_tests_on_save=True)
    url = f"/api/v1/flows/{tested.pk}"
    document = manager.get(url).json()
    del document["runTestsOnSave"]
    document["pageProcessors"][0]["responseMapping"]["fields"][0]["generate"] = "credit"

    refused = manager.put(url, document, format="json")

    assert refused.status_code == 400, refused.json()
    assert refused.json()["type"].endswith("flow-tests-failed")
    tested.refresh_from_db()
    assert tested.run_tests_on_save is True
    assert manager.put(f"{url}?force=true", document, format="json").status_code == 200


def test_replace_connection_is_guarded_like_any_change_of_the_flow(manager, tested):
    """replaceConnection saved a change that failed the flow's tests, guard or not."""
    Flow.objects.filter(pk=tested.pk).update(run_tests_on_save=True)
    crm = Connection.objects.get(name="CRM")
    elsewhere = Connection(name="CRM v2", base_uri=f"{crm.base_uri}/v2", auth_type="none")
    elsewhere.allowed_private_hosts = crm.allowed_private_hosts
    elsewhere.save()
    url = f"/api/v1/flows/{tested.pk}/replaceConnection"
    body = {"_connectionId": str(crm.pk), "_newConnectionId": str(elsewhere.pk)}

    refused = manager.put(url, body, format="json")

    assert refused.status_code == 400, refused.json()
    assert refused.json()["type"].endswith("flow-tests-failed")
    assert not Export.objects.filter(connection=elsewhere).exists()  # nothing changed
    forced = manager.put(f"{url}?force=true", body, format="json")
    assert forced.status_code == 200, forced.json()
    assert Export.objects.filter(connection=elsewhere).count() == 2


def test_update_from_template_is_guarded_like_any_change_of_the_flow(manager, admin_client, tested):
    """updateFromTemplate copied a template's steps that failed the instance's tests."""
    template = Flow.objects.get(pk=tested.pk)
    template.pk = None
    template.name, template.is_template, template.api = "Scoring template", True, {}
    template.page_processors[0]["responseMapping"]["fields"][0]["generate"] = "credit"
    template.save()
    Flow.objects.filter(pk=tested.pk).update(template_flow=template, run_tests_on_save=True)
    url = f"/api/v1/flows/{tested.pk}/updateFromTemplate"

    refused = manager.post(url)

    assert refused.status_code == 400, refused.json()
    assert refused.json()["type"].endswith("flow-tests-failed")
    assert "'scores three customers'" in refused.json()["detail"]
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "limit"
    page = admin_client.post(
        f"/admin/flows/flow/{tested.pk}/update-from-template/", follow=True
    ).content.decode()
    assert "not updated, its tests fail as updated (scores three customers)" in page
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "limit"
    forced = manager.post(f"{url}?force=true")
    assert forced.status_code == 200, forced.json()
    tested.refresh_from_db()
    assert tested.page_processors[0]["responseMapping"]["fields"][0]["generate"] == "credit"
