"""Helpers of the management API tests of data tables and the surface."""

import json

from rest_framework.test import APIClient

API = "/api/v1"
PROBLEM = "application/problem+json"
JSON_PATCH = "application/json-patch+json"


def assert_problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == PROBLEM
    body = answer.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def pointers(answer, status: int = 400) -> list[str]:
    return [error["pointer"] for error in assert_problem(answer, status)["errors"]]


def json_patch(client: APIClient, url: str, operations, **extra):
    return client.generic("PATCH", url, json.dumps(operations), content_type=JSON_PATCH, **extra)


def created(client: APIClient, kind: str, document: dict) -> str:
    """POST a document; its URL (from the Location header)."""
    answer = client.post(f"{API}/{kind}", document, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    pk = body.get("_id") or body.get("RecordID")
    assert answer["Location"] == f"http://testserver{API}/{kind}/{pk}"
    assert answer["ETag"].startswith('"')
    return answer["Location"].removeprefix("http://testserver")
