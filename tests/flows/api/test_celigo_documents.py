"""Celigo's documents as its users paste them (DESIGN §8): read-only fields, the _id of a
PUT, JSON Patch arrays under application/json and Patch refusals in JSON Patch's words.
The seeds' own bodies are played against a live server in test_celigo_seeds.py."""

import json

import pytest

from apps.flows.models import Connection, Export, Flow, Import
from tests.management import API, assert_problem, json_patch

PASTED = {"_id": "55e0000000000000000367", "lastModified": "2017-06-19T21:27:09.945Z"}
KINDS = {
    "flows": lambda app, crm: {"name": "Nightly", "_integrationId": str(app.pk)},
    "connections": lambda app, crm: {"name": "CRM 2", "http": {"baseURI": "https://c.example"}},
    "exports": lambda app, crm: {"name": "Leads", "_connectionId": str(crm.pk)},
    "imports": lambda app, crm: {"name": "Post", "_connectionId": str(crm.pk)},
    "scripts": lambda app, crm: {"name": "s", "content": "function main(ctx) { return [] }"},
    "integrations": lambda app, crm: {"name": "Another"},
}


@pytest.fixture
def crm(db) -> Connection:
    return Connection.objects.create(name="CRM", base_uri="https://crm.example.com")


@pytest.fixture
def flow(application) -> Flow:
    return Flow.objects.create(application=application, name="Send GitHub Events to Slack")


def as_json(client, method: str, url: str, body):
    """A body sent as application/json, whatever its shape."""
    return client.generic(method, url, json.dumps(body), content_type="application/json")


# --- Read-only fields --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_post_ignores_the_read_only_fields_of_a_pasted_document(manager, application, crm, kind):
    sent = {**KINDS[kind](application, crm), **PASTED, "createdAt": "2017-06-19T21:27:09.900Z"}
    answer = manager.post(f"{API}/{kind}", sent, format="json")
    assert answer.status_code == 201, answer.content
    document = answer.json()
    assert document["_id"] != PASTED["_id"]
    assert document["lastModified"] != PASTED["lastModified"]
    assert not document["createdAt"].startswith("2017")


@pytest.mark.parametrize("kind", KINDS)
def test_a_put_with_another_resource_s_id_is_400_naming_both(manager, application, crm, kind):
    url = manager.post(f"{API}/{kind}", KINDS[kind](application, crm), format="json")["Location"]
    own = url.rsplit("/", 1)[1]
    sent = {**KINDS[kind](application, crm), "_id": "55e0000000000000000367", "name": "Changed"}
    answer = manager.put(url, sent, format="json")
    problem = assert_problem(answer, 400)
    [error] = problem["errors"]
    assert error["pointer"] == "#/_id"
    assert "55e0000000000000000367" in error["detail"]
    assert f'"{own}"' in error["detail"]
    assert manager.get(url).json()["name"] != "Changed"


