"""The admin home page in Chromium: runs by status with a chart of the week, failures that
link to their runs, the queue and health. With FLOWSITE_SCREENSHOTS=<folder> it is saved
there (docs/home.png)."""

import os
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.executions.models import Execution
from apps.flows.models import Application, Flow
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = Execution.Status


def test_the_home_page_shows_the_weeks_runs_and_leads_to_a_failure(page, live_server):
    application = Application.objects.create(name="Sales")
    flows = [
        Flow.objects.create(
            application=application,
            name=name,
            api={"enabled": True, "method": "GET", "path": f"/{name.lower()}", "mode": "sync"},
        )
        for name in ("Greeting", "Leads", "Invoices")
    ]
    rng = random.Random(7)  # noqa: S311 - test data
    now = timezone.now()
    made = []
    for day in range(7):
        for _ in range(rng.randint(4, 14)):
            status = rng.choices(
                [Status.SUCCEEDED, Status.COMPLETED_WITH_ERRORS, Status.FAILED, Status.TIMED_OUT],
                [80, 8, 9, 3],
            )[0]
            flow = rng.choice(flows)
            made.append(
                Execution(
                    flow=flow,
                    flow_name=str(flow),
                    trigger="api",
                    mode="sync",
                    status=status,
                    error="Look up company: 503 from https://crm.example.com/companies/7"
                    if status == Status.FAILED
                    else "",
                    started_at=now,
                    finished_at=now + timedelta(milliseconds=rng.randint(20, 900)),
                )
            )
            made[-1].when = now - timedelta(days=day, hours=rng.randint(0, 3))
    Execution.objects.bulk_create(made)
    for run in made:
        Execution.objects.filter(pk=run.pk).update(created_at=run.when)
    base = live_server.url
    sign_in(page, base)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/admin/")
    assert page.is_visible("#home-panel svg")
    assert "✗" in page.inner_text("tr.home-health-worker")  # no worker in this test
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.locator("#home-panel").screenshot(path=str(Path(folder) / "home.png"))
    page.click("#home-failures a.home-failure >> nth=0")
    page.wait_for_selector("#execution-steps")
    assert "Failed" in page.inner_text("div.field-coloured_status")
