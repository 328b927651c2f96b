"""An account that may only look: every admin page answers it without a 500 or a secret,
and no action or button changes anything for it (found by an outside probe: view-only
accounts got 500s that showed a connection's decrypted token on DEBUG's error page, and
could disable, enable and clone flows and cancel anyone's runs)."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client

from apps.accounts.models import User
from apps.executions import services as executions
from apps.executions.models import Execution
from apps.flows.models import Connection, Flow

SECRET = "view-only-must-not-see-4711"


@pytest.fixture
def demo(db, settings):
    settings.DEBUG = True  # what `make run` uses: its error pages show a frame's variables
    call_command("bootstrap", stdout=None)
    connection = Connection.objects.create(
        name="Secret API", base_uri="https://api.example.com", auth_type="bearer"
    )
    connection.set_secrets(token=SECRET)
    connection.set_secret_headers({"X-Api-Secret": SECRET})
    connection.save()


@pytest.fixture
def viewer(demo) -> Client:
    user = User.objects.create_user("viewer", password="viewer-pass-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def registered():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label not in ("auth",)
    ]


def snapshot() -> dict:
    return {
        model._meta.label: sorted((str(model_to_dict(obj)) for obj in model.objects.all()), key=str)
        for model, _ in registered()
    }


def test_every_page_answers_a_view_only_account_without_a_500_or_a_secret(viewer):
    pages = 0
    for model, _ in registered():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        urls = [base] + [f"{base}{obj.pk}/change/" for obj in model.objects.all()[:3]]
        for url in urls:
            response = viewer.get(url)
            assert response.status_code < 500, url
            assert SECRET not in response.content.decode(errors="replace"), url
            pages += 1
    assert pages > 40  # the crawl reached the demo's objects


def test_no_list_action_changes_anything_for_a_view_only_account(viewer):
    before = snapshot()
    for model, model_admin in registered():
        objects = list(model.objects.all()[:2])
        if not objects:
            continue
        opts = model._meta
        for action in model_admin.actions or ():
            name = action if isinstance(action, str) else action.__name__
            viewer.post(
                f"/admin/{opts.app_label}/{opts.model_name}/",
                {"action": name, "_selected_action": [obj.pk for obj in objects], "index": 0},
            )
    assert snapshot() == before


def test_a_view_only_account_cannot_cancel_a_run_from_the_admin(viewer):
    flow = Flow.objects.filter(disabled=False).first()
    runs = [executions.create_execution(flow=flow, trigger="run", caller=None) for _ in range(2)]

    viewer.post(f"/admin/executions/execution/{runs[0].pk}/run-action/cancel/")
    viewer.post(
        "/admin/executions/execution/",
        {"action": "cancel", "_selected_action": [runs[1].pk], "index": 0},
    )

    assert set(Execution.objects.values_list("status", flat=True)) == {"queued"}


def test_a_view_only_account_sees_which_secrets_are_stored_and_no_test_it_cannot_use(viewer):
    """The read-only page showed every secret as "None" whatever was stored, and offered a
    connection test that needs change permission (seen in Chromium)."""
    connection = Connection.objects.get(name="Secret API")

    page = viewer.get(f"/admin/flows/connection/{connection.pk}/change/").content.decode()

    assert "token (hidden), header X-Api-Secret (hidden)" in page
    assert "connection-test-link" not in page
    assert SECRET not in page


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


def test_no_admin_page_has_an_inline_script_which_the_policy_would_refuse(demo, admin_client):
    """The pages' Content-Security-Policy runs scripts from files only: an inline one is a
    broken part of a page (django-celery-beat's periodic task form had one; the review)."""
    pages = 0
    for model, _ in registered():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        urls = [base, f"{base}add/", *(f"{base}{o.pk}/change/" for o in model.objects.all()[:2])]
        for url in urls:
            response = admin_client.get(url, follow=True)
            if response.status_code != 200 or "text/html" not in response["Content-Type"]:
                continue
            assert not INLINE_SCRIPT.search(response.content.decode()), url
            pages += 1
    assert pages > 40
