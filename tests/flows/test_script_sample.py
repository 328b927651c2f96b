"""A script's Test page offers, as sample records, what the script's step received in the
last run that reached it, and says which run; else the typed default."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from apps.accounts.models import User
from apps.executions import launch
from apps.flows.models import Flow, Script

pytestmark = pytest.mark.django_db

SOURCE = "function main(ctx) {\n  return ctx.records;\n}"
TYPED = escape('[{"company": "Acme", "rating": "Hot"}]')


@pytest.fixture
def script(db) -> Script:
    return Script.objects.create(name="Tag", content=SOURCE)


def flow_calling(script: Script, application, flow_name: str = "Tag leads", **step) -> Flow:
    """A flow whose second step calls `script` (the first calls another script)."""
    other = Script.objects.create(name=f"Other of {flow_name}", content=SOURCE)
    return Flow.objects.create(
        application=application,
        name=flow_name,
        page_processors=[
            {"type": "script", "_scriptId": str(other.pk)},
            {"type": "script", "_scriptId": str(script.pk), **step},
        ],
    )


def run(flow: Flow, owner, record: dict):
    execution = launch.admin_test_run(flow, caller=launch.Caller(user=owner), input=record)
    assert execution.status == "succeeded", execution.error
    return execution


def trial_page(client, script) -> str:
    return client.get(f"/admin/flows/script/{script.pk}/test/").content.decode()


def test_without_a_run_the_typed_default_is_offered(admin_client, script):
    html = trial_page(admin_client, script)
    assert TYPED in html
    assert "No run of a flow has given this script records yet" in html


def test_the_last_run_s_records_are_offered_with_a_link_to_the_run(
    admin_client, owner, application, script
):
    flow = flow_calling(script, application)
    run(flow, owner, {"company": "Initech"})
    last = run(flow, owner, {"company": "Globex", "rating": "Warm"})
    html = trial_page(admin_client, script)
    assert escape('"company": "Globex"') in html  # PostgreSQL keeps keys in its own order
    assert escape('"rating": "Warm"') in html
    assert "Initech" not in html
    assert f'href="/admin/executions/execution/{last.pk}/change/"' in html
    assert "step pageProcessors[1] of flow Usage Stats / Tag leads" in html
    assert TYPED not in html


def test_a_step_with_a_name_of_its_own_is_found_too(admin_client, owner, application, script):
    run(flow_calling(script, application, name="Tag them"), owner, {"id": 7})
    assert escape('[{"id": 7}]') in trial_page(admin_client, script)


def test_runs_of_other_scripts_are_not_offered(admin_client, owner, application, script):
    other = Script.objects.create(name="Unrelated", content=SOURCE)
    run(flow_calling(other, application), owner, {"company": "Hooli"})
    html = trial_page(admin_client, script)
    assert "Hooli" not in html
    assert TYPED in html


def test_the_posted_records_are_kept_after_a_trial(admin_client, owner, application, script):
    run(flow_calling(script, application), owner, {"company": "Globex"})
    html = admin_client.post(
        f"/admin/flows/script/{script.pk}/test/",
        {"records": '[{"company": "Typed"}]', "function": "main", "variables": "{}"},
    ).content.decode()
    assert escape('"company": "Typed"') in html
    assert 'id="script-test-result"' in html


def test_an_account_that_may_not_read_runs_gets_the_typed_default(
    client, owner, application, script
):
    run(flow_calling(script, application), owner, {"company": "Secret Corp"})
    user = User.objects.create_user("scripter", password="scripter-pass-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="flows", codename="view_script")
    )
    client.force_login(user)
    html = trial_page(client, script)
    assert "Secret Corp" not in html
    assert TYPED in html


def test_the_page_runs_the_same_queries_with_one_run_and_with_many(
    admin_client, owner, application, script
):
    flows = [flow_calling(script, application, f"Flow {n}") for n in range(3)]
    run(flows[0], owner, {"n": 0})

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(f"/admin/flows/script/{script.pk}/test/").status_code == 200
        return len(captured)

    one = queries()
    for n in range(1, 10):
        run(flows[n % 3], owner, {"n": n})
    assert queries() == one
    assert escape('[{"n": 9}]') in trial_page(admin_client, script)
