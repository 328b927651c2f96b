"""Templates and their instances in the management API (Axway's formulas and formula
instances, seed 000): POST …/instances, GET …/instances, POST …/updateFromTemplate, and the
read-only `_templateFlowId` and `connectionMap` of the flow document."""

import pytest

from apps.flows.models import Connection, Flow, Script
from tests.flows.api.test_flow_actions import problem_of
from tests.flows.conftest import PREPARE


def create(client, template: Flow, **body):
    return client.post(f"/api/v1/flows/{template.pk}/instances", body, format="json")


def test_an_instance_is_a_new_flow_linked_to_its_template_with_its_own_values(
    manager, template, crm, crm_eu
):
    response = create(
        manager,
        template,
        name="Simple FaaR instance",
        variables={"region": "eu"},
        connectionMap={str(crm.pk): str(crm_eu.pk)},
    )

    assert response.status_code == 201, response.content
    document = response.json()
    assert document["name"] == "Simple FaaR instance"
    assert document["_templateFlowId"] == str(template.pk)
    assert document["isTemplate"] is False
    assert document["disabled"] is False
    assert document["variables"] == {"greeting": "Hello", "region": "eu"}
    assert document["connectionMap"] == {str(crm.pk): str(crm_eu.pk)}
    assert document["api"] == template.api  # enabled, on the template's method and path
    assert document["pageProcessors"] == template.page_processors
    assert document["_integrationId"] == str(template.application_id)
    instance = Flow.objects.get(pk=document["_id"])
    assert instance.template_flow == template
    assert (instance.api_enabled, instance.api_method, instance.api_path) == (
        True,
        "GET",
        "/greeting",
    )


def test_several_instances_share_the_template_path_and_are_listed(manager, template):
    first = create(manager, template, name="Acme").json()
    second = create(manager, template, name="Globex").json()

    listed = manager.get(f"/api/v1/flows/{template.pk}/instances")

    assert listed.status_code == 200
    assert [(d["_id"], d["name"]) for d in listed.json()] == [
        (first["_id"], "Acme"),
        (second["_id"], "Globex"),
    ]
    assert manager.get(f"/api/v1/flows/{template.pk}").json()["isTemplate"] is True


def test_only_a_template_has_instances(manager, template):
    instance = create(manager, template, name="Acme").json()
    plain = Flow.objects.create(application=template.application, name="Plain")

    for flow_id in (plain.pk, instance["_id"]):
        body = problem_of(
            manager.post(f"/api/v1/flows/{flow_id}/instances", {"name": "x"}, format="json"), 409
        )
        assert "is not a template: set isTemplate: true" in body["detail"]


def test_a_connection_map_names_connections_the_template_uses_and_real_ones(
    manager, template, crm, crm_eu
):
    records = Connection.objects.create(name="Tables", type=Connection.Type.RECORDS)
    cases = {
        "999": (str(crm_eu.pk), "The template uses no connection 999. It uses: "),
        str(crm.pk): ("424242", "Connection 424242 does not exist."),
    }
    for old, (new, message) in cases.items():
        body = problem_of(create(manager, template, name="x", connectionMap={old: new}), 400)
        assert body["errors"][0]["pointer"] == f"#/connectionMap/{old}"
        assert message in body["errors"][0]["detail"]
    body = problem_of(
        create(manager, template, name="x", connectionMap={str(crm.pk): str(records.pk)}), 400
    )
    assert "pick one of the same type" in body["errors"][0]["detail"]
    assert not Flow.objects.filter(name="x").exists()


def test_an_instance_name_is_unique_in_the_application(manager, template):
    assert create(manager, template, name="Acme").status_code == 201

    body = problem_of(create(manager, template, name="Acme"), 400)

    assert body["errors"][0]["pointer"].startswith("#")
    assert Flow.objects.filter(name="Acme").count() == 1
    body = problem_of(create(manager, template, name="Acme", surprise=1), 400)
    assert "Unknown field" in body["errors"][0]["detail"]
    problem_of(create(manager, template), 400)  # a name is required


def test_update_from_template_takes_its_steps_and_keeps_the_instance_values(
    manager, template, crm, crm_eu
):
    instance_id = create(
        manager,
        template,
        name="Acme",
        variables={"region": "eu"},
        connectionMap={str(crm.pk): str(crm_eu.pk)},
    ).json()["_id"]
    Flow.objects.filter(pk=instance_id).update(
        api={**template.api, "allowAnonymous": True},
        disabled=True,
        schedule="0 6 * * *",
        timezone="Europe/Berlin",
    )
    newer = Script.objects.create(name="prepareResponse v2", content=PREPARE)
    template.page_processors = [{"type": "script", "_scriptId": str(newer.pk)}]
    template.variables = {"greeting": "Hi", "region": "us", "currency": "USD"}
    template.description = "v2"
    template.schedule, template.timezone = "0 2 * * *", "UTC"
    template.save()

    response = manager.post(f"/api/v1/flows/{instance_id}/updateFromTemplate")

    assert response.status_code == 200, response.content
    document = response.json()
    assert document["pageProcessors"] == template.page_processors
    assert document["description"] == "v2"
    assert document["name"] == "Acme"
    assert document["disabled"] is True
    # Its own values stay; the template's new variable is added.
    assert document["variables"] == {"greeting": "Hello", "region": "eu", "currency": "USD"}
    assert document["connectionMap"] == {str(crm.pk): str(crm_eu.pk)}
    assert document["api"]["allowAnonymous"] is True
    # When it runs is its own too (an outside probe: the template's schedule replaced it).
    assert (document["schedule"], document["timezone"]) == ("0 6 * * *", "Europe/Berlin")
    assert document["_templateFlowId"] == str(template.pk)


