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


# --- Issue 11, point 10: odd input in documents is a 400 that says where ----------------


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity"])
def test_a_flow_variable_that_is_not_a_finite_number_is_400_naming_it(
    manager, application, literal
):
    body = f'{{"name": "f", "_integrationId": "{application.pk}", "variables": {{"a": {literal}}}}}'
    answer = manager.post("/api/v1/flows", body, content_type="application/json")
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["type"] == "urn:flowsite:problem:malformed-json"
    assert [e["pointer"] for e in problem["errors"]] == ["#/variables/a"]
    assert not Flow.objects.exists()


def test_a_merge_patch_with_a_number_that_is_not_finite_changes_nothing(manager, application):
    flow = Flow.objects.create(application=application, name="f", variables={"a": 1})
    answer = manager.patch(
        f"/api/v1/flows/{flow.pk}",
        '{"variables": {"a": 1e400}}',
        content_type="application/merge-patch+json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == "#/variables/a"
    flow.refresh_from_db()
    assert flow.variables == {"a": 1}


@pytest.mark.parametrize(
    ("url", "body", "pointer"),
    [
        ("/api/v1/flows", '{"name": "f", "_integrationId": "%s", "variables": {"a": "\\ud800"}}',
         "#/variables/a"),
        ("/api/v1/flows", '{"name": "f\\udc00", "_integrationId": "%s"}', "#/name"),
        ("/api/v1/connections", '{"name": "c\\ud800", "http": {"baseURI": "https://x.example"}}',
         "#/name"),
        ("/api/v1/connections",
         '{"name": "c", "http": {"baseURI": "https://x.example", "headers": {"\\udbff": "v"}}}',
         "#/http/headers/\\udbff"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_in_a_document_is_400_naming_where(
    manager, application, url, body, pointer
):
    body = body.replace("%s", str(application.pk))
    answer = manager.post(url, body, content_type="application/json")
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["type"] == "urn:flowsite:problem:invalid-unicode"
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert not Flow.objects.exists()
    assert not Connection.objects.exists()


# --- What the schemathesis run (tests/core/test_schemathesis.py) found -------------------


@pytest.mark.parametrize("limit", ["null", "abc", "9.5e-247", "-1", "0", "1001", "٣"])
def test_an_unusable_limit_is_a_400_that_says_what_is_usable(manager, application, limit):
    """It quietly meant the default page size (or the largest), as in DRF's pagination: a
    client asking for 5,000 rows or for "abc" was not told."""
    Flow.objects.create(application=application, name="f")

    answer = manager.get("/api/v1/flows", {"limit": limit})

    assert answer.status_code == 400, limit
    problem = answer.json()
    assert problem["type"] == "urn:flowsite:problem:invalid-limit"
    assert "limit must be a whole number from 1 to 1000" in problem["detail"]


def test_a_usable_limit_sizes_the_page(manager, application):
    for name in ("a", "b", "c"):
        Flow.objects.create(application=application, name=name)

    assert len(manager.get("/api/v1/flows?limit=2").json()) == 2
    assert len(manager.get("/api/v1/flows?limit=1000").json()) == 3
    assert len(manager.get("/api/v1/flows?limit=").json()) == 3


def test_an_empty_filter_is_no_filter(manager, application):
    Flow.objects.create(application=application, name="f")
    answer = manager.get("/api/v1/flows?_integrationId=&name=")
    assert answer.status_code == 200
    assert [flow["name"] for flow in answer.json()] == ["f"]


def test_disabled_is_true_or_false_not_ignored(manager, application):
    Flow.objects.create(application=application, name="on")
    Flow.objects.create(application=application, name="off", disabled=True)
    assert [f["name"] for f in manager.get("/api/v1/flows?disabled=true").json()] == ["off"]
    assert [f["name"] for f in manager.get("/api/v1/flows?disabled=0").json()] == ["on"]
    answer = manager.get("/api/v1/flows?disabled=maybe")
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"pointer": "#/disabled", "detail": "Use true or false."}]


def test_a_second_resource_with_the_same_name_is_400_naming_name(manager, application):
    body = {"name": "CRM", "http": {"baseURI": "https://crm.example"}}
    assert manager.post("/api/v1/connections", body, format="json").status_code == 201
    answer = manager.post("/api/v1/connections", body, format="json")
    assert answer.status_code == 400
    assert [e["pointer"] for e in answer.json()["errors"]] == ["#/name"]


@pytest.fixture
def lead_type_id(manager, application) -> str:
    answer = manager.post(
        "/api/v1/recordTypes",
        {
            "name": "Lead",
            "_integrationId": str(application.pk),
            "fields": [{"name": "Company", "type": "text"}],
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["_id"]


def test_a_record_field_its_type_lacks_is_400(manager, lead_type_id):
    answer = manager.post(
        "/api/v1/records", {"_recordTypeId": lead_type_id, "Compnay": "Acme"}, format="json"
    )
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["type"] == "urn:flowsite:problem:invalid-record"
    assert [e["pointer"] for e in problem["errors"]] == ["#/Compnay"]


@pytest.mark.parametrize(
    ("part", "pointer"),
    [
        ({"fields": [["Company"]]}, "#/fields/0"),
        ({"fields": ["Company", {"a": 1}]}, "#/fields/1"),
        ({"filters": [{"field": ["Company"], "op": "eq", "value": "x"}]}, "#/filters/0/field"),
        ({"ordering": [{"field": {"x": 1}}]}, "#/ordering/0/field"),
    ],
)
def test_a_view_whose_names_are_not_text_is_400_naming_where(
    manager, application, lead_type_id, part, pointer
):
    answer = manager.post(
        "/api/v1/views",
        {"name": "All", "_integrationId": str(application.pk), "_recordTypeId": lead_type_id}
        | part,
        format="json",
    )
    assert answer.status_code == 400, answer.content
    assert [e["pointer"] for e in answer.json()["errors"]] == [pointer]
