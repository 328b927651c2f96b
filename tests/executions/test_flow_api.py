"""Flows as APIs, called over HTTP on a live server (seeds 000 and 001)."""

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.accounts.models import Role
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.executions.models import Execution
from apps.flows.models import Application, Flow, Script
from tests.conftest import grant
from tests.executions.conftest import as_json, call

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_000_greeting_as_a_resource(live_server, greeting, caller_key):
    response = call(live_server, "GET", "/api/resources/greeting?name=Leor", key=caller_key)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert as_json(response) == "Hello Leor"
    execution = Execution.objects.get()
    assert (execution.trigger, execution.mode, execution.caller.username) == (
        "api",
        "sync",
        "erp-sync",
    )


def test_seed_001_sync_trigger_answers_with_the_output_named_in_the_flow(
    live_server, leads, caller_key
):
    response = call(
        live_server, "GET", "/api/1/action/Sales%20Ops/Hot%20leads/trigger", key=caller_key
    )
    assert response.status == 200, response.data
    body = as_json(response)
    assert body["status"] == "succeeded"
    assert [lead["company"] for lead in body["data"]["Leads"]] == ["Acme", "Globex"]
    assert Execution.objects.get(pk=body["processId"]).status == "succeeded"


def test_the_bare_phixflow_key_and_the_legacy_url_work(live_server, leads, caller_key):
    response = call(
        live_server, "POST", "/api/1/action/Hot%20leads/trigger", key=caller_key, bare=True
    )
    assert response.status == 200, response.data
    assert len(as_json(response)["data"]["Leads"]) == 2


def test_a_flow_name_in_two_applications_is_ambiguous_on_the_legacy_url(
    live_server, leads, caller_key
):
    other = Application.objects.create(name="Other")
    Flow.objects.create(application=other, name="Hot leads")  # not an API: does not count
    assert (
        call(live_server, "GET", "/api/1/action/Hot%20leads/trigger", key=caller_key).status == 200
    )
    Flow.objects.create(application=other, name="Hot leads 2")
    Flow.objects.filter(application=other, name="Hot leads").update(api_enabled=True)
    response = call(live_server, "GET", "/api/1/action/Hot%20leads/trigger", key=caller_key)
    assert response.status == 409
    assert sorted(as_json(response)["urls"]) == [
        "/api/1/action/Other/Hot%20leads/trigger",
        "/api/1/action/Sales%20Ops/Hot%20leads/trigger",
    ]
    anonymous = call(live_server, "GET", "/api/1/action/Hot%20leads/trigger")
    assert anonymous.status == 401  # an anonymous caller learns no application names


def test_anonymous_calls_need_allow_anonymous(live_server, greeting):
    response = call(live_server, "GET", "/api/resources/greeting?name=Ann")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"]
    greeting.api = {**greeting.api, "allowAnonymous": True}
    greeting.save()
    response = call(live_server, "GET", "/api/resources/greeting?name=Ann")
    assert response.status == 200
    assert as_json(response) == "Hello Ann"
    execution = Execution.objects.get()
    assert (execution.caller_label, execution.caller_ip) == ("anonymous", "127.0.0.1")


def test_a_flow_naming_roles_is_never_called_anonymously(live_server, greeting, caller_key):
    """An outside probe: with roles and allowAnonymous both set, its key was refused (403,
    not a member) but leaving the key out ran the flow."""
    greeting.api = {**greeting.api, "allowAnonymous": True, "roles": ["Partners"]}
    greeting.save()

    keyed = call(live_server, "GET", "/api/resources/greeting?name=Ann", key=caller_key)
    anonymous = call(live_server, "GET", "/api/resources/greeting?name=Ann")

    assert keyed.status == 403
    assert anonymous.status == 401
    assert not Execution.objects.exists()


def test_trigger_data_reaches_the_flow_as_in_the_seeds(live_server, sales, caller_key):
    echo = Script.objects.create(
        name="echo",
        content="function main(ctx) { return {statusCode: 201, body: ctx.trigger.args.request}; }",
    )
    Flow.objects.create(
        application=sales,
        name="echo",
        page_processors=[{"type": "script", "_scriptId": str(echo.pk)}],
        api={"enabled": True},
    )
    response = call(
        live_server,
        "POST",
        "/api/1/action/Sales%20Ops/echo/trigger?tag=a&tag=b&one=1",
        key=caller_key,
        headers={"X-Trace": "t1"},
        body={"order": 7},
    )
    assert response.status == 201
    request = as_json(response)
    assert request["method"] == "POST"
    assert request["query"] == {"tag": ["a", "b"], "one": "1"}
    assert request["body"] == {"order": 7}
    assert request["contentType"] == "application/json"
    assert request["headers"]["x-trace"] == "t1"
    assert "authorization" not in request["headers"]  # the Flowsite key is never a step's
    form = call(
        live_server,
        "POST",
        "/api/1/action/Sales%20Ops/echo/trigger",
        key=caller_key,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="a=1&a=2&b=x",
    )
    assert as_json(form)["body"] == {"a": ["1", "2"], "b": "x"}
    text = call(
        live_server,
        "POST",
        "/api/1/action/Sales%20Ops/echo/trigger",
        key=caller_key,
        headers={"Content-Type": "text/plain"},
        body="hello",
    )
    assert as_json(text)["body"] == "hello"


