"""Query(): GET /api/rest/query/<Application>/<View>?<parameter>=<value>."""

from urllib.parse import urlsplit

import pytest

from apps.records import services as records
from apps.surface import services
from apps.surface.models import View

URL = "/api/rest/query/Lead%20Registration/All%20Leads"


@pytest.fixture
def some_leads(lead):
    return [
        records.create_record(
            record_type=lead, data={"Company": f"Company {index}", "Rating": rating}
        )
        for index, rating in enumerate(["Hot", "Cold", "Hot", "Warm", "Hot"])
    ]


def next_link(response) -> str | None:
    link = response.headers.get("Link")
    if not link:
        return None
    assert link.endswith('>; rel="next"')
    parts = urlsplit(link[1 : link.index(">")])
    return f"{parts.path}?{parts.query}"


def test_a_view_answers_full_record_documents(rest, all_leads, some_leads):
    response = rest.get(URL)

    assert response.status_code == 200
    documents = response.json()
    assert [document["Company"] for document in documents] == [
        f"Company {index}" for index in range(5)
    ]
    assert set(documents[0]) == {
        "RecordID",
        "CreatedBy",
        "CreatedOn",
        "ModifiedBy",
        "ModifiedOn",
        "SubmissionId",
        "Company",
        "Rating",
        "Interests",
        "Employees",
    }
    assert response["X-Last-Submission-Id"] == str(some_leads[-1].submission_id)
    assert "Link" not in response


def test_a_parameter_filters_the_records(rest, all_leads, some_leads):
    response = rest.get(URL, {"rating": "Hot"})

    assert response.status_code == 200
    assert [document["Company"] for document in response.json()] == [
        "Company 0",
        "Company 2",
        "Company 4",
    ]
    assert {document["Rating"]["Selection"] for document in response.json()} == {"Hot"}


def test_a_view_shows_only_its_fields_in_its_order(rest, all_leads, some_leads):
    all_leads.fields = ["Rating", "Company"]
    all_leads.ordering = [{"field": "Company", "direction": "desc"}]
    all_leads.full_clean()
    all_leads.save()

    documents = rest.get(URL).json()

    assert list(documents[0])[-2:] == ["Rating", "Company"]
    assert "Employees" not in documents[0]
    assert documents[0]["Company"] == "Company 4"


def test_pages_follow_the_link_header_until_the_last(rest, all_leads, some_leads):
    seen, url, pages = [], URL + "?limit=2", 0
    while url:
        response = rest.get(url)
        assert response.status_code == 200
        seen += [document["RecordID"] for document in response.json()]
        url, pages = next_link(response), pages + 1

    assert pages == 3
    assert seen == [record.pk for record in some_leads]


def test_since_returns_only_later_submissions_in_submission_order(
    rest, all_leads, some_leads, lead
):
    first = rest.get(URL)
    last_seen = int(first["X-Last-Submission-Id"])
    records.update_record(record=some_leads[1], data={"Rating": "Warm"})
    added = records.create_record(record_type=lead, data={"Company": "New"})

    response = rest.get(URL, {"since": last_seen})

    assert response.status_code == 200
    assert [document["RecordID"] for document in response.json()] == [
        some_leads[1].pk,
        added.pk,
    ]
    assert int(response["X-Last-Submission-Id"]) == added.submission_id
    assert rest.get(URL, {"since": response["X-Last-Submission-Id"]}).json() == []


def test_since_pages_with_the_link_header_too(rest, all_leads, some_leads):
    response = rest.get(URL, {"since": some_leads[0].submission_id, "limit": 3})

    assert len(response.json()) == 3
    rest_of_them = rest.get(next_link(response))
    assert [document["RecordID"] for document in rest_of_them.json()] == [some_leads[4].pk]


def test_an_unknown_parameter_is_400_naming_it_and_listing_the_views_parameters(rest, all_leads):
    response = rest.get(URL, {"ratin": "Hot"})

    assert response.status_code == 400
    problem = response.json()
    assert "'ratin'" in problem["detail"]
    assert "rating" in problem["detail"]
    assert problem["parameters"] == ["rating"]
    assert problem["errors"] == [{"pointer": "#/ratin", "detail": "Not a parameter of the view."}]


