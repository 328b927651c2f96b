"""A time-bounded schemathesis run over the served /api/schema/, with every check.

The schemathesis CLI (`--checks all`) runs its phases (examples, coverage, fuzzing,
stateful) for FUZZ_SECONDS against a live server, with one key that reaches every operation:
a superuser integration account, so the management API and the surface's Execute() and
Query() all answer it. No answer may be a server error. Every other failed check must be
one of INTENDED: each says why the API answers so, and which test pins that answer.
Anything else fails this test with a curl line to reproduce it.

The run goes through the CLI because only the CLI runs the coverage phase (boundary and
type-violating values for every parameter) and the stateful phase (links between
operations); its NDJSON report is read for each failed check and its exchange.
"""

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from apps.accounts.models import User
from apps.accounts.services import create_api_key
from apps.flows.models import Application, Connection, Export, Flow
from apps.surface.demo import install_lead_registration
from apps.surface.services import configure_surface

FUZZ_SECONDS = 75


@dataclass(frozen=True)
class Finding:
    """One failed check: what was sent and what came back."""

    check: str
    operation: str
    message: str
    request: str  # "METHOD uri"
    sent: str  # the request body
    status: int | None
    problem: str  # the problem type's code ("invalid"), "" when the answer is no problem

    def __str__(self) -> str:
        shown = self.message.replace("\n", " ")
        answer = f"{self.status} {self.problem}".strip()
        return f"{self.check} on {self.operation}: {answer} — {shown}\n    {self.request}"


@dataclass(frozen=True)
class Intended:
    check: str
    statuses: tuple[int, ...]
    problem: str
    why: str
    only: Callable[[Finding], bool] = lambda finding: True

    def covers(self, finding: Finding) -> bool:
        return (
            finding.check == self.check
            and finding.status in self.statuses
            and finding.problem == self.problem
            and self.only(finding)
        )


def _query_parameter(finding: Finding) -> tuple[str, list[str]]:
    """The query parameter a negative case broke, and the values it was sent with."""
    named = re.search(r"parameter `([^`]+)` in query", finding.message)
    name = named.group(1) if named else ""
    query = parse_qs(urlsplit(finding.request.split(" ", 1)[1]).query, keep_blank_values=True)
    return name, query.get(name, [])


INTENDED = [
    Intended(
        "positive_data_acceptance",
        (422,),
        "idempotency-key-reused",
        why="Execute()'s generated calls reuse an ExternalTransactionId with other values: "
        "that is a 422 saying so, never the first call's answer for another record "
        "(tests/surface/test_idempotency.py).",
        only=lambda finding: "/api/rest/execute/" in finding.request,
    ),
    Intended(
        "positive_data_acceptance",
        (400,),
        "invalid",
        why="The management API checks what its schema cannot say: that an id names an "
        "existing resource of the right kind and application, that a name is unique, that a "
        "time zone is an IANA name, that text holds no NUL (PostgreSQL cannot store it), "
        "that an account named in the surface exists. Each is a 400 whose errors point at "
        "the field (tests/flows/api/test_flow_documents.py, test_flow_actions.py, "
        "test_hostile_input.py, tests/surface/test_management_api.py). A known gap that "
        "also lands here until it is fixed where it lives: the id filters' minimum of 1 is "
        "not in the schema (apps.core.filters.IdFilter).",
    ),
    Intended(
        "positive_data_acceptance",
        (400,),
        "invalid-cursor",
        why="A cursor is opaque: only the next URL of a Link header holds a valid one "
        "(tests/flows/api/test_hostile_input.py::test_a_forged_cursor_is_400).",
    ),
    Intended(
        "positive_data_acceptance",
        (412,),
        "precondition-failed",
        why="An If-Match that is not the current ETag is a lost update (RFC 9110); the "
        "schema documents the 412 (tests/flows/api/test_flow_documents.py).",
    ),
    Intended(
        "negative_data_rejection",
        (412,),
        "precondition-failed",
        why="A request's preconditions are evaluated before its method is performed (RFC "
        "9110 §13.2.2): an If-Match that is not the current ETag is a 412 whatever the body "
        "holds, so an invalid body sent with a stale If-Match hears of the stale ETag first "
        "(tests/flows/api/test_flow_documents.py).",
    ),
    Intended(
        "positive_data_acceptance",
        (400,),
        "invalid-json-patch",
        why="A JSON Patch whose operations do not apply to the document (a path that is "
        "not there) is a 400 that says which (tests/flows/api/test_flow_documents.py).",
    ),
    Intended(
        "negative_data_rejection",
        (200,),
        "",
        why="An empty filter (?_connectionId=) is no filter, as django-filter and HTML "
        "forms read it (tests/flows/api/test_hostile_input.py::test_an_empty_filter_is_no_filter).",
        only=lambda finding: set(_query_parameter(finding)[1]) == {""},
    ),
    Intended(
        "positive_data_acceptance",
        (400,),
        "invalid-record",
        why="A record's fields are its record type's: one schema serves every record type, "
        "so it cannot name them, and a name that is not a field is a 400 naming it "
        "(tests/flows/api/test_hostile_input.py::test_a_record_field_its_type_lacks_is_400).",
        only=lambda finding: (
            finding.operation.endswith("/api/v1/records/{id}")
            or finding.operation.endswith("/api/v1/records")
        ),
    ),
    Intended(
        "negative_data_rejection",
        (200, 201),
        "",
        why="Execute() with an ExternalTransactionId the account used before answers that "
        "first call's result and changes nothing, whatever else the body holds: a retry "
        "is never refused (tests/surface/test_idempotency.py). The schema's example gives "
        "every generated body the same id.",
        only=lambda finding: (
            finding.operation.startswith("POST /api/rest/execute/")
            and '"ExternalTransactionId"' in finding.sent
        ),
    ),
    Intended(
        "positive_data_acceptance",
        (400,),
        "flow-failed",
        why="A flow judges its own input: a script's error(message, 400) refuses what no "
        "schema states, as the demo's flow `lead` does for a call without a company "
        "(README's example, tests/core/test_readme_curls.py).",
        only=lambda finding: (
            "/Lead%20Registration/lead/" in finding.operation
            or finding.operation.endswith("/api/resources/lead")
        ),
    ),
]


