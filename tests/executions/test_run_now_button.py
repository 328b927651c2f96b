"""The flow page's Run now: one run through the front door, then that run's page."""

import pytest

from apps.accounts.models import User
from apps.executions.models import Execution
from apps.flows.models import Flow

pytestmark = pytest.mark.django_db


def test_run_now_queues_one_run_and_opens_its_page(admin_client, application):
    flow = Flow.objects.create(application=application, name="Greeting")
    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert f'action="/admin/flows/flow/{flow.pk}/run-now/"' in page

    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/run-now/")
    run = Execution.objects.get(flow=flow)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/executions/execution/{run.pk}/change/"
    assert run.trigger == Execution.Trigger.RUN


def test_run_now_is_a_post_and_refusals_are_said_on_the_flow_page(admin_client, application):
    flow = Flow.objects.create(application=application, name="Greeting", disabled=True)
    response = admin_client.get(f"/admin/flows/flow/{flow.pk}/run-now/")
    assert response["Location"] == f"/admin/flows/flow/{flow.pk}/change/"
    assert not Execution.objects.exists()

    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/run-now/", follow=True)
    assert not Execution.objects.exists()
    assert "disabled" in response.content.decode().lower()


def test_run_now_needs_the_right_to_change_the_flow(client, application):
    flow = Flow.objects.create(application=application, name="Greeting")
    User.objects.create_user("viewer", password="viewer-pass-123", is_staff=True)
    client.force_login(User.objects.get(username="viewer"))
    response = client.post(f"/admin/flows/flow/{flow.pk}/run-now/")
    assert response.status_code == 302
    assert not Execution.objects.exists()
