"""A connection's allowed private hosts in real Chromium: one a line, no JSON."""

import pytest

from apps.accounts.models import User
from apps.flows.models import Connection

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_builder_allows_private_hosts_one_a_line(page, live_server):
    User.objects.create_superuser("builder", password="builder-pass-123")
    base = live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "builder-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{base}/admin/flows/connection/add/")
    page.fill("#id_name", "ERP")
    page.fill("#id_base_uri", "https://erp.internal")
    page.click("summary:has-text('Advanced')")  # the collapsed section
    page.fill("#id_allowed_private_hosts", "erp.internal\n10.1.0.0/33")
    page.click("input[name=_continue]")
    error = page.wait_for_selector(".errorlist")
    assert "Invalid allowed private host '10.1.0.0/33'" in error.inner_text()

    page.fill("#id_allowed_private_hosts", "erp.internal\n10.1.0.0/16\n")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    assert Connection.objects.get(name="ERP").allowed_private_hosts == [
        "erp.internal",
        "10.1.0.0/16",
    ]
    assert page.input_value("#id_allowed_private_hosts") == "erp.internal\n10.1.0.0/16"
