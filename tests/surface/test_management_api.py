"""/api/v1/operations, /api/v1/views and /api/v1/surface (DESIGN §3 and §5): the surface
admin as Celigo-shaped resources, validated like the admin (every problem reported),
roles by name, integration accounts by username."""

import pytest

from apps.accounts.models import Role
from apps.flows.models import Application, Flow
from apps.records.models import RecordType
from apps.surface.models import Operation, SurfaceConfiguration, View
from tests.management import API, assert_problem, created, json_patch, pointers


def operation_document(app: Application, record_type: RecordType, **changes) -> dict:
    return {
        "name": "Register Lead",
        "_integrationId": str(app.pk),
        "_recordTypeId": str(record_type.pk),
        "action": "create",
        "restExecute": True,
        "_flowId": None,
        **changes,
    }


def view_document(app: Application, record_type: RecordType, **changes) -> dict:
    return {
        "name": "All Leads",
        "_integrationId": str(app.pk),
        "_recordTypeId": str(record_type.pk),
        "restQuery": True,
        "fields": ["Company", "Rating"],
        "filters": [{"field": "Rating", "op": "eq", "parameter": "rating"}],
        "parameters": [{"name": "rating", "type": "text", "required": False}],
        "ordering": [{"field": "Company", "direction": "asc"}],
        **changes,
    }


# --- Operations -----------------------------------------------------------------------


def test_an_operation_goes_through_post_get_put_merge_patch_json_patch_and_delete(
    manager, leads_app, lead, surface_role, echo_flow
):
    url = created(
        manager, "operations", operation_document(leads_app, lead, roles=["Regular User"])
    )
    document = manager.get(url).json()
    assert document == {
        "_id": url.rsplit("/", 1)[1],
        "name": "Register Lead",
        "description": "",
        "_integrationId": str(leads_app.pk),
        "_recordTypeId": str(lead.pk),
        "action": "create",
        "restExecute": True,
        "_flowId": None,
        "roles": ["Regular User"],
        "createdAt": document["createdAt"],
        "lastModified": document["lastModified"],
    }
    replaced = manager.put(
        url,
        {
            "name": "Update Lead",
            "_integrationId": leads_app.pk,
            "_recordTypeId": lead.pk,
            "action": "update",
            "_flowId": echo_flow.pk,
        },
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["restExecute"] is False  # left out: the default
    assert replaced.json()["roles"] == []
    assert replaced.json()["_flowId"] == str(echo_flow.pk)

    merged = manager.patch(url, {"roles": ["Regular User"], "restExecute": True}, format="json")
    assert merged.status_code == 200, merged.content
    assert merged.json()["roles"] == ["Regular User"]
    assert merged.json()["action"] == "update"

    patched = json_patch(manager, url, [{"op": "replace", "path": "/_flowId", "value": None}])
    assert patched.status_code == 204, patched.content
    assert manager.get(url).json()["_flowId"] is None
    operation = Operation.objects.get(pk=document["_id"])
    assert list(operation.roles.all()) == [surface_role]

    assert manager.delete(url).status_code == 204
    assert not Operation.objects.exists()


def test_every_problem_of_an_operation_is_reported(manager, leads_app, lead):
    other = Application.objects.create(name="Other")
    foreign_flow = Flow.objects.create(application=other, name="Elsewhere")
    answer = manager.post(
        f"{API}/operations",
        operation_document(
            leads_app, lead, name="a/b", action="upsert", _flowId=foreign_flow.pk, roles=["Nobody"]
        ),
        format="json",
    )
    found = set(pointers(answer))
    assert {"#/name", "#/action", "#/roles"} <= found
    assert not Operation.objects.exists()
    answer = manager.post(
        f"{API}/operations",
        operation_document(leads_app, lead, _flowId=foreign_flow.pk),
        format="json",
    )
    assert pointers(answer) == ["#/_flowId"]


def test_an_operations_record_type_must_be_of_its_integration(manager, leads_app):
    other = Application.objects.create(name="Other")
    foreign = RecordType.objects.create(application=other, name="Deal")
    answer = manager.post(
        f"{API}/operations", operation_document(leads_app, foreign), format="json"
    )
    assert pointers(answer) == ["#/_recordTypeId"]


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"colour": "red"}, "#/colour"),
        ({"restExecute": "yes"}, "#/restExecute"),
        ({"roles": "Regular User"}, "#/roles"),
        ({"roles": [1]}, "#/roles"),
    ],
)
def test_a_badly_shaped_operation_is_400_naming_the_field(
    manager, leads_app, lead, changes, pointer
):
    document = operation_document(leads_app, lead, **changes)
    assert pointer in pointers(manager.post(f"{API}/operations", document, format="json"))


def test_a_taken_operation_name_is_400(manager, leads_app, lead, register_lead):
    answer = manager.post(f"{API}/operations", operation_document(leads_app, lead), format="json")
    assert_problem(answer, 400)


# --- Views ----------------------------------------------------------------------------