def test_update_from_template_is_for_instances(manager, template):
    body = problem_of(manager.post(f"/api/v1/flows/{template.pk}/updateFromTemplate"), 409)

    assert "is not an instance of a template" in body["detail"]


def test_template_link_and_connection_map_are_read_only(manager, template, crm, crm_eu):
    document = create(
        manager, template, name="Acme", connectionMap={str(crm.pk): str(crm_eu.pk)}
    ).json()
    url = f"/api/v1/flows/{document['_id']}"

    assert manager.put(url, document, format="json").status_code == 200  # sent back as read
    for changed in ({"_templateFlowId": "999"}, {"connectionMap": {str(crm.pk): "999"}}):
        body = problem_of(manager.patch(url, changed, format="json"), 400)
        assert "is read-only" in body["errors"][0]["detail"]
    posted = {"name": "Copy", "_integrationId": str(template.application_id)}
    body = problem_of(
        manager.post("/api/v1/flows", {**posted, "_templateFlowId": str(template.pk)}, "json"),
        400,
    )
    assert body["errors"][0]["pointer"] == "#/_templateFlowId"
    created = manager.post("/api/v1/flows", {**posted, "_templateFlowId": None}, format="json")
    assert created.status_code == 201, created.content


def test_a_template_with_instances_is_kept_until_they_are_deleted(manager, template):
    instance_id = create(manager, template, name="Acme").json()["_id"]

    body = problem_of(manager.delete(f"/api/v1/flows/{template.pk}"), 409)
    assert "is an instance of this template" in body["detail"]
    body = problem_of(
        manager.patch(f"/api/v1/flows/{template.pk}", {"isTemplate": False}, format="json"), 400
    )
    assert "has instances" in body["errors"][0]["detail"]

    assert manager.delete(f"/api/v1/flows/{instance_id}").status_code == 204
    assert manager.delete(f"/api/v1/flows/{template.pk}").status_code == 204


def test_an_instance_cannot_take_another_flows_route(manager, template, application):
    create(manager, template, name="Acme")
    other = {"name": "Other", "_integrationId": str(application.pk)}
    api = {"enabled": True, "method": "GET", "path": "/greeting"}

    body = problem_of(manager.post("/api/v1/flows", {**other, "api": api}, format="json"), 400)

    assert "is already the API of flow" in body["errors"][0]["detail"]


def test_creating_an_instance_needs_manage_flows(reader, template):
    problem_of(create(reader, template, name="Acme"), 403)
    assert not template.instances.exists()


def test_a_connection_an_instance_runs_on_is_kept_until_the_instance_lets_it_go(
    manager, template, crm, crm_eu
):
    instance_id = create(
        manager, template, name="Acme", connectionMap={str(crm.pk): str(crm_eu.pk)}
    ).json()["_id"]

    body = problem_of(manager.delete(f"/api/v1/connections/{crm_eu.pk}"), 409)

    assert "Acme" in body["detail"]
    assert {"_id": instance_id, "name": "Acme"} in body["flows"]
    assert manager.delete(f"/api/v1/flows/{instance_id}").status_code == 204
    assert manager.delete(f"/api/v1/connections/{crm_eu.pk}").status_code == 204


def test_an_instances_dependencies_and_bundle_name_the_connections_it_calls(
    manager, template, crm, crm_eu
):
    """They named the template's: the installed copy of a downloaded instance called
    another server with other credentials (an outside probe)."""
    instance = create(manager, template, name="EU", connectionMap={str(crm.pk): str(crm_eu.pk)})
    url = f"/api/v1/flows/{instance.json()['_id']}"

    dependencies = manager.get(f"{url}/dependencies").json()
    bundle = manager.get(f"{url}/download").json()

    assert [c["_id"] for c in dependencies["uses"]["connections"]] == [str(crm_eu.pk)]
    assert [c["_id"] for c in bundle["connections"]] == [str(crm_eu.pk)]
    assert {e["_connectionId"] for e in bundle["exports"]} == {str(crm_eu.pk)}
    template_bundle = manager.get(f"/api/v1/flows/{template.pk}/download").json()
    assert [c["_id"] for c in template_bundle["connections"]] == [str(crm.pk)]


@pytest.mark.parametrize("body", ["nul", "[]", '"x"', '{"name": 1}'])
def test_update_from_template_refuses_a_body_it_does_not_take(manager, template, body):
    """An outside probe: each of these answered 200."""
    instance_id = create(manager, template, name="Acme").json()["_id"]

    answer = manager.generic(
        "POST",
        f"/api/v1/flows/{instance_id}/updateFromTemplate",
        body,
        content_type="application/json",
    )

    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"] == "application/problem+json"
