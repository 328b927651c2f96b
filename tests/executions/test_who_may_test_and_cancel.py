"""The admin's Test run and every Cancel ask what Run now and Retry ask: run_flows and one of
the flow's api.roles (found by an outside probe: a Test run ran a flow for an account that
Run now refused, and Cancel needed no more than seeing the run)."""

from django.contrib.auth.models import Permission
from django.test import Client

from apps.accounts.models import Role, User
from apps.accounts.privileges import Privilege
from apps.executions import services as executions
from apps.executions.models import Execution
from apps.flows.models import Flow
from tests.conftest import grant


def staff(name: str, *codenames: str) -> Client:
    user = User.objects.create_user(name, password=f"{name}-pass-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_a_test_run_needs_run_flows_as_run_now_does(application):
    flow = Flow.objects.create(
        application=application, name="f", page_processors=[], api={"enabled": True}
    )
    editor = staff("editor", "view_flow", "change_flow")  # may edit the flow, not run it

    page = editor.post(
        f"/admin/flows/flow/{flow.pk}/test-run/",
        {"input": "{}", "query": "{}", "variables": "{}"},
    )

    assert page.status_code == 200
    assert "run_flows" in page.content.decode()
    assert not Execution.objects.exists()


def test_cancelling_a_run_needs_a_role_of_its_flow_as_retrying_does(
    application, key_client, member, callers_role
):
    grant(callers_role, Privilege.VIEW_EXECUTIONS)
    flow = Flow.objects.create(
        application=application,
        name="sales only",
        page_processors=[],
        api={"enabled": True, "roles": ["Sales"]},
    )
    run = executions.create_execution(flow=flow, trigger="run", caller=None)
    client = key_client(member)

    refused = client.post(f"/api/v1/jobs/{run.pk}/cancel")

    assert refused.status_code == 403, refused.content
    assert refused.json()["roles"] == ["Sales"]
    run.refresh_from_db()
    assert run.status == "queued"
    Role.objects.create(name="Sales").members.add(member)
    assert client.post(f"/api/v1/jobs/{run.pk}/cancel").status_code == 200
    run.refresh_from_db()
    assert (run.status, run.status_code) == ("cancelled", 409)  # as its caller is answered
