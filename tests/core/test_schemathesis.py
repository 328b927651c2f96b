"""A short schemathesis run: requests generated from /api/schema/ against a loopback server.

No answer may be a 5xx, and none may contradict the schema (undocumented status codes,
content types or bodies). Examples are bounded so the run stays within a minute.
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.services import create_api_key
from apps.flows.models import Application, Connection, Export, Flow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def auth(transactional_db, owner) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_key(owner=owner).plaintext}"}


@pytest.fixture
def api_schema(live_server, auth):
    """The served schema, with a few resources to read so ids in paths can hit rows."""
    application = Application.objects.create(name="Fuzz")
    connection = Connection.objects.create(name="Fuzz API", base_uri="https://fuzz.example")
    export = Export.objects.create(name="Fuzz export", connection=connection)
    Flow.objects.create(
        application=application,
        name="fuzzed",
        page_generators=[{"_exportId": str(export.pk)}],
        api={"enabled": True, "method": "POST", "path": "/fuzzed"},
        disabled=True,
    )
    served = requests.get(f"{live_server.url}/api/schema/?format=json", headers=auth, timeout=30)
    served.raise_for_status()
    return schemathesis.openapi.from_dict(served.json())


def test_the_api_answers_generated_requests_as_its_schema_says(api_schema, live_server, auth):
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case):
            case.call_and_validate(base_url=live_server.url, headers=auth, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:  # each operation's failure is collected, then all reported
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