def test_a_view_goes_through_post_get_put_merge_patch_json_patch_and_delete(
    manager, leads_app, lead
):
    url = created(manager, "views", view_document(leads_app, lead))
    document = manager.get(url).json()
    assert document == {
        "_id": url.rsplit("/", 1)[1],
        "description": "",
        "roles": [],
        **view_document(leads_app, lead),
        "createdAt": document["createdAt"],
        "lastModified": document["lastModified"],
    }
    replaced = manager.put(
        url, {"name": "Leads", "_integrationId": leads_app.pk, "_recordTypeId": lead.pk}, "json"
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["filters"] == replaced.json()["parameters"] == []
    assert replaced.json()["restQuery"] is False

    merged = manager.patch(url, {"ordering": [{"field": "Employees", "direction": "desc"}]}, "json")
    assert merged.status_code == 200, merged.content
    assert merged.json()["name"] == "Leads"

    patched = json_patch(manager, url, [{"op": "add", "path": "/fields/-", "value": "Company"}])
    assert patched.status_code == 204, patched.content
    assert manager.get(url).json()["fields"] == ["Company"]
    assert manager.delete(url).status_code == 204
    assert not View.objects.exists()


def test_every_problem_of_a_view_is_reported(manager, leads_app, lead):
    answer = manager.post(
        f"{API}/views",
        view_document(
            leads_app,
            lead,
            fields=["Company", "Colour"],
            filters=[{"field": "Rating", "op": "near", "value": "Hot"}],
            parameters=[{"name": "limit"}],
            ordering=[{"field": "Interests"}],
        ),
        format="json",
    )
    body = assert_problem(answer, 400)
    found = {error["pointer"] for error in body["errors"]}
    assert {"#/fields", "#/filters", "#/parameters", "#/ordering"} <= found
    details = " ".join(error["detail"] for error in body["errors"])
    assert "Colour" in details
    assert "near" in details
    assert "limit" in details
    assert not View.objects.exists()


def test_lists_filter_by_integration_and_record_type(
    manager, leads_app, lead, register_lead, all_leads
):
    other = RecordType.objects.create(application=leads_app, name="Deal")
    assert len(manager.get(f"{API}/operations", {"_recordTypeId": other.pk}).json()) == 0
    assert len(manager.get(f"{API}/operations", {"_recordTypeId": lead.pk}).json()) == 1
    assert len(manager.get(f"{API}/views", {"_integrationId": leads_app.pk}).json()) == 1
    assert "#/colour" in pointers(manager.get(f"{API}/views", {"colour": "x"}))


@pytest.mark.parametrize("kind", ["operations", "views"])
def test_a_list_costs_the_same_queries_whatever_the_number_of_rows(
    manager, leads_app, lead, surface_role, kind, django_assert_num_queries
):
    model = Operation if kind == "operations" else View

    def add(start: int, count: int) -> None:
        for number in range(start, start + count):
            row = model.objects.create(application=leads_app, record_type=lead, name=f"S{number}")
            row.roles.add(surface_role)

    add(0, 2)
    url = f"{API}/{kind}"
    assert manager.get(url).status_code == 200  # warm: the key's last-used write
    # The API key, the caller's privileges, the page, the page's roles.
    with django_assert_num_queries(4):
        assert len(manager.get(url).json()) == 2
    add(2, 23)
    with django_assert_num_queries(4):
        answer = manager.get(url).json()
    assert len(answer) == 25
    assert all(item["roles"] == ["Regular User"] for item in answer)


@pytest.mark.parametrize("kind", ["operations", "views"])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_stale_if_match_is_412(manager, register_lead, all_leads, kind, method):
    row = register_lead if kind == "operations" else all_leads
    url = f"{API}/{kind}/{row.pk}"
    stale = manager.get(url)["ETag"]
    assert manager.patch(url, {"description": "elsewhere"}, format="json").status_code == 200
    before = manager.get(url).json()
    if method == "put":
        answer = manager.put(url, before, format="json", HTTP_IF_MATCH=stale)
    elif method == "patch":
        answer = manager.patch(url, {"name": "Mine"}, format="json", HTTP_IF_MATCH=stale)
    else:
        answer = manager.delete(url, HTTP_IF_MATCH=stale)
    assert_problem(answer, 412)
    assert manager.get(url).json() == before


@pytest.mark.parametrize("kind", ["operations", "views"])
def test_reading_is_allowed_with_view_executions(reader, register_lead, all_leads, kind):
    row = register_lead if kind == "operations" else all_leads
    assert reader.get(f"{API}/{kind}").status_code == 200
    assert reader.get(f"{API}/{kind}/{row.pk}").status_code == 200


@pytest.mark.parametrize("kind", ["operations", "views"])
def test_reading_needs_manage_flows_or_view_executions(bystander, register_lead, all_leads, kind):
    row = register_lead if kind == "operations" else all_leads
    for url in (f"{API}/{kind}", f"{API}/{kind}/{row.pk}"):
        body = assert_problem(bystander.get(url), 403)
        assert body["privileges"] == ["manage_flows", "view_executions"]


@pytest.mark.parametrize("kind", ["operations", "views"])
def test_writing_needs_manage_flows(reader, register_lead, all_leads, leads_app, lead, kind):
    row = register_lead if kind == "operations" else all_leads
    url = f"{API}/{kind}/{row.pk}"
    before = reader.get(url).json()
    document = (operation_document if kind == "operations" else view_document)(
        leads_app, lead, name="Other"
    )
    for answer in (
        reader.post(f"{API}/{kind}", document, format="json"),
        reader.put(url, document, format="json"),
        reader.patch(url, {"name": "x"}, format="json"),
        json_patch(reader, url, [{"op": "replace", "path": "/name", "value": "x"}]),
        reader.delete(url),
    ):
        assert assert_problem(answer, 403)["privilege"] == "manage_flows"
    assert reader.get(url).json() == before


# --- The surface configuration --------------------------------------------------------

SURFACE = f"{API}/surface"


def test_the_surface_is_off_by_default(manager):
    answer = manager.get(SURFACE)
    assert answer.status_code == 200
    assert answer.json() == {"execute": False, "query": False, "integrationAccounts": []}
    assert answer["ETag"]


def test_a_merge_patch_switches_the_surface_on_for_integration_accounts(
    manager, restuser, integration
):
    answer = manager.patch(
        SURFACE, {"execute": True, "integrationAccounts": ["restuser"]}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"execute": True, "query": False, "integrationAccounts": ["restuser"]}
    answer = manager.patch(SURFACE, {"query": True}, format="json")
    assert answer.json() == {"execute": True, "query": True, "integrationAccounts": ["restuser"]}
    configuration = SurfaceConfiguration.load()
    assert configuration.execute
    assert configuration.query
    assert list(configuration.integration_accounts.all()) == [restuser]

    added = json_patch(
        manager, SURFACE, [{"op": "add", "path": "/integrationAccounts/-", "value": "erp-sync"}]
    )
    assert added.status_code == 204, added.content
    assert manager.get(SURFACE).json()["integrationAccounts"] == ["erp-sync", "restuser"]
    assert manager.get(SURFACE)["ETag"] == added["ETag"]

    cleared = manager.patch(SURFACE, {"execute": None, "integrationAccounts": None}, "json")
    assert cleared.json() == {"execute": False, "query": True, "integrationAccounts": []}


def test_only_integration_accounts_are_allowed_and_the_others_are_named(
    manager, restuser, outsider
):
    answer = manager.patch(
        SURFACE,
        {"execute": True, "integrationAccounts": ["restuser", "outsider", "ghost"]},
        format="json",
    )
    body = assert_problem(answer, 400)
    assert [error["pointer"] for error in body["errors"]] == ["#/integrationAccounts"] * 2
    details = " ".join(error["detail"] for error in body["errors"])
    assert "outsider" in details
    assert "ghost" in details
    assert "restuser" not in details
    assert manager.get(SURFACE).json()["execute"] is False


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"execute": "yes"}, "#/execute"),
        ({"colour": "red"}, "#/colour"),
        ({"integrationAccounts": "restuser"}, "#/integrationAccounts"),
        ({"integrationAccounts": [1]}, "#/integrationAccounts"),
    ],
)
def test_a_bad_surface_document_is_400(manager, body, pointer):
    assert pointer in pointers(manager.patch(SURFACE, body, format="json"))


