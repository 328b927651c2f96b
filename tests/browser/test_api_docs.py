"""The API's documentation pages in Chromium under the Content-Security-Policy Flowsite
sends with its pages: Swagger UI and ReDoc render every operation, with no part of them
refused (the page fixture fails a test on any refusal)."""

import pytest

from apps.flows.models import Application, Flow
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(page, live_server):
    sign_in(page, live_server.url)
    return page


def test_swagger_ui_renders_the_operations(signed_in, live_server):
    response = signed_in.goto(f"{live_server.url}/api/docs/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    signed_in.wait_for_selector(".opblock-summary-path[data-path='/api/v1/flows']")
    assert signed_in.locator(".opblock").count() > 20


def test_redoc_renders_the_operations(signed_in, live_server):
    response = signed_in.goto(f"{live_server.url}/api/redoc/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    signed_in.wait_for_selector("[data-section-id^='operation/']", state="attached")
    assert signed_in.locator("[data-section-id^='operation/']").count() > 20
    # ReDoc fetches its maker's logo from its CDN, whoever reads the docs: refused, as the
    # docs load nothing from outside (the image hides itself when it cannot load).
    logo = [text for text in signed_in.refused_by_csp if "https://cdn.redoc.ly/" in text]
    assert logo
    signed_in.refused_by_csp[:] = [t for t in signed_in.refused_by_csp if t not in logo]


def test_redoc_shows_html_in_a_flows_description_as_text(signed_in, live_server):
    """An outside probe's flow description put a password form on this page (ReDoc renders
    a description's Markdown, HTML included, unless told to sanitise it)."""
    application = Application.objects.create(name="Docs")
    Flow.objects.create(
        application=application,
        name="Probe",
        description="Hi <form id=phish action='/x'><input name=pw></form><b id=bold>bold</b>",
        api={"enabled": True, "method": "GET", "path": "/probe", "mode": "sync"},
    )

    signed_in.goto(f"{live_server.url}/api/redoc/")
    signed_in.wait_for_selector("[data-section-id^='operation/']", state="attached")
    signed_in.wait_for_selector("#redoc-container >> text=bold", state="attached")

    assert signed_in.locator("#redoc-container form#phish").count() == 0
    assert signed_in.locator("#redoc-container input[name=pw]").count() == 0
    signed_in.refused_by_csp[:] = [
        t for t in signed_in.refused_by_csp if "https://cdn.redoc.ly/" not in t
    ]
