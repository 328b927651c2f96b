"""A failed run's page in real Chromium: its Retry button queues a linked run through the
front door and shows it; a running run's Cancel button asks it to stop. With
FLOWSITE_SCREENSHOTS=<folder> the run page is saved there (README shows docs/run-page.png)."""

import os
from pathlib import Path

import pytest

from apps.accounts.models import User
from apps.executions.models import Execution, StepRun
from apps.flows.models import Application, Flow

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = Execution.Status


def sign_in(page, base: str) -> None:
    User.objects.create_superuser("builder", password="builder-pass-123")
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "builder-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_a_failed_run_is_retried_and_a_running_one_cancelled_from_its_page(page, live_server):
    application = Application.objects.create(name="Sales")
    flow = Flow.objects.create(application=application, name="Sync leads")
    failed = Execution.objects.create(
        flow=flow,
        flow_name=str(flow),
        trigger=Execution.Trigger.API,
        mode="sync",
        status=Status.FAILED,
        status_code=502,
        error="Look up company: 503 from https://crm.example.com/companies/7",
        request={"method": "GET", "query": {"since": "2024-05-01"}, "headers": {}},
        input={},
        num_error=1,
    )
    StepRun.objects.create(
        execution=failed,
        position=0,
        path="pageProcessors[0]",
        kind="lookup",
        name="Look up company",
        records_in=1,
        records_out=0,
        errors=1,
        duration_ms=31.4,
    )
    running = Execution.objects.create(
        flow=flow, flow_name=str(flow), trigger="api", mode="async", status=Status.RUNNING
    )
    base = live_server.url
    sign_in(page, base)

    page.goto(f"{base}/admin/executions/execution/{failed.pk}/change/")
    assert page.is_visible("button.run-action-retry")
    assert page.is_visible("button.run-action-rerun")
    assert not page.is_visible("button.run-action-cancel")
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 720})
        page.screenshot(path=str(Path(folder) / "run-page.png"))

    page.click("button.run-action-retry")
    message = page.wait_for_selector(".messagelist .success")
    retry = Execution.objects.get(retry_of=failed)
    assert "Queued a retry:" in message.inner_text()
    assert str(retry.pk) in page.url
    assert retry.status == Status.QUEUED

    page.goto(f"{base}/admin/executions/execution/{running.pk}/change/")
    page.click("button.run-action-cancel")
    assert "Asked the run to stop." in page.inner_text(".messagelist")
    running.refresh_from_db()
    assert running.cancel_requested
