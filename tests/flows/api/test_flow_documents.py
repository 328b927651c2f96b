"""The flow document of seed 002: GET, POST, PUT, PATCH and DELETE with Celigo's codes."""

import copy

from apps.flows.models import Flow

SIMPLE_FIELDS = {
    "_id",
    "lastModified",
    "name",
    "disabled",
    "timezone",
    "_exportId",
    "_importId",
    "_integrationId",
    "skipRetries",
    "createdAt",
}


def orchestrated(application, export, record_import) -> dict:
    """Seed 002's orchestrated flow, with this database's ids."""
    lookup = {
        "type": "export",
        "_exportId": str(export.pk),
        "responseMapping": {"lists": [], "fields": [{"extract": "data", "generate": "numFlows"}]},
    }
    return {
        "name": "Update Usage Stats for all Trialers",
        "disabled": False,
        "schedule": "? 0 2 ? * *",
        "timezone": "America/Los_Angeles",
        "_integrationId": str(application.pk),
        "skipRetries": False,
        "pageProcessors": [
            lookup,
            {
                "type": "import",
                "_importId": str(record_import.pk),
                "proceedOnFailure": True,
                "responseMapping": {"lists": [], "fields": []},
            },
            {
                "type": "import",
                "_importId": str(record_import.pk),
                "responseMapping": {"lists": [], "fields": []},
            },
        ],
        "pageGenerators": [
            {"_exportId": str(export.pk), "_id": "599b36"},
            {"_exportId": str(export.pk), "_id": "599b35"},
        ],
    }


def test_a_simple_flow_shows_the_fields_of_seed_002(
    manager, application, stats_export, stats_import
):
    created = manager.post(
        "/api/v1/flows",
        {
            "name": "Send GitHub Events to Slack",
            "timezone": "America/Los_Angeles",
            "_integrationId": str(application.pk),
            "_exportId": str(stats_export.pk),
            "_importId": str(stats_import.pk),
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    document = manager.get(f"/api/v1/flows/{created.json()['_id']}").json()
    assert set(document) >= SIMPLE_FIELDS
    assert document["_exportId"] == str(stats_export.pk)
    assert document["_importId"] == str(stats_import.pk)
    assert document["lastModified"].endswith("Z")


def test_the_orchestrated_flow_round_trips_through_post_get_and_put_unchanged(
    manager, application, stats_export, stats_import
):
    sent = orchestrated(application, stats_export, stats_import)
    created = manager.post("/api/v1/flows", sent, format="json")
    assert created.status_code == 201, created.json()
    url = f"/api/v1/flows/{created.json()['_id']}"
    got = manager.get(url).json()
    assert {key: got[key] for key in sent} == sent
    replaced = manager.put(url, got, format="json")
    assert replaced.status_code == 200, replaced.json()
    again = manager.get(url).json()
    assert {k: v for k, v in again.items() if k != "lastModified"} == {
        k: v for k, v in got.items() if k != "lastModified"
    }


def test_each_flow_endpoint_answers_the_seeds_success_code(
    manager, application, stats_export, stats_import
):
    sent = orchestrated(application, stats_export, stats_import)
    assert manager.get("/api/v1/flows").status_code == 200
    created = manager.post("/api/v1/flows", sent, format="json")
    assert created.status_code == 201
    url = f"/api/v1/flows/{created.json()['_id']}"
    assert manager.get(url).status_code == 200
    assert manager.put(url, {**sent, "name": "Renamed"}, format="json").status_code == 200
    merged = manager.patch(url, {"description": "nightly"}, format="json")
    assert merged.status_code == 200
    assert merged.json()["description"] == "nightly"
    patched = manager.generic(
        "PATCH",
        url,
        '[{"op": "replace", "path": "/name", "value": "Patched"}]',
        content_type="application/json-patch+json",
    )
    assert patched.status_code == 204
    assert Flow.objects.get(pk=created.json()["_id"]).name == "Patched"
    assert manager.delete(url).status_code == 204
    assert manager.get(url).status_code == 404


def test_bad_documents_get_400_naming_the_field(manager, application, stats_export, stats_import):
    sent = orchestrated(application, stats_export, stats_import)
    cases = {
        "color": {**sent, "color": "blue"},
        "disabled": {**sent, "disabled": "no"},
        "schedule": {**sent, "schedule": "not a cron"},
        "timezone": {**sent, "timezone": "Mars/Olympus"},
        "pageProcessors": {
            **sent,
            "pageProcessors": [{"type": "import", "_importId": "999999"}],
        },
    }
    for field, document in cases.items():
        answer = manager.post("/api/v1/flows", document, format="json")
        assert answer.status_code == 400, field
        assert answer["Content-Type"] == "application/problem+json"
        assert any(e["pointer"] == f"#/{field}" for e in answer.json()["errors"]), answer.json()


def test_a_json_patch_of_an_unknown_path_is_400(manager, application):
    flow = Flow.objects.create(application=application, name="f")
    answer = manager.generic(
        "PATCH",
        f"/api/v1/flows/{flow.pk}",
        '[{"op": "replace", "path": "/nope/deeper", "value": 1}]',
        content_type="application/json-patch+json",
    )
    assert answer.status_code == 400
    assert "nope" in answer.json()["detail"]


def test_a_lost_update_is_refused_with_412(manager, application):
    flow = Flow.objects.create(application=application, name="f")
    url = f"/api/v1/flows/{flow.pk}"
    etag = manager.get(url)["ETag"]
    document = copy.deepcopy(manager.get(url).json())
    assert (
        manager.patch(url, {"description": "first"}, format="json", HTTP_IF_MATCH=etag).status_code
        == 200
    )
    stale = manager.put(
        url, {**document, "description": "second"}, format="json", HTTP_IF_MATCH=etag
    )
    assert stale.status_code == 412
    assert Flow.objects.get(pk=flow.pk).description == "first"