def test_a_stale_if_match_on_the_surface_is_412(manager):
    stale = manager.get(SURFACE)["ETag"]
    assert manager.patch(SURFACE, {"query": True}, format="json").status_code == 200
    assert_problem(manager.patch(SURFACE, {"execute": True}, "json", HTTP_IF_MATCH=stale), 412)
    current = manager.get(SURFACE)["ETag"]
    answer = manager.patch(SURFACE, {"execute": True}, "json", HTTP_IF_MATCH=current)
    assert answer.status_code == 200


def test_the_surface_can_be_read_with_view_executions_and_changed_only_with_manage_flows(
    reader, db
):
    assert reader.get(SURFACE).status_code == 200
    body = assert_problem(reader.patch(SURFACE, {"execute": True}, format="json"), 403)
    assert body["privilege"] == "manage_flows"
    assert SurfaceConfiguration.load().execute is False


def test_the_surface_needs_a_privilege_to_read(bystander, db):
    assert_problem(bystander.get(SURFACE), 403)


def test_roles_are_named_by_their_names(manager, leads_app, lead):
    Role.objects.create(name="Sales")
    Role.objects.create(name="Support")
    url = created(
        manager, "operations", operation_document(leads_app, lead, roles=["Support", "Sales"])
    )
    assert manager.get(url).json()["roles"] == ["Sales", "Support"]  # by name, as roles sort


def test_names_with_nul_characters_are_refused_not_looked_up(manager, leads_app, lead):
    answer = manager.patch(SURFACE, {"integrationAccounts": ["rest\u0000user"]}, format="json")
    assert pointers(answer) == ["#/integrationAccounts/0"]  # the very item
    document = view_document(
        leads_app, lead, filters=[{"field": "Company", "op": "eq", "value": "\u0000"}]
    )
    assert pointers(manager.post(f"{API}/views", document, format="json")) == ["#/filters/0/value"]
