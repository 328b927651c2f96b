"""Input a client crafts by hand still gets a 4xx problem, never a 500."""

import base64

import pytest

from apps.flows.models import Connection, Export, Flow


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/flows?cursor=" + base64.b64encode(b"p=abc").decode(),
        "/api/v1/jobs?cursor=" + base64.b64encode(b"p=2024-13-99").decode(),
        "/api/v1/exports?cursor=not-base64!",
    ],
)
def test_a_forged_cursor_is_400(manager, url):
    answer = manager.get(url)
    assert answer.status_code == 400
    assert answer.json()["type"].endswith("invalid-cursor")


def test_text_with_nul_characters_is_refused_where_it_is(manager, application):
    answer = manager.post(
        "/api/v1/flows",
        {"name": "f", "_integrationId": str(application.pk), "variables": {"a": "x\u0000"}},
        format="json",
    )
    assert answer.status_code == 400
    assert [e["pointer"] for e in answer.json()["errors"]] == ["#/variables/a"]
    flow = Flow.objects.create(application=application, name="g")
    run = manager.post(f"/api/v1/flows/{flow.pk}/run", {"input": {"k": "\u0000"}}, format="json")
    assert run.status_code == 400


def test_a_bundle_whose_flow_name_is_not_text_is_400(manager, application):
    bundle = {"version": 1, "_flowId": "1", "flows": [{"_id": "1", "name": ["x"]}]}
    answer = manager.post(
        "/api/v1/flows/import",
        {"bundle": bundle, "_integrationId": str(application.pk)},
        format="json",
    )
    assert answer.status_code == 400
    assert Flow.objects.count() == 0


def test_exports_cannot_move_to_a_connection_of_another_kind(manager, application, local_api):
    tables = Connection.objects.create(name="Tables", type=Connection.Type.RECORDS)
    export = Export.objects.create(name="e", connection=local_api)
    flow = Flow.objects.create(
        application=application, name="f", page_generators=[{"_exportId": str(export.pk)}]
    )
    answer = manager.put(
        f"/api/v1/flows/{flow.pk}/replaceConnection",
        {"_connectionId": str(local_api.pk), "_newConnectionId": str(tables.pk)},
        format="json",
    )
    assert answer.status_code == 400
    assert "kinds" in answer.json()["errors"][0]["detail"]
    export.refresh_from_db()
    assert export.connection == local_api
