"""Celigo's documents as its users paste them (DESIGN §8): read-only fields, the _id of a
PUT, JSON Patch arrays under application/json and Patch refusals in JSON Patch's words.
The seeds' own bodies are played against a live server in test_celigo_seeds.py."""

import json

import pytest

from apps.flows import services
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


# --- Celigo's extra flow fields -------------------------------------------------------------

EXTRAS = {
    "free": False,
    "_templateId": "602c0000000000007eb8",
    "_sourceId": "6030000000000083d",
    "autoResolveMatchingTraceKeys": True,
    "runPageGeneratorsInParallel": True,
    "aliases": [{"alias": "crm", "_connectionId": "5f1", "description": "The CRM"}],
    "_flowGroupingId": "60a000000000000001",
}


def test_celigo_s_extra_flow_fields_are_kept_as_given_and_returned(manager, application):
    sent = {"name": "Nightly", "_integrationId": str(application.pk), **EXTRAS}
    created = manager.post(f"{API}/flows", sent, format="json")
    assert created.status_code == 201, created.content
    url = f"{API}/flows/{created.json()['_id']}"
    got = manager.get(url).json()
    assert {key: got[key] for key in EXTRAS} == EXTRAS

    merged = manager.patch(url, {"free": True, "aliases": []}, format="json")
    assert merged.status_code == 200, merged.content
    assert {key: merged.json()[key] for key in EXTRAS} == {**EXTRAS, "free": True, "aliases": []}

    [changed, _] = manager.get(f"{url}/audit").json()
    assert changed["changes"] == [
        {"field": "aliases", "oldValue": EXTRAS["aliases"], "newValue": []},
        {"field": "free", "oldValue": False, "newValue": True},
    ]


def test_a_flow_without_them_shows_none_and_a_put_that_leaves_them_out_drops_them(
    manager, application
):
    sent = {"name": "Nightly", "_integrationId": str(application.pk)}
    url = manager.post(f"{API}/flows", {**sent, **EXTRAS}, format="json")["Location"]
    replaced = manager.put(url, sent, format="json")
    assert replaced.status_code == 200, replaced.content
    assert not set(EXTRAS) & set(replaced.json())


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("free", "no", "Expected a boolean."),
        ("autoResolveMatchingTraceKeys", 1, "Expected a boolean."),
        ("runPageGeneratorsInParallel", None, "Expected a boolean."),
        ("aliases", {"alias": "crm"}, "Expected an array."),
        ("_templateId", ["602c"], "Expected an id (string or integer) or null."),
    ],
)
def test_an_extra_field_of_the_wrong_type_is_400_naming_it(
    manager, application, field, value, expected
):
    sent = {"name": "Nightly", "_integrationId": str(application.pk), field: value}
    problem = assert_problem(manager.post(f"{API}/flows", sent, format="json"), 400)
    assert problem["errors"] == [{"pointer": f"#/{field}", "detail": expected}]


@pytest.mark.parametrize("field", ["freee", "sandbox", "_connectionId", "templateId"])
def test_any_other_unknown_flow_field_is_still_400_naming_it(manager, application, field):
    sent = {"name": "Nightly", "_integrationId": str(application.pk), field: True}
    problem = assert_problem(manager.post(f"{API}/flows", sent, format="json"), 400)
    [error] = problem["errors"]
    assert error["pointer"] == f"#/{field}"
    assert error["detail"].startswith("Unknown field. The fields here are: ")
    assert "autoResolveMatchingTraceKeys" in error["detail"]


def test_other_resources_do_not_take_the_flow_s_extra_fields(manager, crm):
    sent = {"name": "Leads", "_connectionId": str(crm.pk), "free": False}
    assert (
        assert_problem(manager.post(f"{API}/exports", sent, format="json"), 400)["errors"][0][
            "pointer"
        ]
        == "#/free"
    )


# --- Clone: sandbox and _flowGroupingId -----------------------------------------------------


@pytest.fixture
def source(application, crm) -> Flow:
    leads = Export.objects.create(name="Leads", connection=crm, relative_uri="/leads")
    return Flow.objects.create(
        application=application,
        name="Sync",
        page_generators=[{"_exportId": str(leads.pk)}],
        celigo_fields={"_templateId": "602c", "_flowGroupingId": "60a1"},
    )


def test_a_clone_knows_its_source_and_goes_to_the_flow_grouping_asked_for(manager, source, crm):
    body = {"connectionMap": {str(crm.pk): str(crm.pk)}, "sandbox": False, "name": "Sync 2"}
    clone = manager.post(
        f"{API}/flows/{source.pk}/clone", {**body, "_flowGroupingId": "60b2"}, format="json"
    )
    assert clone.status_code == 201, clone.content
    assert (clone.json()["_sourceId"], clone.json()["_flowGroupingId"]) == (str(source.pk), "60b2")
    assert clone.json()["_templateId"] == "602c"  # the other kept fields are copied

    kept = manager.post(f"{API}/flows/{source.pk}/clone", body, format="json").json()
    assert (kept["_sourceId"], kept["_flowGroupingId"]) == (str(source.pk), "60a1")


def test_the_admin_s_clone_knows_its_source_too(manager, source, owner):
    copy = services.clone_flow(flow=source, user=owner)
    document = manager.get(f"{API}/flows/{copy.pk}").json()
    assert (document["_sourceId"], document["_templateId"]) == (str(source.pk), "602c")


def test_a_clone_into_a_sandbox_is_400_saying_there_is_none(manager, source, crm):
    body = {"connectionMap": {str(crm.pk): str(crm.pk)}, "sandbox": True}
    problem = assert_problem(
        manager.post(f"{API}/flows/{source.pk}/clone", body, format="json"), 400
    )
    [error] = problem["errors"]
    assert error["pointer"] == "#/sandbox"
    assert "no sandbox environment" in error["detail"]
    assert Flow.objects.count() == 1


def test_an_unknown_clone_field_is_still_400_naming_it(manager, source, crm):
    body = {"connectionMap": {str(crm.pk): str(crm.pk)}, "free": True}
    problem = assert_problem(
        manager.post(f"{API}/flows/{source.pk}/clone", body, format="json"), 400
    )
    assert [e["pointer"] for e in problem["errors"]] == ["#/free"]
    assert "sandbox" in problem["errors"][0]["detail"]


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


@pytest.mark.parametrize("sandbox", [0, "no", "false"])
def test_a_clone_whose_sandbox_is_not_a_boolean_is_400(manager, source, crm, sandbox):
    """The review: DRF's BooleanField took 0 and "no" where the schema says boolean."""
    body = {"connectionMap": {str(crm.pk): str(crm.pk)}, "sandbox": sandbox}
    problem = assert_problem(
        manager.post(f"{API}/flows/{source.pk}/clone", body, format="json"), 400
    )
    assert [e["pointer"] for e in problem["errors"]] == ["#/sandbox"]
    assert Flow.objects.count() == 1
