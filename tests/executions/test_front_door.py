"""One front door (issue 10): every way of starting a run obeys the same rules.

A flow with maxConcurrency 1 and the reject policy is held running; then each entry point
tries to start another run of it. Each must refuse, the way its caller understands, and
leave no new run behind. A repeated Idempotency-Key answers the run it started.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.contrib import messages
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.executions.models import Execution
from apps.executions.tasks import run_scheduled_flow
from apps.flows.models import Export, Flow
from apps.records.models import Record, RecordField, RecordType
from apps.surface import services as surface
from apps.surface.models import Operation
from tests.conftest import grant
from tests.executions.conftest import as_json, call
from tests.executions.honest import (
    PROBLEM,
    Hold,
    assert_problem,
    held_run,
    is_concurrency_problem,
    mentions_the_limit,
    script_flow,
    trigger_url,
)

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Door:
    """What the entry points need: the busy flow and a client for each kind of caller."""

    live_server: object
    flow: Flow
    key: str
    manager: object
    admin: object

    def earlier_failed_run(self) -> Execution:
        """A finished failed run of the busy flow, for the retries to try again."""
        return Execution.objects.create(
            flow=self.flow,
            flow_name=str(self.flow),
            trigger=Execution.Trigger.API,
            mode=Execution.Mode.SYNC,
            status=Execution.Status.FAILED,
            status_code=500,
            error="boom 42",
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )


def refused_with_409(response) -> None:
    """A urllib3 answer refusing the run for the flow's concurrency limit."""
    problem = assert_problem(response, 409)
    assert is_concurrency_problem(problem), problem


def refused_with_409_by_api(answer) -> None:
    """The same for an APIClient answer."""
    assert answer.status_code == 409, answer.content
    assert answer["Content-Type"].startswith(PROBLEM)
    assert is_concurrency_problem(answer.json()), answer.json()


def error_messages(page) -> list[str]:
    return [str(m) for m in page.context["messages"] if m.level >= messages.WARNING]


def api_trigger(door: Door) -> None:
    refused_with_409(call(door.live_server, "GET", trigger_url(door.flow), key=door.key))


def management_run(door: Door) -> None:
    refused_with_409_by_api(
        door.manager.post(f"/api/v1/flows/{door.flow.pk}/run", {}, format="json")
    )


def api_retry(door: Door) -> None:
    earlier = door.earlier_failed_run()
    refused_with_409_by_api(door.manager.post(f"/api/v1/jobs/{earlier.pk}/retry"))


def admin_run_now(door: Door) -> None:
    page = door.admin.post(
        "/admin/flows/flow/",
        {"action": "run_now", "_selected_action": [door.flow.pk]},
        follow=True,
    )
    assert page.status_code == 200
    assert any(mentions_the_limit(text) for text in error_messages(page)), error_messages(page)


def admin_test_run(door: Door) -> None:
    url = f"/admin/flows/flow/{door.flow.pk}/test-run/"
    before = door.admin.get(url).content.decode()
    assert "maximum" not in before.lower()  # so that the word below is the refusal's
    page = door.admin.post(
        url, {"input": "{}", "query": "{}", "variables": "{}"}, follow=True
    ).content.decode()
    result = page[page.find('id="content"') :][:1500]  # the page's own part, for the report
    assert "maximum" in page.lower(), result


def admin_retry(door: Door) -> None:
    earlier = door.earlier_failed_run()
    page = door.admin.post(
        "/admin/executions/execution/",
        {"action": "retry", "_selected_action": [earlier.pk]},
        follow=True,
    )
    assert page.status_code == 200
    assert any(mentions_the_limit(text) for text in error_messages(page)), error_messages(page)


def schedule(door: Door) -> None:
    Flow.objects.filter(pk=door.flow.pk).update(schedule="0 9 * * *")  # a tick of it
    started = run_scheduled_flow(door.flow.pk)
    run = Execution.objects.get(pk=started)
    assert (run.status, run.status_code) == ("cancelled", 409)


def subflow(door: Door) -> None:
    parent = Flow.objects.create(
        application=door.flow.application,
        name="parent",
        page_processors=[{"type": "flow", "_flowId": str(door.flow.pk)}],
        api={"enabled": True, "method": "POST", "mode": "sync", "timeout": 10_000},
    )
    response = call(door.live_server, "POST", trigger_url(parent), key=door.key, body={"n": 1})
    process_id = as_json(response)["processId"]
    errors = door.manager.get(f"/api/v1/jobs/{process_id}/errors").json()
    assert errors, f"the parent's record did not fail: {response.status} {response.data[:500]}"
    assert mentions_the_limit(errors[0]["message"]), errors
    assert errors[0]["record"] == {"n": 1}


