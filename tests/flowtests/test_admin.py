"""Flow tests in the admin: Save as test on a recorded run's page, the flow page's tests
with their last result and Run tests, a test's page, Re-run and record."""

import pytest

from apps.executions import launch
from apps.executions.models import Execution
from apps.flows.models import Script
from apps.flowtests import services
from apps.flowtests.models import FlowTest

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(greeting, admin_user):
    return launch.admin_test_run(
        greeting, caller=launch.Caller(user=admin_user), query={"name": "Ada"}
    )


def test_a_recorded_runs_page_has_save_as_test_which_saves_it(admin_client, recorded):
    page = admin_client.get(f"/admin/executions/execution/{recorded.pk}/change/")
    html = page.content.decode()
    assert "save-as-test-link" in html
    assert "run-action-record" not in html  # recorded already
    form = admin_client.get(f"/admin/flowtests/flowtest/save-from/{recorded.pk}/")
    assert form.status_code == 200
    saved = admin_client.post(
        f"/admin/flowtests/flowtest/save-from/{recorded.pk}/", {"name": "Ada"}
    )
    test = FlowTest.objects.get()
    assert saved["Location"] == f"/admin/flowtests/flowtest/{test.pk}/change/"
    again = admin_client.post(
        f"/admin/flowtests/flowtest/save-from/{recorded.pk}/", {"name": "Ada"}
    )
    assert "already" in again.content.decode()
    assert admin_client.get(saved["Location"]).status_code == 200


def test_an_unrecorded_run_offers_re_run_and_record_instead(admin_client, greeting, admin_user):
    job, _ = launch.run(greeting, caller=launch.Caller(user=admin_user))
    Execution.objects.filter(pk=job.pk).update(status="succeeded")
    html = admin_client.get(f"/admin/executions/execution/{job.pk}/change/").content.decode()
    assert "save-as-test-link" not in html
    assert "run-action-record" in html
    answer = admin_client.post(f"/admin/executions/execution/{job.pk}/run-action/record/")
    rerun = Execution.objects.exclude(pk=job.pk).get()
    assert answer["Location"] == f"/admin/executions/execution/{rerun.pk}/change/"
    assert rerun.options["captureForTests"] is True


def test_the_flow_page_lists_its_tests_and_run_tests_reports_the_results(
    admin_client, greeting, recorded, admin_user
):
    services.save_as_test(execution=recorded, name="Greets Ada", user=admin_user)
    url = f"/admin/flows/flow/{greeting.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert "Greets Ada" in html
    assert "not run yet" in html
    assert "run-tests-button" in html
    Script.objects.filter(name="prepareResponse").update(
        content="function main(ctx) { return {statusCode: 200, result: 'Hi'}; }"
    )
    ran = admin_client.post(f"/admin/flowtests/flowtest/run-flow/{greeting.pk}/", follow=True)
    html = ran.content.decode()
    assert "Flow tests: 0 passed, 1 failed: Greets Ada." in html
    assert "flow-test-failed" in html
    assert "pageProcessors[0] (prepareResponse): record 0 out differs" in html
    test = FlowTest.objects.get()
    page = admin_client.get(f"/admin/flowtests/flowtest/{test.pk}/change/").content.decode()
    assert "flow-test-summary" in page
    assert admin_client.get("/admin/flowtests/flowtest/").status_code == 200


def test_the_test_run_page_offers_to_save_its_run_as_a_test(admin_client, greeting):
    url = f"/admin/flows/flow/{greeting.pk}/test-run/"
    assert "save-as-test-link" not in admin_client.get(url).content.decode()
    answer = admin_client.post(url, {"input": "{}", "query": '{"name": "Ada"}', "variables": "{}"})
    html = answer.content.decode()
    run = Execution.objects.get()
    assert f"/admin/flowtests/flowtest/save-from/{run.pk}/" in html


def test_a_tests_page_refuses_an_expected_outcome_of_the_wrong_shape(
    admin_client, recorded, admin_user
):
    test = services.save_as_test(execution=recorded, name="Ada", user=admin_user)
    url = f"/admin/flowtests/flowtest/{test.pk}/change/"
    form = {"name": "Ada", "ignored_fields": '["updatedAt"]', "relaxed": '["query"]'}
    refused = admin_client.post(url, {**form, "expected": '{"steps": "x"}'})
    assert refused.status_code == 200
    assert "steps: {" in refused.content.decode()
    saved = admin_client.post(url, {**form, "expected": '{"status": "succeeded"}'})
    assert saved.status_code == 302
    test.refresh_from_db()
    assert (test.expected, test.ignored_fields) == ({"status": "succeeded"}, ["updatedAt"])


@pytest.fixture
def test_editor(client, django_user_model):
    """Staff who may edit flow tests and nothing else (an outside probe's "tester")."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("tester", password="tester-pass-1", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="flowtests",
            codename__in=["add_flowtest", "change_flowtest", "view_flowtest", "delete_flowtest"],
        )
    )
    client.force_login(user)
    return client


def test_a_flow_test_editor_cannot_save_a_run_they_may_not_read_as_a_test(test_editor, recorded):
    """It copied the run's answer and every step's records into a test they could read."""
    assert test_editor.get(f"/admin/executions/execution/{recorded.pk}/change/").status_code == 403

    answer = test_editor.post(
        f"/admin/flowtests/flowtest/save-from/{recorded.pk}/", {"name": "stolen"}
    )

    assert answer.status_code == 302
    assert answer["Location"] == "/admin/"
    assert not FlowTest.objects.exists()


def test_a_flow_test_editor_without_a_privilege_cannot_run_a_flows_tests(
    test_editor, greeting, recorded, admin_user
):
    test = services.save_as_test(execution=recorded, name="Greets Ada", user=admin_user)

    answer = test_editor.post(f"/admin/flowtests/flowtest/run-flow/{greeting.pk}/")

    assert answer["Location"] == "/admin/"
    test.refresh_from_db()
    assert test.last_run_at is None


def test_a_flow_test_editor_without_a_privilege_cannot_run_tests_from_the_list(
    test_editor, recorded, admin_user
):
    """The review: the list's bulk action ran them where the flow page's button refused."""
    test = services.save_as_test(execution=recorded, name="Greets Ada", user=admin_user)

    page = test_editor.get("/admin/flowtests/flowtest/").content.decode()
    test_editor.post(
        "/admin/flowtests/flowtest/", {"action": "run_selected", "_selected_action": [test.pk]}
    )

    assert 'value="delete_selected"' in page  # the list offers actions, but not this one
    assert 'value="run_selected"' not in page
    test.refresh_from_db()
    assert test.last_run_at is None
