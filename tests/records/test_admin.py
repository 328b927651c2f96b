import pytest

from apps.records import services
from apps.records.forms import form_name
from apps.records.models import Record, RecordField, RecordType


@pytest.fixture
def admin(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def acme(lead_type):
    return services.create_record(
        record_type=lead_type, data={"Company": "Acme", "Rating": "Hot", "Tags": ["B2B"]}
    )


def field_names(lead_type) -> dict[str, str]:
    return {field.name: form_name(field) for field in lead_type.fields.all()}


def test_record_type_pages_render(admin, lead_type, acme):
    response = admin.get("/admin/records/recordtype/")
    assert response.status_code == 200
    assert f"?record_type__id__exact={lead_type.pk}" in response.content.decode()
    assert admin.get("/admin/records/recordtype/add/").status_code == 200
    response = admin.get(f"/admin/records/recordtype/{lead_type.pk}/change/")
    assert response.status_code == 200
    assert "Hot\nWarm\nCold" in response.content.decode()  # choices, one per line


def test_the_record_type_list_counts_fields_and_records(admin, lead_type, acme):
    response = admin.get("/admin/records/recordtype/")
    row = response.context["cl"].result_list[0]
    assert (row.field_total, row.record_total) == (12, 1)


def test_a_record_type_and_its_fields_are_added_inline(admin, application):
    response = admin.post(
        "/admin/records/recordtype/add/",
        {
            "application": application.pk,
            "name": "Contact",
            "description": "",
            "fields-TOTAL_FORMS": "2",
            "fields-INITIAL_FORMS": "0",
            "fields-0-position": "0",
            "fields-0-name": "Name",
            "fields-0-type": "text",
            "fields-0-required": "on",
            "fields-0-choices": "",
            "fields-0-default": "",
            "fields-1-position": "1",
            "fields-1-name": "Stage",
            "fields-1-type": "choice",
            "fields-1-choices": "New\nWon\n\nLost",
            "fields-1-default": '"New"',
        },
    )
    assert response.status_code == 302, response.context["errors"]
    contact = RecordType.objects.get(name="Contact")
    assert list(contact.fields.values_list("name", "type", "required", "choices", "default")) == [
        ("Name", "text", True, [], None),
        ("Stage", "choice", False, ["New", "Won", "Lost"], "New"),
    ]


def test_a_field_named_like_a_system_field_is_refused_in_the_admin(admin, application):
    response = admin.post(
        "/admin/records/recordtype/add/",
        {
            "application": application.pk,
            "name": "Contact",
            "fields-TOTAL_FORMS": "1",
            "fields-INITIAL_FORMS": "0",
            "fields-0-position": "0",
            "fields-0-name": "RecordID",
            "fields-0-type": "text",
        },
    )
    assert response.status_code == 200
    assert "RecordID is a system field name" in response.content.decode()
    assert not RecordType.objects.filter(name="Contact").exists()


def test_record_pages_render(admin, lead_type, acme):
    response = admin.get("/admin/records/record/")
    assert response.status_code == 200
    assert "Company: Acme · Rating: Hot · Tags: B2B" in response.content.decode()
    response = admin.get(f"/admin/records/record/{acme.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'value="Acme"' in content
    assert "Rating" in content
    assert "Website" in content


def test_the_record_list_filters_by_type_and_searches_values(admin, lead_type, acme):
    services.create_record(record_type=lead_type, data={"Company": "Bolt"})
    response = admin.get("/admin/records/record/", {"q": "acm"})
    assert list(response.context["cl"].result_list) == [acme]
    response = admin.get("/admin/records/record/", {"q": str(acme.pk)})
    assert acme in response.context["cl"].result_list
    response = admin.get("/admin/records/record/", {"record_type__id__exact": lead_type.pk})
    assert len(response.context["cl"].result_list) == 2


@pytest.mark.parametrize("term", ["Müller", "müller", "MÜLLER", "Bäcker & Söhne"])
@pytest.mark.parametrize("filtered", [True, False])
def test_the_record_search_finds_values_that_are_not_ascii(admin, lead_type, term, filtered):
    """An outside probe: on SQLite, whose JSON text holds "ü" as \u00fc, nothing was found."""
    found = services.create_record(
        record_type=lead_type, data={"Company": "MÜLLER Bäcker & Söhne", "Rating": "Hot"}
    )
    services.create_record(record_type=lead_type, data={"Company": "Mueller"})
    query = {"q": term} | ({"record_type__id__exact": lead_type.pk} if filtered else {})

    response = admin.get("/admin/records/record/", query)

    assert list(response.context["cl"].result_list) == [found]


def test_the_record_list_takes_as_many_queries_for_many_records(
    admin, lead_type, application, django_assert_max_num_queries
):
    other = RecordType.objects.create(application=application, name="Contact")
    RecordField.objects.create(record_type=other, name="Name")
    for number in range(30):
        services.create_record(record_type=lead_type, data={"Company": f"Lead {number}"})
        services.create_record(record_type=other, data={"Name": f"Person {number}"})
    with django_assert_max_num_queries(12):
        assert admin.get("/admin/records/record/").status_code == 200


def test_adding_a_record_asks_for_its_type_first(admin, lead_type, application):
    RecordType.objects.create(application=application, name="Contact")
    response = admin.get("/admin/records/record/add/")
    assert response.status_code == 200
    content = response.content.decode()
    assert f'href="?record_type={lead_type.pk}"' in content
    assert "Contact" in content


def test_with_one_record_type_the_add_page_goes_straight_to_its_form(admin, lead_type):
    response = admin.get("/admin/records/record/add/")
    assert response.status_code == 302
    assert response["Location"].endswith(f"?record_type={lead_type.pk}")


def test_the_add_button_of_a_filtered_list_keeps_the_record_type(admin, lead_type, application):
    RecordType.objects.create(application=application, name="Contact")
    filters = f"record_type__id__exact%3D{lead_type.pk}"
    response = admin.get(f"/admin/records/record/add/?_changelist_filters={filters}")
    assert response.status_code == 200
    assert "Company" in response.content.decode()


def test_a_record_is_added_through_the_generated_form(admin, lead_type, owner):
    names = field_names(lead_type)
    response = admin.post(
        f"/admin/records/record/add/?record_type={lead_type.pk}",
        {
            names["Company"]: "Acme",
            names["Rating"]: "Warm",
            names["Tags"]: ["B2B", "Partner"],
            names["Amount"]: "12.50",
            names["Employees"]: "40",
            names["Active"]: "false",
            names["Due"]: "2024-05-31",
            f"{names['Meeting']}_0": "2024-05-01",
            f"{names['Meeting']}_1": "09:30:00",
            names["Email"]: "sales@acme.example",
            names["Website"]: "https://acme.example/",
            names["Notes"]: "Met at the fair.",
            names["Extra"]: '{"source": "fair"}',
        },
    )
    assert response.status_code == 302, response.context["errors"]
    record = Record.objects.get()
    assert record.data == {
        "Company": "Acme",
        "Rating": "Warm",
        "Tags": ["B2B", "Partner"],
        "Amount": 12.5,
        "Employees": 40,
        "Active": False,
        "Due": "2024-05-31",
        "Meeting": "2024-05-01T09:30:00.000Z",
        "Email": "sales@acme.example",
        "Website": "https://acme.example/",
        "Notes": "Met at the fair.",
        "Extra": {"source": "fair"},
    }
    assert record.submission_id == 1
    assert record.created_by == owner


def test_a_record_is_changed_through_the_generated_form(admin, lead_type, acme, owner):
    names = field_names(lead_type)
    response = admin.post(
        f"/admin/records/record/{acme.pk}/change/",
        {names["Company"]: "Acme Ltd", names["Rating"]: "Cold", names["Active"]: "unknown"},
    )
    assert response.status_code == 302, response.context["errors"]
    acme.refresh_from_db()
    assert acme.data["Company"] == "Acme Ltd"
    assert acme.data["Rating"] == "Cold"
    assert acme.data["Tags"] is None
    assert acme.submission_id == 2
    assert acme.modified_by == owner


def test_a_bad_choice_is_shown_as_an_error_and_nothing_is_saved(admin, lead_type):
    names = field_names(lead_type)
    response = admin.post(
        f"/admin/records/record/add/?record_type={lead_type.pk}",
        {names["Rating"]: "Tepid", names["Email"]: "nope"},
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Select a valid choice. Tepid is not one of the available choices." in content
    assert "Enter a valid email address." in content
    assert "This field is required." in content  # Company
    assert not Record.objects.exists()


def test_the_admin_form_validates_through_clean_record(admin, lead_type, acme):
    names = field_names(lead_type)
    response = admin.post(
        f"/admin/records/record/{acme.pk}/change/",
        {names["Company"]: "Acme", names["Employees"]: str(2**64), names["Active"]: "unknown"},
    )
    assert response.status_code == 200
    assert "The integer is too large (64 bits at most)." in response.content.decode()
    acme.refresh_from_db()
    assert acme.submission_id == 1


def test_emptying_a_record_type_asks_first_then_deletes_its_records(admin, lead_type, acme):
    asked = admin.post(
        "/admin/records/recordtype/",
        {"action": "empty", "_selected_action": [lead_type.pk]},
    )
    assert asked.status_code == 200  # an outside probe lost a table to one click
    assert 'Lead <span class="quiet">(Usage Stats)</span>: 1 record' in asked.content.decode()
    assert Record.objects.exists()
    response = admin.post(
        "/admin/records/recordtype/",
        {"action": "empty", "_selected_action": [lead_type.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Record.objects.exists()
    assert RecordType.objects.filter(pk=lead_type.pk).exists()


def test_deleting_a_record_in_the_admin(admin, acme):
    response = admin.post(f"/admin/records/record/{acme.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Record.objects.exists()