def execute(door: Door) -> None:
    application = door.flow.application
    lead = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=lead, name="Company", required=True, position=0)
    operation = Operation(
        application=application,
        record_type=lead,
        name="Register Lead",
        action="create",
        rest_execute=True,
        flow=door.flow,
    )
    operation.full_clean()
    operation.save()
    role = Role.objects.create(name="Surface users")
    grant(role, Privilege.USE_API_KEY, Privilege.EXECUTE_OPERATIONS)
    restuser = User.objects.create_user(
        "restuser", password="rest-pass-123", account_type=User.AccountType.INTEGRATION
    )
    role.members.add(restuser)
    surface.configure_surface(execute=True, integration_accounts=[restuser])

    response = call(
        door.live_server,
        "POST",
        f"/api/rest/execute/{quote(application.name)}/Register%20Lead",
        key=create_api_key(owner=restuser).plaintext,
        body={"RecordID": None, "Company": "Acme"},
    )

    refused_with_409(response)
    assert not Record.objects.exists()


ENTRY_POINTS: list[Callable[[Door], None]] = [
    api_trigger,
    management_run,
    api_retry,
    admin_run_now,
    admin_test_run,
    admin_retry,
    schedule,
    subflow,
    execute,
]


@pytest.fixture
def busy_flow(sales, local_api, httpserver):
    """A reject-policy flow allowed one run at a time, whose page waits at a Hold."""
    hold = Hold(httpserver, "/busy", [{"id": 1}])
    export = Export.objects.create(name="Busy page", connection=local_api, relative_uri="/busy")
    flow = script_flow(
        sales,
        "one at a time",
        "function main(ctx) { return ctx.records; }",
        generators=[export],
        api={"enabled": True, "method": "GET", "mode": "sync"},
        max_concurrency=1,
        concurrency_policy="reject",
    )
    return flow, hold


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda entry: entry.__name__)
def test_every_entry_point_refuses_a_run_of_a_busy_reject_policy_flow(
    live_server, busy_flow, caller_key, manager, admin_client, entry
):
    flow, hold = busy_flow
    door = Door(live_server, flow, caller_key, manager, admin_client)

    with held_run(live_server, flow, hold, caller_key) as held:
        runs_before = set(Execution.objects.filter(flow=flow).values_list("pk", flat=True))
        entry(door)
        earlier = Execution.objects.filter(flow=flow, status="failed", error="boom 42")
        new_runs = (
            Execution.objects.filter(flow=flow)
            .exclude(pk__in=runs_before)
            .exclude(pk__in=earlier.values("pk"))
        )
        if entry is schedule:  # a tick may leave its refused run, cancelled with 409
            outcomes = set(new_runs.values_list("status", "status_code"))
            assert outcomes <= {("cancelled", 409)}, outcomes
        else:
            assert not new_runs.exists(), list(new_runs.values("trigger", "status"))

    assert held.response.status == 200, held.response.data[:2000]
    never_ran = Execution.objects.filter(flow=flow).exclude(pk=held.execution.pk)
    assert not never_ran.filter(status="succeeded").exists()


# --- a repeated Idempotency-Key answers the same run ------------------------------------------


def run_by_trigger(live_server, flow, key, manager, idempotency_key) -> str:
    response = call(
        live_server,
        "POST",
        trigger_url(flow),
        key=key,
        headers={"Idempotency-Key": idempotency_key},
        body={"order": 7},
    )
    assert response.status == 200, response.data[:2000]
    return as_json(response)["processId"]


def run_by_management_api(live_server, flow, key, manager, idempotency_key) -> str:
    answer = manager.post(
        f"/api/v1/flows/{flow.pk}/run",
        {"input": {"order": 7}},
        format="json",
        HTTP_IDEMPOTENCY_KEY=idempotency_key,
    )
    assert answer.status_code in (200, 201), answer.content
    body = answer.json()
    return body.get("processId") or body["_id"]


@pytest.mark.parametrize(
    "start", [run_by_trigger, run_by_management_api], ids=["API trigger", "management run"]
)
def test_a_repeated_idempotency_key_answers_the_same_run_even_under_the_reject_policy(
    live_server, sales, caller_key, manager, start
):
    # A repeat is the same run, not a second one: the reject policy must not refuse it even
    # while the first is still queued or running.
    flow = script_flow(
        sales,
        "once",
        "function main(ctx) { return [{done: true}]; }",
        api={"enabled": True, "method": "POST", "mode": "sync"},
        max_concurrency=1,
        concurrency_policy="reject",
    )

    first = start(live_server, flow, caller_key, manager, "order-7")
    second = start(live_server, flow, caller_key, manager, "order-7")

    assert first == second
    assert Execution.objects.filter(flow=flow).count() == 1
