"""A run's admin page: Retry, Re-run with the same input and Cancel buttons, each through
the front door (apps/executions/launch.py); process ids searchable by their first
characters."""

import re

import pytest
from django.urls import reverse

from apps.executions.models import Execution

pytestmark = pytest.mark.django_db
Status = Execution.Status


def a_run(flow, status, **values) -> Execution:
    return Execution.objects.create(
        flow=flow,
        flow_name=str(flow),
        trigger=Execution.Trigger.API,
        mode="sync",
        status=status,
        request={"method": "GET", "query": {"name": "Ada"}, "headers": {}},
        input={},
        **values,
    )


def page(admin_client, execution) -> str:
    """The run page's buttons, as the classes of its <button> elements."""
    url = reverse("admin:executions_execution_change", args=[execution.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    return " ".join(re.findall(r'<button type="submit" class="([^"]*)"', response.content.decode()))


def press(admin_client, execution, action):
    url = reverse("admin:executions_execution_run_action", args=[execution.pk, action])
    return admin_client.post(url, follow=True)


def test_a_failed_run_offers_retry_and_re_run_and_retry_queues_a_linked_run(admin_client, greeting):
    failed = a_run(greeting, Status.FAILED, error="Script failed")
    html = page(admin_client, failed)
    assert "run-action-retry" in html
    assert "run-action-rerun" in html
    assert "run-action-cancel" not in html

    response = press(admin_client, failed, "retry")

    retry = Execution.objects.get(retry_of=failed)
    assert retry.status == Status.QUEUED
    assert retry.trigger == Execution.Trigger.RETRY
    assert response.redirect_chain[-1][0].endswith(f"/{retry.pk}/change/")
    assert "Queued a retry:" in response.content.decode()


def test_a_succeeded_run_can_only_be_re_run_whole(admin_client, greeting):
    succeeded = a_run(greeting, Status.SUCCEEDED)
    html = page(admin_client, succeeded)
    assert "run-action-rerun" in html
    assert "run-action-retry" not in html

    press(admin_client, succeeded, "rerun")

    rerun = Execution.objects.get(retry_of=succeeded)
    assert rerun.status == Status.QUEUED
    assert rerun.request["query"] == {"name": "Ada"}
    assert "resume" not in rerun.options


def test_a_running_run_offers_cancel_and_cancel_asks_it_to_stop(admin_client, greeting):
    running = a_run(greeting, Status.RUNNING)
    html = page(admin_client, running)
    assert "run-action-cancel" in html
    assert "run-action-retry" not in html

    response = press(admin_client, running, "cancel")

    running.refresh_from_db()
    assert running.cancel_requested
    assert "Asked the run to stop." in response.content.decode()


def test_a_refused_action_says_why_and_changes_nothing(admin_client, greeting):
    succeeded = a_run(greeting, Status.SUCCEEDED)
    response = press(admin_client, succeeded, "retry")  # not offered: nothing failed
    assert "there is nothing to retry" in response.content.decode()
    assert not Execution.objects.filter(retry_of=succeeded).exists()


def test_an_action_needs_a_post(admin_client, greeting):
    failed = a_run(greeting, Status.FAILED)
    url = reverse("admin:executions_execution_run_action", args=[failed.pk, "retry"])
    assert admin_client.get(url).status_code == 302
    assert not Execution.objects.filter(retry_of=failed).exists()


def test_a_process_id_is_found_by_its_first_characters(admin_client, greeting):
    wanted, other = a_run(greeting, Status.SUCCEEDED), a_run(greeting, Status.SUCCEEDED)
    prefix = str(wanted.pk)[:8]
    html = admin_client.get("/admin/executions/execution/", {"q": prefix}).content.decode()
    assert prefix in html
    assert str(other.pk)[:8] not in html


def test_the_flow_list_says_enabled_and_view_site_leads_to_the_admin(admin_client, greeting):
    html = admin_client.get("/admin/flows/flow/").content.decode()
    assert "column-enabled" in html
    assert "column-disabled" not in html
    assert 'href="/admin/"' in admin_client.get("/admin/").content.decode()
