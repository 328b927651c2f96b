"""Execute() and Query() input a client crafts by hand: 400s, never 500s, and cursors
that tell nothing."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

from apps.records import services as records
from apps.surface.models import View

EXECUTE = "/api/rest/execute/Lead%20Registration/"
QUERY = "/api/rest/query/Lead%20Registration/"


def test_record_ids_and_transaction_ids_that_are_not_ids_are_400(rest, update_lead):
    for record_id in ("²", "99999999999999999999", "1.5"):
        answer = rest.post(EXECUTE + "Update%20Lead", {"RecordID": record_id}, format="json")
        assert answer.status_code == 400, record_id
    for key in ("  ", "a\u0000"):
        answer = rest.post(
            EXECUTE + "Update%20Lead",
            {"RecordID": 1, "ExternalTransactionId": key},
            format="json",
        )
        assert answer.status_code == 400, repr(key)


def test_an_isnull_parameter_that_is_not_yes_or_no_is_400(rest, lead):
    View.objects.create(
        application=lead.application,
        record_type=lead,
        name="Sized",
        rest_query=True,
        filters=[{"field": "Employees", "op": "isnull", "parameter": "unknown"}],
        parameters=[{"name": "unknown", "type": "text", "required": False}],
    )
    assert rest.get(QUERY + "Sized", {"unknown": "maybe"}).status_code == 400
    assert rest.get(QUERY + "Sized", {"unknown": "true"}).status_code == 200


def test_a_query_cursor_hides_the_values_it_holds_and_cannot_be_forged(rest, lead):
    View.objects.create(
        application=lead.application,
        record_type=lead,
        name="By size",
        rest_query=True,
        fields=["Company"],
        ordering=[{"field": "Employees", "direction": "asc"}],
    )
    for index in range(3):
        records.create_record(
            record_type=lead, data={"Company": f"Co {index}", "Employees": 4242 + index}
        )
    page = rest.get(QUERY + "By%20size", {"limit": 1})
    link = page.headers["Link"]
    cursor = parse_qs(urlsplit(link[1 : link.index(">")]).query)["cursor"][0]
    assert "4242" not in cursor
    assert "Employees" not in cursor
    assert b"4242" not in base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    follow = rest.get(QUERY + "By%20size", {"limit": 1, "cursor": cursor})
    assert [document["Company"] for document in follow.json()] == ["Co 1"]
    forged = base64.urlsafe_b64encode(
        json.dumps({"o": ["Employees", "RecordID"], "v": ["abc", 1]}).encode()
    ).decode()
    answer = rest.get(QUERY + "By%20size", {"cursor": forged})
    assert answer.status_code == 400
