"""A page of another site cannot act with the builder's session (found by an outside
security probe): browsers send the session cookie with a top-level navigation from
anywhere (SameSite=Lax), and CSRF tokens guard only unsafe methods, so a link could run a
GET flow as the signed-in builder. Fetch Metadata's Sec-Fetch-Site says who made it."""

import pytest

from apps.executions.models import Execution
from apps.flows.models import Flow
from tests.executions.honest import script_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def get_flow(application) -> Flow:
    return script_flow(
        application,
        "side effect",
        "function main(ctx) { return {ran: 1}; }",
        api={"enabled": True, "method": "GET", "path": "/side-effect", "mode": "sync"},
    )


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_navigation_from_another_site_runs_nothing_as_the_builder(admin_client, get_flow, site):
    response = admin_client.get(
        "/api/resources/side-effect?x=1", HTTP_SEC_FETCH_SITE=site, HTTP_SEC_FETCH_MODE="navigate"
    )

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert not Execution.objects.exists()


@pytest.mark.parametrize("site", ["same-origin", "none", None])
def test_the_builder_s_own_pages_and_typed_urls_still_run_it(admin_client, get_flow, site):
    headers = {"HTTP_SEC_FETCH_SITE": site} if site else {}

    response = admin_client.get("/api/resources/side-effect?x=1", **headers)

    assert response.status_code == 200, response.content
    assert Execution.objects.get().caller.username == "admin"


@pytest.mark.parametrize(
    "sender", [{"HTTP_ORIGIN": "https://evil.example"}, {"HTTP_REFERER": "https://evil.example/x"}]
)
def test_a_browser_without_fetch_metadata_is_judged_by_its_origin_or_referer(
    admin_client, get_flow, sender
):
    """Found by the review: older browsers send no Sec-Fetch-Site."""
    response = admin_client.get("/api/resources/side-effect?x=1", **sender)

    assert response.status_code == 401
    assert not Execution.objects.exists()


def test_a_referer_of_this_site_keeps_the_session(admin_client, get_flow):
    response = admin_client.get(
        "/api/resources/side-effect?x=1", HTTP_REFERER="http://testserver/admin/"
    )

    assert response.status_code == 200, response.content
