"""Flow tests in bundles (a flow's and an integration's download/import) and the per-flow
guard on save: the hooks this app registers in apps.flows.flow_tests.

A bundle never holds secrets, so a test travels with its recording redacted: secret-looking
fields are replaced, as are the values of its trigger's secrets and of the flow's secret
variables. Its sub-flow calls are rewired to the installed copies. A recorded URL keeps the
connection's base URI: a test installed against another connection fails on its URLs until
`relaxed` allows "url".
"""

import json
from typing import Any

from apps.core.redaction import redact, scrub
from apps.flows import crypto
from apps.flows.engine.capture import RELAXABLE
from apps.flows.models import Flow
from apps.flows.services import BundleError
from apps.flowtests import replay
from apps.flowtests.models import FlowTest


def export(flows: list[Flow]) -> list[dict]:
    documents = []
    for test in FlowTest.objects.filter(flow__in=flows).select_related("flow").order_by("pk"):
        try:
            recording = crypto.decrypt_json(test.recording)
        except ValueError:
            continue  # a recording this instance cannot read cannot travel either
        secrets = replay.secrets_of(recording, test.flow)
        documents.append(
            {
                "_id": str(test.pk),
                "_flowId": str(test.flow_id),
                "name": test.name,
                "expected": scrub(redact(test.expected), secrets),
                "ignoredFields": test.ignored_fields,
                "relaxed": test.relaxed,
                "recording": scrub(_bodies_redacted(recording), secrets),
            }
        )
    return documents


def _bodies_redacted(value: Any) -> Any:
    """A copy whose recorded bodies kept as JSON text have their secret-looking fields
    replaced (scrub replaces the others): a response body is kept as its text, which
    redaction by field name did not see (a login's access_token travelled in bundles; an
    outside probe)."""
    if isinstance(value, dict):
        return {
            key: _json_text_redacted(item) if key == "body" else _bodies_redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_bodies_redacted(item) for item in value]
    return value


def _json_text_redacted(body: Any) -> Any:
    if not isinstance(body, str):
        return _bodies_redacted(body)
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict | list):
        return body
    return json.dumps(redact(document), ensure_ascii=False)


def _checked(document: Any, where: str) -> dict:
    if not isinstance(document, dict):
        raise BundleError({where: ["Expected an object."]})
    problems = {}
    if not isinstance(document.get("name"), str) or not document["name"].strip():
        problems[f"{where}.name"] = ["Expected a name."]
    for key in ("expected", "recording"):
        if not isinstance(document.get(key), dict):
            problems[f"{where}.{key}"] = ["Expected an object."]
    ignored = document.get("ignoredFields", [])
    if not (isinstance(ignored, list) and all(isinstance(i, str) for i in ignored)):
        problems[f"{where}.ignoredFields"] = ["Expected a list of field names."]
    relaxed = document.get("relaxed", [])
    if not (isinstance(relaxed, list) and set(relaxed) <= set(RELAXABLE)):
        problems[f"{where}.relaxed"] = [f"Expected a list of {', '.join(RELAXABLE)}."]
    if problems:
        raise BundleError(problems)
    return document


def install(documents: list[dict], flow_ids: dict[str, str], user) -> None:
    names: dict[tuple[str, str], int] = {}  # a flow's test names are unique (a 500 before)
    for index, document in enumerate(documents):
        document = _checked(document, f"tests[{index}]")
        new_flow = flow_ids.get(str(document.get("_flowId")))
        if new_flow is None:
            continue  # a test of a flow that is not in the bundle
        name = document["name"].strip()[:200]
        if (twin := names.setdefault((new_flow, name), index)) != index:
            raise BundleError(
                {f"tests[{index}].name": [f"tests[{twin}] of the same flow is named {name!r}."]}
            )
        recording = document["recording"]
        for call in recording.get("subflows") or []:
            if str(call.get("flowId")) in flow_ids:
                call["flowId"] = int(flow_ids[str(call["flowId"])])
        recording["flowId"] = int(new_flow)
        FlowTest.objects.create(
            flow_id=int(new_flow),
            name=name,
            recording=crypto.encrypt_json(recording),
            expected=document["expected"],
            ignored_fields=document.get("ignoredFields", []),
            relaxed=document.get("relaxed", []),
            created_by=user if user is not None and user.is_authenticated else None,
        )


def failing(flow: Flow) -> list[dict]:
    """The flow's tests that fail against the flow as it is about to be saved."""
    failed = []
    for test in FlowTest.objects.filter(flow_id=flow.pk).order_by("name"):
        report = replay.replay(test, flow)
        if report["result"] != "passed":
            failed.append({"_id": str(test.pk), "name": test.name, "summary": report["summary"]})
    return failed
