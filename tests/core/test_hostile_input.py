"""Odd input a hostile caller crafts gets a 4xx problem that says what to fix, never a 500
(issue 11, point 10): numbers that are not finite, text that is not valid Unicode, control
characters in the path, OPTIONS on every API view.

The parsers and the middleware refuse these before anything is stored or looked up, so
the answers are the same on every database; PostgreSQL is why (it refuses all of them,
see the last test), and CI's PostgreSQL pass runs every test here on it too.
"""

import json
import re
from uuid import uuid4

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver

from apps.executions.models import Execution
from apps.flows.models import Flow
from tests.conftest import postgresql_only

PROBLEM = "application/problem+json"
ECHO = "/api/test/echo"  # tests.core.urls: a DRF view behind the default JSON parser


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return json.loads(response.content)


@pytest.mark.parametrize("depth", [101, 600])
def test_a_document_nested_deeper_than_the_limit_is_400_not_a_crash(manager, depth):
    """From ~500 levels the parser took it and the NUL check behind it ran out of stack:
    a 500 on every document write (an outside probe). Refused where it is parsed now."""
    body = '{"name": "deep", "variables": {"v": ' + "[" * depth + "]" * depth + "}}"
    problem = problem_of(
        manager.post("/api/v1/integrations", body, content_type="application/json"), 400
    )
    assert problem["type"] == "urn:flowsite:problem:malformed-json"
    assert "more than 100 levels" in problem["detail"]


@pytest.mark.urls("tests.core.urls")
@pytest.mark.parametrize(("arrays", "status"), [(99, 200), (100, 400)])
def test_a_document_nested_to_the_limit_is_read(api_client, arrays, status):
    nested = "[" * arrays + "]" * arrays  # inside the document: 1 + arrays levels
    body = '{"name": "x", "address": {}, "tags": [], "v": ' + nested + "}"
    response = api_client.post(ECHO, body, content_type="application/json")
    assert response.status_code == status, response.content


# --- Numbers that are not finite ---------------------------------------------------------

NOT_FINITE = ["1e400", "-1e400", "1" * 400 + ".0", "NaN", "Infinity", "-Infinity"]


@pytest.mark.urls("tests.core.urls")
@pytest.mark.parametrize("literal", NOT_FINITE)
def test_a_number_that_is_not_finite_is_refused_where_it_is(api_client, literal):
    body = '{"name": "x", "address": {}, "tags": [1, ' + literal + "]}"
    problem = problem_of(api_client.post(ECHO, body, content_type="application/json"), 400)
    assert problem["type"] == "urn:flowsite:problem:malformed-json"
    assert "#/tags/1" in problem["detail"]
    [error] = problem["errors"]
    assert error["pointer"] == "#/tags/1"
    assert literal[:20] in error["detail"]


@pytest.mark.urls("tests.core.urls")
def test_every_number_that_is_not_finite_is_named_with_an_escaped_pointer(api_client):
    body = '{"a/b": {"c~d": 1e999}, "list": [NaN, 2.5, -1e400], "name": "fine"}'
    problem = problem_of(api_client.post(ECHO, body, content_type="application/json"), 400)
    assert [e["pointer"] for e in problem["errors"]] == ["#/a~1b/c~0d", "#/list/0", "#/list/2"]


@pytest.mark.urls("tests.core.urls")
def test_large_and_tiny_finite_numbers_are_numbers(api_client):
    # The echo's serializer drops the fields it does not know: only the parse matters.
    body = '{"name": "x", "address": {}, "tags": [1], "big": 1.7e308, "tiny": 1e-400}'
    assert api_client.post(ECHO, body, content_type="application/json").status_code == 200


# --- Text that is not valid Unicode ------------------------------------------------------


@pytest.mark.urls("tests.core.urls")
@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ('{"name": "\\ud800"}', "#/name"),
        ('{"name": "x", "tags": ["ok", "a\\udfffb"]}', "#/tags/1"),
        ('{"name": "x", "address": {"\\udc00": "key"}}', "#/address/\\udc00"),
        ('"\\uDBFF"', "#"),
    ],
)
def test_a_lone_surrogate_is_refused_where_it_is(api_client, body, pointer):
    problem = problem_of(api_client.post(ECHO, body, content_type="application/json"), 400)
    assert problem["type"] == "urn:flowsite:problem:invalid-unicode"
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert "lone surrogate" in problem["errors"][0]["detail"]


@pytest.mark.urls("tests.core.urls")
def test_a_surrogate_pair_is_the_character_it_spells(api_client):
    body = '{"name": "\\ud83d\\ude00", "address": {}, "tags": []}'
    answer = api_client.post(ECHO, body, content_type="application/json")
    assert answer.status_code == 200
    assert answer.json()["name"] == "😀"