@pytest.mark.parametrize("query", ["rating=Hot&rating=Cold", "limit=2&limit=3&rating=Hot"])
def test_a_parameter_given_twice_is_400_rather_than_one_of_them_used(
    rest, all_leads, some_leads, query
):
    """The last value was used: a client meaning Hot or Cold got the Cold leads only."""
    response = rest.get(f"{URL}?{query}")

    assert response.status_code == 400
    problem = response.json()
    name = query.split("=")[0]
    assert f"Give each parameter once: {name} is given 2 times." in problem["detail"]
    assert "separate its values with commas" in problem["detail"]
    assert problem["errors"] == [{"pointer": f"#/{name}", "detail": "Given 2 times."}]


def test_head_answers_what_get_would_without_the_body(rest, all_leads, some_leads):
    """It was a 405, though a Query() is a read like any GET (RFC 9110 §9.3.2)."""
    got = rest.get(URL, {"limit": 2})

    response = rest.head(URL, {"limit": 2})

    assert response.status_code == 200
    assert response.content == b""
    for header in ("Content-Type", "X-Last-Submission-Id"):
        assert response[header] == got[header]
    assert response["Link"].endswith('>; rel="next"')  # its cursor is sealed anew each time


def test_a_missing_required_parameter_is_400(rest, all_leads):
    all_leads.parameters = [{"name": "rating", "type": "choice", "required": True}]
    all_leads.save()

    response = rest.get(URL)

    assert response.status_code == 400
    assert "rating" in response.json()["detail"]
    assert "required" in response.json()["detail"].lower()


def test_a_parameter_of_the_wrong_type_is_400(rest, leads_app, lead):
    View.objects.create(
        application=leads_app,
        record_type=lead,
        name="Big",
        rest_query=True,
        filters=[{"field": "Employees", "op": "gte", "parameter": "size"}],
        parameters=[{"name": "size", "type": "integer", "required": True}],
    )

    response = rest.get("/api/rest/query/Lead%20Registration/Big", {"size": "large"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "#/size"


def test_a_choice_parameter_outside_the_choices_is_400(rest, all_leads):
    response = rest.get(URL, {"rating": "Lukewarm"})

    assert response.status_code == 400
    assert "Hot" in response.json()["detail"]


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_a_limit_outside_1_to_1000_is_400(rest, all_leads, limit):
    assert rest.get(URL, {"limit": limit}).status_code == 400


def test_a_bad_cursor_is_400(rest, all_leads):
    assert rest.get(URL, {"cursor": "nonsense"}).status_code == 400


def test_with_query_switched_off_the_call_is_403_saying_so(key_client, restuser, all_leads):
    services.configure_surface(execute=True, integration_accounts=[restuser])

    response = key_client(restuser).get(URL)

    assert response.status_code == 403
    assert "Query() is disabled in the surface configuration" in response.json()["detail"]


def test_without_an_api_key_a_query_is_401(api_client, surface_on, all_leads):
    assert api_client.get(URL).status_code == 401


def test_a_regular_account_cannot_query(key_client, member, surface_on, all_leads):
    assert key_client(member).get(URL).status_code == 403


def test_an_account_without_query_views_is_403_naming_it(
    key_client, restuser, surface_role, surface_on, all_leads
):
    surface_role.permissions.remove(*surface_role.permissions.filter(codename="query_views"))

    response = key_client(restuser).get(URL)

    assert response.status_code == 403
    assert "query_views" in response.json()["detail"]


def test_a_view_not_enabled_for_rest_is_404(rest, all_leads):
    all_leads.rest_query = False
    all_leads.save()

    assert rest.get(URL).status_code == 404


def test_a_caller_without_a_role_the_view_names_is_403(rest, all_leads, surface_role):
    from apps.accounts.models import Role

    all_leads.roles.add(Role.objects.create(name="Sales"))
    assert rest.get(URL).status_code == 403
    all_leads.roles.add(surface_role)
    assert rest.get(URL).status_code == 200