def test_a_slow_sync_call_times_out_at_its_timeout_with_504(live_server, slow_flow, caller_key):
    slow_flow("slow", 3, api={"enabled": True})
    started = time.monotonic()
    response = call(
        live_server, "GET", "/api/1/action/Sales%20Ops/slow/trigger?timeout=500", key=caller_key
    )
    elapsed = time.monotonic() - started
    assert response.status == 504
    assert elapsed < 1.5
    problem = as_json(response)
    run = Execution.objects.get(pk=problem["processId"])
    assert (run.status, run.status_code) == ("timed_out", 504)  # the job says what was answered


def test_error_with_a_status_sets_the_answer(live_server, sales, caller_key):
    refuse = Script.objects.create(
        name="refuse", content="function main(ctx) { error('Order 7 is closed', 422); }"
    )
    Flow.objects.create(
        application=sales,
        name="refuse",
        page_processors=[{"type": "script", "_scriptId": str(refuse.pk)}],
        api={"enabled": True},
    )
    response = call(live_server, "POST", "/api/1/action/Sales%20Ops/refuse/trigger", key=caller_key)
    assert response.status == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = as_json(response)
    assert problem["detail"] == "Order 7 is closed"
    assert problem["processId"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/1/action/Nope/greeting/trigger", 404),
        ("/api/1/action/Sales%20Ops/nope/trigger", 404),
        ("/api/resources/nope", 404),
        ("/api/1/action/Sales%20Ops/greeting/poll/3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11", 404),
    ],
)
def test_unknown_things_are_404_problems(live_server, greeting, caller_key, path, status):
    response = call(live_server, "GET", path, key=caller_key)
    assert response.status == status
    assert response.headers["Content-Type"] == "application/problem+json"


def test_bad_calls_get_the_right_problem(live_server, greeting, caller_key, sales):
    wrong_method = call(live_server, "POST", "/api/resources/greeting", key=caller_key)
    assert (wrong_method.status, wrong_method.headers["Allow"]) == (405, "GET")
    greeting.api = {**greeting.api, "method": "POST"}
    greeting.save()
    url = "/api/resources/greeting"
    malformed = call(
        live_server,
        "POST",
        url,
        key=caller_key,
        body='{"a":',
        headers={"Content-Type": "application/json"},
    )
    assert (malformed.status, as_json(malformed)["column"]) == (400, 6)
    wrong_type = call(
        live_server, "POST", url, key=caller_key, body="x", headers={"Content-Type": "image/png"}
    )
    assert wrong_type.status == 415
    greeting.disabled = True
    greeting.save()
    disabled = call(live_server, "POST", url, key=caller_key, body={})
    assert disabled.status == 409
    assert "disabled" in as_json(disabled)["detail"]


def test_schema_violations_are_listed_one_by_one(live_server, greeting, caller_key):
    greeting.api = {
        **greeting.api,
        "method": "POST",
        "inputSchema": {
            "type": "object",
            "required": ["name", "age"],
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        },
    }
    greeting.save()
    response = call(
        live_server, "POST", "/api/resources/greeting", key=caller_key, body={"name": 5, "extra": 1}
    )
    assert response.status == 400
    errors = as_json(response)["errors"]
    assert {(e["pointer"], e["detail"]) for e in errors} == {
        ("#", "'age' is a required property"),
        ("#/name", "5 is not of type 'string'"),
    }
    assert not Execution.objects.exists()


def test_privilege_role_and_key_restriction_are_enforced(
    live_server, greeting, outsider, integration, callers_role
):
    outsider_role = Role.objects.create(name="Use keys only")
    grant(outsider_role, Privilege.USE_API_KEY)
    outsider_role.members.add(outsider)
    no_privilege = call(
        live_server, "GET", "/api/resources/greeting", key=create_api_key(owner=outsider).plaintext
    )
    assert (no_privilege.status, as_json(no_privilege)["privilege"]) == (403, "run_flows")

    greeting.api = {**greeting.api, "roles": ["Greeters"]}
    greeting.save()
    key = create_api_key(owner=integration).plaintext
    assert call(live_server, "GET", "/api/resources/greeting", key=key).status == 403
    Role.objects.create(name="Greeters").members.add(integration)
    assert call(live_server, "GET", "/api/resources/greeting?name=x", key=key).status == 200

    other = Flow.objects.create(application=greeting.application, name="other")
    restricted = create_api_key(owner=integration, flows=[other])
    response = call(live_server, "GET", "/api/resources/greeting", key=restricted.plaintext)
    assert (response.status, as_json(response)["detail"]) == (
        403,
        "This API key is restricted to other flows.",
    )
    only_greeting = create_api_key(owner=integration, flows=[greeting])
    assert (
        call(
            live_server, "GET", "/api/resources/greeting?name=y", key=only_greeting.plaintext
        ).status
        == 200
    )
    other.delete()  # a key restricted to a deleted flow stays restricted: to nothing
    assert (
        call(live_server, "GET", "/api/resources/greeting", key=restricted.plaintext).status == 403
    )