@pytest.fixture
def anonymous_flow(application) -> Flow:
    return Flow.objects.create(
        application=application,
        name="open",
        api={"enabled": True, "method": "POST", "path": "/open", "allowAnonymous": True},
    )


@pytest.mark.parametrize("url", ["/api/resources/open", "/api/1/action/Usage%20Stats/open/trigger"])
@pytest.mark.parametrize(
    ("body", "content_type", "problem_type"),
    [
        ('{"a": "\\ud800"}', "application/json", "invalid-unicode"),
        ('{"a": 1e400}', "application/json", "malformed-json"),
        # A charset Python knows can make a lone surrogate from bytes that are valid ASCII.
        (b"\\ud800", "text/plain; charset=unicode_escape", "invalid-unicode"),
    ],
)
def test_an_anonymous_trigger_body_that_cannot_be_stored_is_400_and_starts_nothing(
    api_client, anonymous_flow, url, body, content_type, problem_type
):
    answer = api_client.post(url, body, content_type=content_type)
    assert problem_of(answer, 400)["type"] == f"urn:flowsite:problem:{problem_type}"
    assert not Execution.objects.exists()


def test_the_same_anonymous_trigger_with_storable_input_runs(api_client, anonymous_flow):
    body = '{"a": "\\ud83d\\ude00"}'
    answer = api_client.post("/api/resources/open", body, content_type="application/json")
    assert answer.status_code == 200, answer.content
    assert Execution.objects.get().request["body"] == {"a": "😀"}


# --- Control characters in the path ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/1/action/%00/%00/trigger",
        "/api/resources/a%00b",
        "/api/1/action/%01/trigger",
        "/api/rest/query/Leads%7F/All",
        "/api/rest/execute/Leads/Register%C2%85",  # U+0085, a C1 control
        "/api/v1/flows/%00",
    ],
)
def test_a_control_character_in_the_path_is_404_before_any_query(api_client, db, url):
    with CaptureQueriesContext(connection) as queries:
        answer = api_client.get(url)
    problem = problem_of(answer, 404)
    assert "control character" in problem["detail"]
    assert re.search(r"U\+00[0-9A-F]{2}", problem["detail"])
    assert len(queries) == 0


# --- OPTIONS -------------------------------------------------------------------------------


def api_v1_urls() -> list[str]:
    """Every route under /api/v1/, with ids that match its pattern."""

    def walk(patterns, prefix: str):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    urls = []
    for route in walk(get_resolver().url_patterns, "/"):
        if not route.startswith("/api/v1/"):
            continue
        url = re.sub(r"\(\?P<pk>\[0-9a-fA-F-\]\{36\}\)", str(uuid4()), route)
        url = re.sub(r"\(\?P<\w+>[^)]*\)|<[^>]+>", "1", url)
        urls.append(url.replace("^", "").replace("$", ""))
    return urls


def test_every_management_route_is_found():
    urls = api_v1_urls()
    assert "/api/v1/flows" in urls
    assert "/api/v1/views/1" in urls
    assert len(urls) >= 30


@pytest.mark.parametrize("url", api_v1_urls())
def test_options_answers_200_with_allow_on_every_management_route(manager, url):
    answer = manager.options(url)
    assert answer.status_code == 200, answer.content
    assert "OPTIONS" in answer["Allow"]
    assert answer.json()["name"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/", "/api/schema/", "/api/v1/me"])
def test_options_answers_200_with_allow_on_the_other_api_pages(manager, url):
    answer = manager.options(url)
    assert answer.status_code == 200
    assert answer["Allow"] == "GET, HEAD, OPTIONS"


def test_a_reader_may_ask_what_a_resource_accepts(reader):
    answer = reader.options("/api/v1/flows")
    assert answer.status_code == 200
    assert answer["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert "application/merge-patch+json" in answer.json()["parses"]


def test_a_method_no_view_handles_is_405_with_allow(api_client, anonymous_flow):
    # The resources view leaves Allow out of its other answers (it depends on the path).
    answer = api_client.generic("TRACE", "/api/resources/open")
    problem_of(answer, 405)
    assert answer["Allow"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"


# --- Why: PostgreSQL refuses each of them -----------------------------------------------


@postgresql_only
@pytest.mark.parametrize(
    "refused",
    [
        lambda application: Flow.objects.filter(name="a\x00b").exists(),
        lambda application: Flow.objects.create(
            application=application, name="f", variables={"a": "\ud800"}
        ),
        lambda application: Flow.objects.create(
            application=application, name="g", variables={"a": float("inf")}
        ),
    ],
    ids=["nul-in-a-lookup", "lone-surrogate-in-jsonb", "infinity-in-jsonb"],
)
def test_postgresql_refuses_what_the_parsers_and_the_middleware_keep_out(application, refused):
    with pytest.raises(DataError), transaction.atomic():
        refused(application)
