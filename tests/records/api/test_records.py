"""/api/v1/records?_recordTypeId=: record documents (as Query() shows them, with their
`_recordTypeId`), validated against the record type with every bad field listed."""

import pytest

from apps.records import services
from apps.records.models import Record, RecordType
from tests.management import API, assert_problem, created, json_patch, pointers

URL = f"{API}/records"


@pytest.fixture
def acme(lead_type, lead_fields) -> Record:
    return services.create_record(
        record_type=lead_type, data={"Company": "Acme", "Rating": "Warm", "Employees": 12}
    )


def test_a_record_goes_through_post_get_put_merge_patch_json_patch_and_delete(
    manager, member, lead_type, lead_fields
):
    url = created(
        manager,
        "records",
        {"_recordTypeId": str(lead_type.pk), "Company": "Acme", "Rating": {"Selection": "Hot"}},
    )
    got = manager.get(url)
    document = got.json()
    assert document["_recordTypeId"] == str(lead_type.pk)
    assert document["RecordID"] == int(url.rsplit("/", 1)[1])
    assert document["CreatedBy"] == document["ModifiedBy"] == member.username
    assert document["Company"] == "Acme"
    assert document["Rating"] == {"Selection": "Hot"}
    assert document["Active"] is True  # the field's default
    assert document["Amount"] is None
    first_submission = document["SubmissionId"]

    # PUT: what is left out takes its default or becomes empty.
    replaced = manager.put(url, {"Company": "Acme Ltd", "Amount": 9.5}, format="json")
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["Rating"] is None
    assert replaced.json()["Amount"] == 9.5
    assert replaced.json()["SubmissionId"] > first_submission
    assert replaced["ETag"] != got["ETag"]

    merged = manager.patch(url, {"Rating": "Cold", "Tags": ["B2B"]}, format="json")
    assert merged.status_code == 200, merged.content
    assert merged.json()["Company"] == "Acme Ltd"
    assert merged.json()["Amount"] == 9.5
    assert merged.json()["Tags"] == [{"Selection": "B2B"}]

    patched = json_patch(manager, url, [{"op": "replace", "path": "/Employees", "value": 40}])
    assert patched.status_code == 204, patched.content
    after = manager.get(url)
    assert after.json()["Employees"] == 40
    assert after.json()["Rating"] == {"Selection": "Cold"}
    assert after["ETag"] == patched["ETag"]

    assert manager.delete(url).status_code == 204
    assert_problem(manager.get(url), 404)


def test_a_put_may_send_back_the_document_it_got(manager, acme):
    url = f"{URL}/{acme.pk}"
    document = manager.get(url).json()
    answer = manager.put(url, {**document, "Company": "Acme 2"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["Rating"] == {"Selection": "Warm"}
    assert answer.json()["Company"] == "Acme 2"


def test_every_bad_field_is_listed_with_its_type_and_choices(manager, lead_type, lead_fields):
    answer = manager.post(
        URL,
        {
            "_recordTypeId": lead_type.pk,
            "Rating": "Lukewarm",
            "Employees": "many",
            "Email": "not-an-email",
            "Colour": "red",
        },
        format="json",
    )
    body = assert_problem(answer, 400)
    assert body["type"].endswith(":invalid-record")
    errors = {error["pointer"]: error for error in body["errors"]}
    assert set(errors) == {"#/Company", "#/Rating", "#/Employees", "#/Email", "#/Colour"}
    assert errors["#/Rating"]["allowed"] == ["Hot", "Warm", "Cold"]
    assert errors["#/Employees"]["type"] == "integer"
    for name in ("Company", "Rating", "Employees", "Email", "Colour"):
        assert name in body["detail"]
    assert Record.objects.count() == 0


def test_a_bad_put_changes_nothing(manager, acme):
    url = f"{URL}/{acme.pk}"
    before = manager.get(url).json()
    answer = manager.put(url, {"Rating": "Warm"}, format="json")
    assert pointers(answer) == ["#/Company"]
    assert manager.get(url).json() == before


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"Company": "Acme"}, "#/_recordTypeId"),
        ({"_recordTypeId": "999999", "Company": "Acme"}, "#/_recordTypeId"),
        ({"_recordTypeId": "abc", "Company": "Acme"}, "#/_recordTypeId"),
        ([{"Company": "Acme"}], "#"),
    ],
)
def test_a_post_needs_an_existing_record_type(manager, lead_type, body, pointer):
    assert pointers(manager.post(URL, body, format="json")) == [pointer]


def test_a_record_cannot_move_to_another_record_type(manager, acme, application):
    other = RecordType.objects.create(application=application, name="Other")
    answer = manager.patch(f"{URL}/{acme.pk}", {"_recordTypeId": other.pk}, format="json")
    assert pointers(answer) == ["#/_recordTypeId"]


