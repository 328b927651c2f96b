"""Flow tests in real Chromium: a recorded run saved as a test from its page, the flow's
Run tests button, and a failing test's diff on the flow page (with
FLOWSITE_SCREENSHOTS=<folder>, the picture in README: docs/flow-test-diff.png)."""

import os
from pathlib import Path

import pytest

from apps.flows.models import Script
from apps.flowtests.models import FlowTest
from tests.browser.test_flow_rows import sign_in
from tests.flowtests.conftest import crm, lead_table, pipeline, run  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_builder_saves_a_run_as_a_test_and_sees_why_it_fails_after_a_change(
    page,
    live_server,
    pipeline,  # noqa: F811 (the imported fixture)
    owner,
):
    done = run(pipeline, owner)
    assert done.status == "succeeded", done.error
    sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/executions/execution/{done.pk}/change/")
    page.click(".save-as-test-link")
    page.fill("#id_name", "scores three customers")
    page.click("input[type=submit][value='Save as test']")
    page.wait_for_selector(".messagelist")
    assert "Saved the test 'scores three customers'" in page.inner_text(".messagelist")
    test = FlowTest.objects.get()

    page.goto(f"{live_server.url}/admin/flows/flow/{pipeline.pk}/change/")
    assert "not run yet" in page.inner_text("#flow-tests")
    page.click(".run-tests-button")
    page.wait_for_selector(".messagelist")
    assert "Flow tests: 1 passed, 0 failed." in page.inner_text(".messagelist")

    score = Script.objects.get(name="score")
    score.content = score.content.replace("> 1000", "> 2000")
    score.save()
    page.click(".run-tests-button")
    page.wait_for_selector(".messagelist")
    assert "0 passed, 1 failed: scores three customers." in page.inner_text(".messagelist")
    panel = page.inner_text("#flow-tests")
    assert "Failed" in panel
    assert "pageProcessors[1] (score): record 2 out differs" in panel
    test.refresh_from_db()
    assert test.last_result == "failed"
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#flow-tests").scroll_into_view_if_needed()
        page.locator("#flow-tests").screenshot(path=str(Path(folder) / "flow-test-diff.png"))