def test_same_idempotency_key_same_request_same_run_different_request_422(
    live_server, greeting, caller_key
):
    headers = {"Idempotency-Key": "order-7"}
    first = call(
        live_server, "GET", "/api/resources/greeting?name=A", key=caller_key, headers=headers
    )
    second = call(
        live_server, "GET", "/api/resources/greeting?name=A", key=caller_key, headers=headers
    )
    assert (first.status, second.status) == (200, 200)
    assert first.data == second.data
    assert Execution.objects.count() == 1
    different = call(
        live_server, "GET", "/api/resources/greeting?name=B", key=caller_key, headers=headers
    )
    assert different.status == 422
    assert as_json(different)["processId"] == str(Execution.objects.get().pk)


def test_concurrency_reject_policy_refuses_calls_over_the_maximum(
    live_server, slow_flow, caller_key
):
    slow_flow(
        "one-at-a-time",
        1,
        api={"enabled": True},
        max_concurrency=1,
        concurrency_policy="reject",
    )
    with ThreadPoolExecutor(5) as pool:
        responses = list(
            pool.map(
                lambda _: call(
                    live_server,
                    "GET",
                    "/api/1/action/Sales%20Ops/one-at-a-time/trigger",
                    key=caller_key,
                ),
                range(5),
            )
        )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 409, 409, 409, 409]
    assert all(r.headers["Retry-After"] for r in responses if r.status == 409)
    assert Execution.objects.count() == 1


def test_concurrency_queue_policy_runs_calls_one_after_another(live_server, slow_flow, caller_key):
    slow_flow("queued", 0.3, api={"enabled": True}, max_concurrency=1, concurrency_policy="queue")
    with ThreadPoolExecutor(3) as pool:
        responses = list(
            pool.map(
                lambda _: call(
                    live_server, "GET", "/api/1/action/Sales%20Ops/queued/trigger", key=caller_key
                ),
                range(3),
            )
        )
    assert [r.status for r in responses] == [200, 200, 200]
    runs = sorted(Execution.objects.all(), key=lambda e: e.started_at)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at <= later.started_at  # never two at once


def test_only_the_caller_or_a_viewer_may_poll(live_server, greeting, caller_key, outsider, owner):
    greeting.api = {**greeting.api, "allowAnonymous": False}
    greeting.save()
    response = call(live_server, "GET", "/api/resources/greeting?name=P", key=caller_key)
    process_id = Execution.objects.get().pk
    poll = f"/api/1/action/Sales%20Ops/greeting/poll/{process_id}"
    mine = call(live_server, "GET", poll, key=caller_key)
    assert (response.status, mine.status) == (200, 200)
    assert as_json(mine) == {
        "processId": str(process_id),
        "status": "succeeded",
        "statusCode": 200,
        "headers": {},
        "body": "Hello P",
    }
    role = Role.objects.create(name="keys")
    grant(role, Privilege.USE_API_KEY)
    role.members.add(outsider)
    assert (
        call(live_server, "GET", poll, key=create_api_key(owner=outsider).plaintext).status == 404
    )
    assert call(live_server, "GET", poll, key=create_api_key(owner=owner).plaintext).status == 200


def test_a_run_is_polled_only_under_its_own_application_and_flow(
    live_server, greeting, caller_key, sales
):
    call(live_server, "GET", "/api/resources/greeting?name=P", key=caller_key)
    process_id = Execution.objects.get().pk
    other = Flow.objects.create(application=sales, name="other")

    def poll(application: str, flow: str) -> int:
        path = f"/api/1/action/{application}/{flow}/poll/{process_id}"
        return call(live_server, "GET", path, key=caller_key).status

    assert poll("Sales%20Ops", "greeting") == 200
    process_id = str(process_id).upper()  # as .NET clients write GUIDs (an outside probe)
    assert poll("Sales%20Ops", "greeting") == 200
    assert poll("Sales%20Ops", other.name) == 404
    assert poll("Sales%20ops", "greeting") == 404  # names are matched exactly
    assert poll("Other", "greeting") == 404
    assert poll("Sales%20Ops", "Greeting") == 404