def test_a_put_with_its_own_id_ignores_the_other_read_only_fields(manager, flow):
    url = f"{API}/flows/{flow.pk}"
    sent = {
        **manager.get(url).json(),
        "name": "Renamed",
        "lastModified": "2021-12-14T12:39:24.138Z",
        "createdAt": "2021-12-14T12:39:24.021Z",
    }
    answer = manager.put(url, sent, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["name"] == "Renamed"
    assert not answer.json()["createdAt"].startswith("2021")
    again = {"name": "Again", "_id": int(flow.pk), "_integrationId": str(flow.application_id)}
    assert manager.put(url, again, format="json").status_code == 200  # a number is the id too


def test_a_patch_that_changes_the_id_is_400_naming_both(manager, flow):
    url = f"{API}/flows/{flow.pk}"
    answer = json_patch(manager, url, [{"op": "replace", "path": "/_id", "value": "999"}])
    problem = assert_problem(answer, 400)
    assert problem["errors"][0]["pointer"] == "#/_id"
    assert '"999"' in problem["errors"][0]["detail"]
    assert f'"{flow.pk}"' in problem["errors"][0]["detail"]


# --- JSON Patch under application/json ---------------------------------------------------


def test_a_json_patch_array_sent_as_application_json_is_applied(manager, flow):
    url = f"{API}/flows/{flow.pk}"
    answer = as_json(
        manager,
        "PATCH",
        url,
        [
            {"op": "test", "path": "/name", "value": "Send GitHub Events to Slack"},
            {"op": "replace", "path": "/disabled", "value": True},
            {"op": "add", "path": "/variables/channel", "value": "#events"},
        ],
    )
    assert answer.status_code == 204, answer.content
    assert answer["ETag"] == manager.get(url)["ETag"]
    flow.refresh_from_db()
    assert (flow.disabled, flow.variables) == (True, {"channel": "#events"})


def test_an_empty_json_patch_changes_nothing(manager, flow):
    answer = as_json(manager, "PATCH", f"{API}/flows/{flow.pk}", [])
    assert answer.status_code == 204, answer.content


def test_a_merge_patch_object_under_application_json_is_still_a_merge_patch(manager, flow):
    answer = as_json(manager, "PATCH", f"{API}/flows/{flow.pk}", {"description": "nightly"})
    assert (answer.status_code, answer.json()["description"]) == (200, "nightly")


@pytest.mark.parametrize(
    ("operations", "index", "words"),
    [
        (
            [{"op": "test", "path": "/name", "value": "Other"}],
            0,
            'test failed at /name: expected "Other", the flow has "Send GitHub Events to Slack"',
        ),
        (
            [
                {"op": "replace", "path": "/name", "value": "Renamed"},
                {"op": "test", "path": "/disabled", "value": "false"},
            ],
            1,
            'test failed at /disabled: expected "false", the flow has false',
        ),
        (
            [{"op": "replace", "path": "/nope/deeper", "value": 1}],
            0,
            '/nope does not exist: the flow has no member "nope"',
        ),
        (
            [{"op": "remove", "path": "/pageProcessors/3"}],
            0,
            "/pageProcessors/3 does not exist: the flow's /pageProcessors is an array of 0 "
            "items (no items)",
        ),
        (
            [{"op": "add", "path": "/name/first", "value": 1}],
            0,
            "/name/first does not exist: the flow's /name is a string",
        ),
        ([{"op": "replace", "path": "name", "value": "x"}], 0, 'it starts with "/"'),
        ([{"op": "rename", "path": "/name"}], 0, '"op" must be one of add, remove, replace'),
        ([{"path": "/name", "value": "x"}], 0, '"op" must be one of add'),
        ([{"op": "replace", "value": "x"}], 0, 'a "replace" operation needs "path"'),
        ([{"op": "replace", "path": "/name"}], 0, 'a "replace" operation needs "value"'),
        ([{"op": "move", "path": "/description"}], 0, 'a "move" operation needs "from"'),
        (["replace /name"], 0, "an operation is an object such as"),
    ],
)
def test_a_json_patch_that_cannot_apply_says_why_in_json_patch_words(
    manager, flow, operations, index, words
):
    for send in (json_patch, lambda c, u, ops: as_json(c, "PATCH", u, ops)):
        problem = assert_problem(send(manager, f"{API}/flows/{flow.pk}", operations), 400)
        assert problem["type"].endswith("invalid-json-patch")
        assert words in problem["detail"], problem["detail"]
        assert problem["errors"] == [
            {"pointer": f"#/{index}", "detail": problem["errors"][0]["detail"]}
        ]
        assert words in problem["errors"][0]["detail"]
        for python in ("<class", "{'", "Traceback", "Error:"):
            assert python not in problem["detail"]
    flow.refresh_from_db()
    assert flow.name == "Send GitHub Events to Slack"  # nothing applied


def test_a_json_patch_media_type_with_an_object_is_400_showing_an_example(manager, flow):
    answer = json_patch(manager, f"{API}/flows/{flow.pk}", {"op": "replace"})
    problem = assert_problem(answer, 400)
    assert '[{"op": "replace", "path": "/name"' in problem["detail"]


def test_the_patched_document_is_still_checked_as_a_whole(manager, flow):
    answer = as_json(
        manager, "PATCH", f"{API}/flows/{flow.pk}", [{"op": "add", "path": "/colour", "value": 1}]
    )
    problem = assert_problem(answer, 400)
    assert problem["errors"][0]["pointer"] == "#/colour"
    assert "Unknown field" in problem["errors"][0]["detail"]


# --- replaceConnection is audited ----------------------------------------------------------


def test_replace_connection_leaves_an_audit_entry_naming_who_what_and_where(
    manager, application, crm
):
    crm_eu = Connection.objects.create(name="CRM EU", base_uri="https://eu.crm.example.com")
    leads = Export.objects.create(name="Leads", connection=crm, relative_uri="/leads")
    post = Import.objects.create(name="Post", connection=crm, relative_uri="/leads")
    flow = Flow.objects.create(
        application=application,
        name="Sync",
        page_generators=[{"_exportId": str(leads.pk)}],
        page_processors=[{"type": "import", "_importId": str(post.pk)}],
    )
    url = f"{API}/flows/{flow.pk}"
    etag = manager.get(url)["ETag"]
    swap = {"_connectionId": str(crm.pk), "_newConnectionId": str(crm_eu.pk)}
    assert manager.put(f"{url}/replaceConnection", swap, format="json").status_code == 200

    newest, *_ = manager.get(f"{url}/audit").json()
    assert (newest["action"], newest["user"]) == ("changed", "member")
    assert newest["changes"] == [
        {"field": "_connectionId", "oldValue": str(crm.pk), "newValue": str(crm_eu.pk)}
    ]
    assert newest["reason"] == (
        f"replaceConnection: connection {crm.pk} → {crm_eu.pk} "
        f"(exports {leads.pk}; imports {post.pk})"
    )
    assert manager.get(url)["ETag"] != etag  # what the flow uses changed


def test_a_refused_replace_connection_leaves_no_audit_entry(manager, application, crm):
    flow = Flow.objects.create(application=application, name="Nothing to swap")
    other = Connection.objects.create(name="Other", base_uri="https://other.example.com")
    swap = {"_connectionId": str(crm.pk), "_newConnectionId": str(other.pk)}
    url = f"{API}/flows/{flow.pk}"
    assert_problem(manager.put(f"{url}/replaceConnection", swap, format="json"), 400)
    [created] = manager.get(f"{url}/audit").json()
    assert (created["action"], created["reason"]) == ("created", None)