def _short_timeout(finding: Finding) -> bool:
    """The call asked to wait less than a second (?timeout=<ms>, minimum 1)."""
    query = parse_qs(urlsplit(finding.request.split(" ", 1)[1]).query)
    return any(value.isdigit() and int(value) < 1000 for value in query.get("timeout", []))


# 5xx answers the schema documents for what the caller asked. Any other server error fails.
DOCUMENTED_SERVER_ERRORS = [
    Intended(
        "not_a_server_error",
        (504,),
        "timed-out",
        why="A sync call stops its run at the caller's own ?timeout and answers 504 "
        "timed-out, as the schema documents (tests/executions/test_flow_api.py::"
        "test_a_slow_sync_call_times_out_at_its_timeout_with_504). The coverage phase sends "
        "the minimum, 1 ms, which a loaded machine can miss before the script is called. A "
        "504 to a call that waited a second or more is still a finding.",
        only=_short_timeout,
    ),
]


# Server errors this run finds that are to be fixed where they live, outside the files of
# the change that added this run. While one shows up the test xfails, naming it; every other
# server error and every unexplained finding still fails it. Remove an entry once fixed.
KNOWN_SERVER_ERRORS: list[Intended] = []


def findings_in(report: Path) -> list[Finding]:
    found = []
    for line in report.read_text().splitlines():
        scenario = json.loads(line).get("ScenarioFinished")
        if scenario is None:
            continue
        recorder = scenario["recorder"]
        for case_id, checks in recorder.get("checks", {}).items():
            exchange = recorder.get("interactions", {}).get(case_id) or {}
            request = exchange.get("request") or {}
            response = exchange.get("response") or {}
            body = base64.b64decode((response.get("content") or {}).get("$base64", ""))
            sent = base64.b64decode((request.get("body") or {}).get("$base64", ""))
            try:
                problem = json.loads(body).get("type", "").removeprefix("urn:flowsite:problem:")
            except (ValueError, AttributeError):
                problem = ""
            for check in checks:
                if check["status"] != "failure":
                    continue
                failure = check["failure_info"]["failure"]
                found.append(
                    Finding(
                        check=check["name"],
                        operation=failure["operation"],
                        message=failure["message"],
                        request=f"{request.get('method')} {request.get('uri')}",
                        sent=sent.decode(errors="replace"),
                        status=response.get("status_code"),
                        problem=problem,
                    )
                )
    return found


@pytest.fixture
def fuzz_key(transactional_db, settings) -> str:
    """A key for every operation, and resources for ids in paths to hit."""
    # The run sends thousands of requests and bad keys (ignored_auth): no rate limit
    # should hide what an answer would have been.
    settings.FLOWSITE_THROTTLE_RATES = dict.fromkeys(
        settings.FLOWSITE_THROTTLE_RATES, "1000000/min"
    )
    owner = User.objects.create_superuser("fuzz-owner", password="fuzz-pass-123")
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
    demo = install_lead_registration(owner=owner)
    caller = User.objects.create_superuser("fuzz-integration", password=None)
    caller.account_type = User.AccountType.INTEGRATION
    caller.save(update_fields=["account_type"])
    configure_surface(integration_accounts=[demo.account, caller])
    return create_api_key(owner=caller).plaintext


def test_the_api_answers_generated_requests_as_its_schema_says(live_server, fuzz_key, tmp_path):
    auth = f"Bearer {fuzz_key}"
    served = requests.get(
        f"{live_server.url}/api/schema/?format=json", headers={"Authorization": auth}, timeout=30
    )
    served.raise_for_status()
    schema = tmp_path / "schema.json"
    schema.write_text(served.text)
    report = tmp_path / "report.ndjson"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "run", str(schema)),
            *("--url", live_server.url, "--header", f"Authorization: {auth}"),
            *("--checks", "all", "--max-time", str(FUZZ_SECONDS), "--workers", "1"),
            *("--seed", "11", "--generation-database", "none", "--no-color"),
            *("--report", "ndjson", "--report-ndjson-path", str(report)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
        check=False,
    )
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    assert "Runtime Error" not in run.stdout, run.stdout[-5000:]

    findings = findings_in(report)
    known = [f for f in findings if any(i.covers(f) for i in KNOWN_SERVER_ERRORS)]
    # The other checks that failed on those answers (an undocumented 500) go with them.
    known_answers = {(f.request, f.status) for f in known}
    findings = [f for f in findings if (f.request, f.status) not in known_answers]
    documented = [f for f in findings if any(i.covers(f) for i in DOCUMENTED_SERVER_ERRORS)]
    documented_answers = {(f.request, f.status) for f in documented}
    findings = [f for f in findings if (f.request, f.status) not in documented_answers]
    server_errors = [f for f in findings if f.check == "not_a_server_error"]
    assert not server_errors, "\n".join(map(str, server_errors))
    unexplained = [f for f in findings if not any(i.covers(f) for i in INTENDED)]
    assert not unexplained, "\n".join(map(str, unexplained))
    # The run reached the API: the examples alone are dozens of requests per operation.
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated, run.stdout[-3000:]
    assert int(generated.group(1)) > 500, run.stdout[-3000:]
    if known:
        pytest.xfail("Known server errors, to fix:\n" + "\n".join(map(str, known)))
