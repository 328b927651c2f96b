"""A view's filters in the admin: rows of field / operator / value or URL parameter, with
the JSON kept under "Advanced" for what rows cannot say; checked as the JSON always was."""

import re

import pytest

from apps.surface.models import View

pytestmark = pytest.mark.django_db


@pytest.fixture
def view(leads_app, lead) -> View:
    return View.objects.create(
        application=leads_app,
        name="Hot leads",
        record_type=lead,
        rest_query=True,
        parameters=[{"name": "rating", "type": "text"}],
        filters=[
            {"field": "Rating", "op": "eq", "parameter": "rating"},
            {"field": "Employees", "op": "gt", "value": 100},
        ],
    )


def url(view: View) -> str:
    return f"/admin/surface/view/{view.pk}/change/"


def post_rows(view: View, rows: list[tuple[str, str, str, str]], **extra) -> dict:
    """The form as the browser sends it: one value per row under each of the four names."""
    data = {
        "application": view.application_id,
        "name": view.name,
        "description": "",
        "record_type": view.record_type_id,
        "rest_query": "on",
        "fields": "[]",
        "parameters": '[{"name": "rating", "type": "text"}]',
        "ordering": "[]",
        "filters": "[]",
    }
    for part, index in (("field", 0), ("op", 1), ("source", 2), ("value", 3)):
        data[f"filters-{part}"] = [row[index] for row in rows]
    return {**data, **extra}


def inputs(html: str, name: str) -> list[str]:
    return re.findall(rf'<input type="text" name="{name}" value="([^"]*)"', html)


def selected(html: str, name: str) -> list[str]:
    found = re.findall(rf'<select name="{name}".*?</select>', html, re.S)
    return [re.search(r'<option value="([^"]+)" selected>', s).group(1) for s in found]


def test_the_view_page_shows_its_filters_as_rows_with_the_fields_suggested(admin_client, view):
    html = admin_client.get(url(view)).content.decode()

    assert inputs(html, "filters-field") == ["Rating", "Employees", ""]
    assert selected(html, "filters-op") == ["eq", "gt", "eq"]
    assert selected(html, "filters-source") == ["parameter", "value", "value"]
    assert inputs(html, "filters-value") == ["rating", "100", ""]
    assert '<option value="Company">' in html  # the record type's fields, to pick from
    assert '<option value="SubmissionId">' in html
    assert 'name="filters-use_json" id="id_filters_use_json" checked' not in html


def test_rows_are_saved_as_filters(admin_client, view):
    rows = [
        ("Rating", "in", "value", " Hot,Warm "),
        ("", "eq", "value", ""),  # an empty row is no filter
        ("Company", "contains", "parameter", "rating"),
    ]

    response = admin_client.post(url(view), post_rows(view, rows))

    assert response.status_code == 302, response.content.decode()[:3000]
    view.refresh_from_db()
    assert view.filters == [
        {"field": "Rating", "op": "in", "value": "Hot,Warm"},
        {"field": "Company", "op": "contains", "parameter": "rating"},
    ]


def test_rows_saved_unchanged_keep_the_stored_filters_as_they_were(admin_client, view):
    stored = view.filters
    rows = [("Rating", "eq", "parameter", "rating"), ("Employees", "gt", "value", "100")]

    response = admin_client.post(url(view), post_rows(view, rows))

    assert response.status_code == 302, response.content.decode()[:3000]
    view.refresh_from_db()
    assert view.filters == stored  # 100 is still a number


def test_filter_rows_not_received_whole_are_refused_and_the_filters_kept(admin_client, view):
    """A column one value short dropped the last filter (a view limited to one region
    then answered every record) and saved as a success (found by the review)."""
    stored = view.filters
    data = post_rows(
        view, [("Rating", "eq", "parameter", "rating"), ("Employees", "gt", "value", "100")]
    )
    data["filters-value"] = data["filters-value"][:1]

    response = admin_client.post(url(view), data)

    assert response.status_code == 200
    assert "not received whole" in response.content.decode()
    view.refresh_from_db()
    assert view.filters == stored


def test_a_removed_row_removes_its_filter(admin_client, view):
    response = admin_client.post(
        url(view), post_rows(view, [("Rating", "eq", "parameter", "rating")])
    )

    assert response.status_code == 302
    view.refresh_from_db()
    assert view.filters == [{"field": "Rating", "op": "eq", "parameter": "rating"}]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("Nope", "eq", "value", "x"),
            "filters[0].field: 'Nope' is not a field; the fields are: Company, Rating, "
            "Interests, Employees, RecordID, SubmissionId, CreatedOn, ModifiedOn, CreatedBy, "
            "ModifiedBy.",
        ),
        (
            ("Rating", "eq", "parameter", "colour"),
            "filters[0].parameter: 'colour' is not a parameter of the view; they are: rating.",
        ),
        (
            ("Employees", "contains", "parameter", "rating"),
            "filters[0].op: contains is for text; Employees is integer.",
        ),
    ],
)
def test_rows_are_checked_with_the_same_messages_as_the_json(admin_client, view, row, message):
    response = admin_client.post(url(view), post_rows(view, [row]))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["filters"] == [message]
    html = response.content.decode()
    assert inputs(html, "filters-field")[0] == row[0]  # shown again as typed
    assert inputs(html, "filters-value")[0] == row[3]


def test_a_constant_that_does_not_fit_the_field_is_refused_as_before(admin_client, view):
    response = admin_client.post(url(view), post_rows(view, [("Rating", "eq", "value", "Tepid")]))

    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["filters"]
    assert message.startswith("filters[0]: ")
    assert "Tepid" in message
    view.refresh_from_db()
    assert len(view.filters) == 2


def test_advanced_json_is_used_when_ticked_and_checked_the_same_way(admin_client, view):
    rows = [("Rating", "eq", "value", "Hot")]
    advanced = '[{"field": "Company", "op": "isnull", "value": false}]'

    response = admin_client.post(
        url(view), post_rows(view, rows, **{"filters": advanced, "filters-use_json": "on"})
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    view.refresh_from_db()
    assert view.filters == [{"field": "Company", "op": "isnull", "value": False}]

    bad = admin_client.post(
        url(view), post_rows(view, rows, **{"filters": "[{", "filters-use_json": "on"})
    )
    assert bad.context["adminform"].form.errors["filters"] == ["Enter a valid JSON."]


def test_filters_rows_cannot_say_open_in_the_advanced_json(admin_client, view):
    View.objects.filter(pk=view.pk).update(
        filters=[{"field": "Company", "op": "eq", "value": None}]
    )

    html = admin_client.get(url(view)).content.decode()

    assert 'name="filters-use_json" id="id_filters_use_json" checked' in html
    assert "&quot;value&quot;: null" in html
    assert inputs(html, "filters-field") == ["", ""]  # only empty rows


@pytest.mark.parametrize(
    ("advanced", "error"),
    [
        ("null", "JSON null is not a value here"),
        ('[{"field": "Rating", "op": "gt", "value": NaN}]', "NaN is not valid JSON"),
        ("[" * 150 + "]" * 150, "Nested more than 100 levels deep."),
    ],
)
def test_advanced_json_is_read_as_the_api_reads_json(admin_client, view, advanced, error):
    """A `null` reached the database as a 500; NaN and deep nesting got past the check."""
    before = view.filters
    rows = [("Rating", "eq", "value", "Hot")]

    response = admin_client.post(
        url(view), post_rows(view, rows, **{"filters": advanced, "filters-use_json": "on"})
    )

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["filters"])
    view.refresh_from_db()
    assert view.filters == before
