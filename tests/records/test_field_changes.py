"""A data table's fields changed in the admin or the API keep its values and its views
working: a renamed field takes its values along, and a change that would break a view
(a field it filters, orders or shows removed or renamed) is refused naming the view.
Both were found by an outside probe: a rename hid every value (and an edit of a record
before the rename was undone lost them), and deleting a filtered field made every
Query() of the view a 400."""

import pytest

from apps.records import services
from apps.records.models import Record
from apps.records.selectors import record_type_document
from apps.surface.models import View
from tests.records.conftest import record_type_form

URL = "/admin/records/recordtype/{}/change/"


@pytest.fixture
def admin(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def leads(lead_type) -> list[Record]:
    return [
        services.create_record(record_type=lead_type, data={"Company": "Acme", "Amount": 5}),
        services.create_record(record_type=lead_type, data={"Company": "Globex", "Extra": [1]}),
        services.create_record(record_type=lead_type, data={"Company": "Initech"}),
    ]


@pytest.fixture
def hot_leads(lead_type) -> View:
    return View.objects.create(
        application=lead_type.application,
        record_type=lead_type,
        name="Hot leads",
        filters=[{"field": "Rating", "op": "eq", "value": "Hot"}],
        ordering=[{"field": "Amount", "direction": "desc"}],
    )


def data_of(records: list[Record]) -> list[dict]:
    return [Record.objects.get(pk=record.pk).data for record in records]


def test_a_field_renamed_in_the_admin_takes_its_values_along(admin, lead_type, leads):
    data = record_type_form(lead_type, changed={"Amount": {"name": "Deal size"}})

    response = admin.post(URL.format(lead_type.pk), data)

    assert response.status_code == 302, response.context["errors"]
    assert [d.get("Deal size") for d in data_of(leads)] == [5, None, None]
    assert not any("Amount" in d for d in data_of(leads))
    # A later edit keeps the value: it is under a name the table has.
    services.update_record(record=leads[0], data={"Company": "Acme Ltd"})
    edited = data_of(leads)[0]
    assert (edited["Company"], edited["Deal size"], "Amount" in edited) == ("Acme Ltd", 5, False)


def test_two_fields_swapping_names_swap_their_values(admin, lead_type, leads):
    data = record_type_form(
        lead_type, changed={"Amount": {"name": "Extra"}, "Extra": {"name": "Amount"}}
    )

    response = admin.post(URL.format(lead_type.pk), data)

    assert response.status_code == 302, response.context["errors"]
    assert [(d.get("Amount"), d.get("Extra")) for d in data_of(leads)] == [
        (None, 5),
        ([1], None),
        (None, None),
    ]


def test_a_rename_onto_a_deleted_fields_old_name_shows_none_of_its_stale_values(
    admin, lead_type, leads
):
    """A field deleted leaves its values in the records until they are next written; a
    field renamed to its name must not show them as its own."""
    data = record_type_form(lead_type, changed={"Company": {"name": "Amount"}}, deleted={"Amount"})

    response = admin.post(URL.format(lead_type.pk), data)

    assert response.status_code == 302, response.context["errors"]
    assert [d.get("Amount") for d in data_of(leads)] == ["Acme", "Globex", "Initech"]


@pytest.mark.parametrize(
    ("changed", "deleted", "where"),
    [
        ({}, {"Rating"}, "filters[0].field"),
        ({"Rating": {"name": "Temperature"}}, set(), "filters[0].field"),
        ({}, {"Amount"}, "ordering[0].field"),
        ({"Amount": {"type": "json"}}, set(), "ordering[0].field"),
    ],
)
def test_a_change_that_would_break_a_view_is_refused_in_the_admin_naming_it(
    admin, lead_type, leads, hot_leads, changed, deleted, where
):
    data = record_type_form(lead_type, changed=changed, deleted=deleted)
    before = list(lead_type.fields.values_list("name", "type"))

    response = admin.post(URL.format(lead_type.pk), data)

    assert response.status_code == 200
    page = response.content.decode()
    assert f"The view &quot;Hot leads&quot; would break: {where}:" in page
    assert "Change the view first." in page
    assert list(lead_type.fields.values_list("name", "type")) == before
    assert [d["Amount"] for d in data_of(leads)] == [5, None, None]


def test_a_field_no_view_uses_is_deleted_in_the_admin(admin, lead_type, leads, hot_leads):
    response = admin.post(URL.format(lead_type.pk), record_type_form(lead_type, deleted={"Notes"}))

    assert response.status_code == 302, response.context["errors"]
    assert not lead_type.fields.filter(name="Notes").exists()


def test_the_api_refuses_to_drop_a_field_a_view_filters_on(lead_type, hot_leads):
    document = record_type_document(lead_type)
    document["fields"] = [f for f in document["fields"] if f["name"] != "Rating"]

    with pytest.raises(services.ValidationError) as refused:
        services.save_record_type(document=document, record_type=lead_type)

    (message,) = refused.value.message_dict["fields"]
    assert message.startswith('The view "Hot leads" would break: filters[0].field: ')
    assert lead_type.fields.filter(name="Rating").exists()
