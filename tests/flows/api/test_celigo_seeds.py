"""Celigo's flow documents as printed (seeds 002 and 003, copied under tests/fixtures/seeds/),
played over HTTP against a live server with their placeholders replaced by real ids: the
GET answers pasted into POST, the PUT with Celigo's extra fields, the clone body, run,
replaceConnection, a JSON Patch sent as application/json, and the jobs' Celigo statuses."""

import pytest

from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.executions import launch
from apps.flows.models import Application, Connection, Export, Flow, Import
from tests.conftest import grant
from tests.executions.conftest import as_json, call
from tests.seeds import played, printed_bodies

SEED_002 = "002_celigo_flow_api.txt"
SEED_003 = "003_celigo_custom_flows.txt"
READ_ONLY = ("_id", "lastModified", "createdAt")


@pytest.fixture
def key(member, callers_role) -> str:
    """A key that may manage, run and read flows (as Celigo's my_api_token)."""
    grant(callers_role, Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
    return create_api_key(owner=member).plaintext


@pytest.fixture
def crm(httpserver) -> Connection:
    return Connection.objects.create(
        name="CRM",
        base_uri=httpserver.url_for("/crm"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )


@pytest.fixture
def stats(httpserver) -> Connection:
    return Connection.objects.create(
        name="Stats",
        base_uri=httpserver.url_for("/stats"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )


@pytest.fixture
def trialers(crm) -> Export:
    return Export.objects.create(name="Trialers", connection=crm, relative_uri="/trialers")


@pytest.fixture
def post_stats(stats) -> Import:
    return Import.objects.create(name="Post stats", connection=stats, relative_uri="/usage")


@pytest.fixture
def other_flow(application) -> Flow:
    """A flow whose id a pasted document may carry: a POST must not touch it."""
    return Flow.objects.create(application=application, name="Someone else's")


def created(live_server, key: str, body: dict) -> dict:
    answer = call(live_server, "POST", "/api/v1/flows", key=key, body=body)
    assert answer.status == 201, answer.data
    return as_json(answer)


def test_the_seeds_print_the_bodies_these_tests_play():
    assert len(printed_bodies(SEED_002)) == 2
    bodies = printed_bodies(SEED_003)
    assert [body.split('"name":')[1].split(",")[0].strip() for body in bodies[:3]] == [
        '"Send GitHub Events to Slack"',
        '"Update Usage Stats for all Trialers"',
        '"Send list of all integrations"',
    ]
    assert '"sandbox": false' in bodies[3]


# --- Seed 002: the GET answers, pasted into POST ------------------------------------------


def test_seed_002_simple_flow_as_printed_is_created_with_its_own_id(
    live_server, key, application, trialers, post_stats, other_flow
):
    simple, _ = printed_bodies(SEED_002)
    body = played(
        simple,
        _integrationId=application.pk,
        _exportId=trialers.pk,
        _importId=post_stats.pk,
    )
    assert body["_id"] == "123ab456c789de1011fg12h13i"  # pasted as printed: ignored

    document = created(live_server, key, body)

    assert document["_id"] not in (body["_id"], str(other_flow.pk))
    assert {k: document[k] for k in body if k not in READ_ONLY} == {
        k: v for k, v in body.items() if k not in READ_ONLY
    }
    assert document["createdAt"] > "2026"
    answer = call(live_server, "GET", f"/api/v1/flows/{document['_id']}", key=key)
    assert set(as_json(answer)) >= set(body)  # the shape Celigo's GET shows
    assert Flow.objects.get(pk=other_flow.pk).name == "Someone else's"


def test_seed_002_orchestrated_flow_as_printed_is_created_unchanged(
    live_server, key, application, trialers, post_stats
):
    _, orchestrated = printed_bodies(SEED_002)
    body = played(
        orchestrated,
        _integrationId=application.pk,
        _exportId=trialers.pk,
        _importId=post_stats.pk,
    )
    document = created(live_server, key, body)
    assert {k: document[k] for k in body if k not in READ_ONLY} == {
        k: v for k, v in body.items() if k not in READ_ONLY
    }
    assert document["schedule"] == "? 0 2 ? * *"
    assert len(document["pageProcessors"]) == 11


# --- Seed 003: the GET answers, the PUT, PATCH, clone, run, replaceConnection ---------------


@pytest.fixture
def seed_flow(live_server, key, application, trialers, post_stats, other_flow) -> dict:
    """Seed 003's simple flow, pasted into POST (its masked _id: another flow's)."""
    simple = printed_bodies(SEED_003)[0]
    body = played(
        simple,
        _id=other_flow.pk,
        _integrationId=application.pk,
        _exportId=trialers.pk,
        _importId=post_stats.pk,
    )
    document = created(live_server, key, body)
    assert document["_id"] != str(other_flow.pk)
    assert document["name"] == "Send GitHub Events to Slack"
    return document


def test_seed_003_orchestrated_flow_as_printed_is_created(
    live_server, key, application, trialers, post_stats, other_flow
):
    orchestrated = printed_bodies(SEED_003)[1]
    body = played(
        orchestrated,
        _id=other_flow.pk,  # the flow's own and its page generators' (kept as step keys)
        _integrationId=application.pk,
        _exportId=trialers.pk,
        _importId=post_stats.pk,
    )
    document = created(live_server, key, body)
    assert document["pageGenerators"] == body["pageGenerators"]
    assert document["pageProcessors"] == body["pageProcessors"]


def test_seed_003_put_as_printed_replaces_the_flow_and_keeps_celigo_s_fields(
    live_server, key, application, seed_flow, trialers, post_stats, other_flow
):
    put = printed_bodies(SEED_003)[2]
    url = f"/api/v1/flows/{seed_flow['_id']}"
    body = played(
        put,
        _id=seed_flow["_id"],
        _integrationId=application.pk,
        _exportId=trialers.pk,
        _importId=post_stats.pk,
        _templateId="602c7eb8",  # a Celigo template: opaque to Flowsite
        _sourceId=other_flow.pk,
    )

    answer = call(live_server, "PUT", url, key=key, body=body)

    assert answer.status == 200, answer.data
    document = as_json(answer)
    assert {k: document[k] for k in body if k not in READ_ONLY} == {
        k: v for k, v in body.items() if k not in READ_ONLY
    }
    assert (document["free"], document["autoResolveMatchingTraceKeys"]) == (False, True)
    assert document["lastModified"] != body["lastModified"]
    assert as_json(call(live_server, "GET", url, key=key)) == document


def test_seed_003_put_with_another_flow_s_id_is_400_naming_both(
    live_server, key, application, seed_flow, trialers, post_stats, other_flow
):
    put = printed_bodies(SEED_003)[2]
    body = played(
        put,
        _id=other_flow.pk,
        _integrationId=application.pk,
        _exportId=trialers.pk,
        _importId=post_stats.pk,
        _templateId="602c7eb8",
        _sourceId=other_flow.pk,
    )
    answer = call(live_server, "PUT", f"/api/v1/flows/{seed_flow['_id']}", key=key, body=body)
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    [error] = as_json(answer)["errors"]
    assert error["pointer"] == "#/_id"
    assert f'"{other_flow.pk}"' in error["detail"]
    assert f'"{seed_flow["_id"]}"' in error["detail"]


def test_a_json_patch_sent_as_application_json_patches_the_flow(live_server, key, seed_flow):
    url = f"/api/v1/flows/{seed_flow['_id']}"
    patch = [
        {"op": "test", "path": "/name", "value": "Send GitHub Events to Slack"},
        {"op": "replace", "path": "/disabled", "value": True},
    ]
    answer = call(live_server, "PATCH", url, key=key, body=patch)
    assert (answer.status, answer.data) == (204, b"")
    assert as_json(call(live_server, "GET", url, key=key))["disabled"] is True

    failed = call(
        live_server, "PATCH", url, key=key, body=[{"op": "test", "path": "/name", "value": "X"}]
    )
    assert failed.status == 400
    assert failed.headers["Content-Type"] == "application/problem+json"
    assert as_json(failed)["detail"] == (
        "The JSON Patch was not applied (nothing changed): operation 0: test failed at /name: "
        'expected "X", the flow has "Send GitHub Events to Slack".'
    )


@pytest.fixture
def eu(db) -> Application:
    return Application.objects.create(name="EU")


def test_seed_003_clone_body_as_printed_clones_into_the_integration_and_grouping(
    live_server, key, seed_flow, crm, stats, eu, httpserver
):
    crm_eu = Connection.objects.create(name="CRM EU", base_uri=httpserver.url_for("/crm-eu"))
    stats_eu = Connection.objects.create(name="Stats EU", base_uri=httpserver.url_for("/s-eu"))
    clone = printed_bodies(SEED_003)[3]
    body = played(
        clone,
        text={
            '"<existingConnectionId #1>"': f'"{crm.pk}"',
            '"<newConnectionId #1>"': f'"{crm_eu.pk}"',
            '"<existingConnectionId #2>"': f'"{stats.pk}"',
            '"<newConnectionId #2>"': f'"{stats_eu.pk}"',
            ", ……": "",  # the seed's "and so on": this flow uses two connections
            "<Name Flow Here>": "Send GitHub Events to Slack (EU)",
        },
        _integrationId=eu.pk,
        _flowGroupingId={"<flow grouping id where the cloned flow should go - optional>": "60b2"},
    )
    assert body["sandbox"] is False

    answer = call(
        live_server, "POST", f"/api/v1/flows/{seed_flow['_id']}/clone", key=key, body=body
    )

    assert answer.status == 201, answer.data
    copy = as_json(answer)
    assert (copy["name"], copy["_integrationId"], copy["disabled"]) == (
        "Send GitHub Events to Slack (EU)",
        str(eu.pk),
        True,
    )
    assert (copy["_sourceId"], copy["_flowGroupingId"]) == (seed_flow["_id"], "60b2")
    assert Export.objects.get(pk=copy["_exportId"]).connection == crm_eu
    assert Import.objects.get(pk=copy["_importId"]).connection == stats_eu

    sandbox = call(
        live_server,
        "POST",
        f"/api/v1/flows/{seed_flow['_id']}/clone",
        key=key,
        body={**body, "sandbox": True},
    )
    assert sandbox.status == 400
    assert "no sandbox environment" in as_json(sandbox)["errors"][0]["detail"]


def test_seed_003_replace_connection_then_the_audit_shows_it(
    live_server, key, seed_flow, crm, httpserver, trialers
):
    crm_v2 = Connection.objects.create(name="CRM v2", base_uri=httpserver.url_for("/crm-v2"))
    url = f"/api/v1/flows/{seed_flow['_id']}"
    swap = {"_connectionId": str(crm.pk), "_newConnectionId": str(crm_v2.pk)}

    answer = call(live_server, "PUT", f"{url}/replaceConnection", key=key, body=swap)

    assert answer.status == 200, answer.data
    assert as_json(answer)["exports"] == [str(trialers.pk)]
    newest = as_json(call(live_server, "GET", f"{url}/audit", key=key))[0]
    assert (newest["action"], newest["user"]) == ("changed", "member")
    assert newest["changes"] == [
        {"field": "_connectionId", "oldValue": str(crm.pk), "newValue": str(crm_v2.pk)}
    ]
    assert newest["reason"].startswith(f"replaceConnection: connection {crm.pk} → {crm_v2.pk}")


def test_seed_003_run_then_jobs_filter_by_celigo_s_statuses(
    live_server, key, seed_flow, httpserver
):
    httpserver.expect_request("/crm/trialers").respond_with_json([{"id": 1}, {"id": 2}])
    httpserver.expect_request("/stats/usage", method="POST").respond_with_json({"ok": True})
    run_url = f"/api/v1/flows/{seed_flow['_id']}/run"
    first = call(live_server, "POST", run_url, key=key)
    assert first.status == 201, first.data
    done = launch.run_queued(as_json(first)["_id"])
    assert done.status == "succeeded", done.error
    second = as_json(call(live_server, "POST", run_url, key=key))
    cancel = call(live_server, "POST", f"/api/v1/jobs/{second['_id']}/cancel", key=key)
    assert cancel.status == 200, cancel.data

    def jobs(status: str) -> list[tuple[str, str]]:
        answer = call(live_server, "GET", f"/api/v1/jobs?status={status}", key=key)
        assert answer.status == 200, answer.data
        return [(job["_id"], job["status"]) for job in as_json(answer)]

    assert jobs("completed") == jobs("succeeded") == [(str(done.pk), "succeeded")]
    assert jobs("canceled") == jobs("cancelled") == [(second["_id"], "cancelled")]
    refused = call(live_server, "GET", "/api/v1/jobs?status=complete", key=key)
    assert refused.status == 400
    assert as_json(refused)["errors"][0]["pointer"] == "#/status"