def test_the_list_needs_the_record_type(manager, acme):
    assert pointers(manager.get(URL)) == ["#/_recordTypeId"]
    assert pointers(manager.get(URL, {"_recordTypeId": "999999"})) == ["#/_recordTypeId"]
    assert pointers(manager.get(URL, {"_recordTypeId": "x"})) == ["#/_recordTypeId"]
    assert "#/Company" in pointers(
        manager.get(URL, {"_recordTypeId": acme.record_type_id, "Company": "x"})
    )


def test_the_list_has_the_records_of_one_type_oldest_first_with_a_link_to_the_next_page(
    manager, lead_type, lead_fields, application
):
    other = RecordType.objects.create(application=application, name="Other")
    services.create_record(record_type=other, data={})
    for number in range(3):
        services.create_record(record_type=lead_type, data={"Company": f"C{number}"})
    first = manager.get(URL, {"_recordTypeId": lead_type.pk, "limit": 2})
    assert first.status_code == 200, first.content
    assert [d["Company"] for d in first.json()] == ["C0", "C1"]
    assert all(d["_recordTypeId"] == str(lead_type.pk) for d in first.json())
    following = manager.get(first["Link"].split(";")[0].strip("<>"))
    assert [d["Company"] for d in following.json()] == ["C2"]
    assert "Link" not in following


def test_the_list_costs_the_same_queries_whatever_the_number_of_rows(
    manager, member, lead_type, lead_fields, django_assert_num_queries
):
    def add(count: int) -> None:
        for number in range(count):
            services.create_record(
                record_type=lead_type, data={"Company": f"C{number}"}, user=member
            )

    add(2)
    params = {"_recordTypeId": lead_type.pk}
    assert manager.get(URL, params).status_code == 200  # warm: the key's last-used write
    # The API key, the caller's privileges, the record type, its fields, the page.
    with django_assert_num_queries(5):
        assert len(manager.get(URL, params).json()) == 2
    add(23)
    with django_assert_num_queries(5):
        assert len(manager.get(URL, params).json()) == 25


@pytest.mark.parametrize("method", ["put", "patch", "json-patch", "delete"])
def test_a_stale_if_match_is_412_and_changes_nothing(manager, acme, method):
    url = f"{URL}/{acme.pk}"
    stale = manager.get(url)["ETag"]
    assert manager.patch(url, {"Employees": 13}, format="json").status_code == 200
    before = manager.get(url).json()
    headers = {"HTTP_IF_MATCH": stale}
    if method == "put":
        answer = manager.put(url, {**before, "Company": "Mine"}, format="json", **headers)
    elif method == "patch":
        answer = manager.patch(url, {"Company": "Mine"}, format="json", **headers)
    elif method == "json-patch":
        ops = [{"op": "replace", "path": "/Company", "value": "Mine"}]
        answer = json_patch(manager, url, ops, **headers)
    else:
        answer = manager.delete(url, **headers)
    assert_problem(answer, 412)
    assert manager.get(url).json() == before


def test_reading_is_allowed_with_view_executions(reader, acme):
    assert reader.get(URL, {"_recordTypeId": acme.record_type_id}).status_code == 200
    assert reader.get(f"{URL}/{acme.pk}").status_code == 200


def test_reading_needs_manage_flows_or_view_executions(bystander, acme):
    for answer in (
        bystander.get(URL, {"_recordTypeId": acme.record_type_id}),
        bystander.get(f"{URL}/{acme.pk}"),
    ):
        assert assert_problem(answer, 403)["privileges"] == ["manage_flows", "view_executions"]


def test_writing_needs_manage_flows(reader, acme):
    url = f"{URL}/{acme.pk}"
    before = reader.get(url).json()
    for answer in (
        reader.post(URL, {"_recordTypeId": acme.record_type_id, "Company": "x"}, format="json"),
        reader.put(url, {"Company": "x"}, format="json"),
        reader.patch(url, {"Company": "x"}, format="json"),
        json_patch(reader, url, [{"op": "replace", "path": "/Company", "value": "x"}]),
        reader.delete(url),
    ):
        assert assert_problem(answer, 403)["privilege"] == "manage_flows"
    assert reader.get(url).json() == before
    assert Record.objects.count() == 1


def test_text_with_nul_characters_is_400_naming_the_field(manager, lead_type, lead_fields):
    answer = manager.post(
        URL,
        {"_recordTypeId": lead_type.pk, "Company": "Ac\u0000me", "Extra": {"a": ["x\u0000"]}},
        format="json",
    )
    assert set(pointers(answer)) == {"#/Company", "#/Extra/a/0"}
    assert Record.objects.count() == 0
