"""What steps see (issue 10): the request as sent, minus Flowsite's own credentials.

A webhook flow must be able to check its token, provision a password and verify an HMAC
over the raw body; none of that may end up in what Flowsite stores or shows of the run.
"""

import base64
import json

import pytest
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string

from apps.accounts.services import create_api_key
from apps.executions.models import Execution, ExecutionError, StepRun
from tests.executions.conftest import as_json, call
from tests.executions.honest import script_flow, trigger_url

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok-abc-8812"
PASSWORD = "s3cret-Pw-42"
# Odd spacing and a newline: only the bytes as received reproduce a sender's signature.
RAW_BODY = '{"password":  "s3cret-Pw-42",\n "note": "kept as sent"}'
SIGNATURE = "sha256=5f0c1e"
# The step answers what it saw, reversed: the flow's own answer is stored as the run's
# response, and must not itself carry the secrets it proves the step received.
ECHO = (
    "function main(ctx) {\n"
    "  const seen = JSON.stringify(ctx.trigger.args.request);\n"
    "  return {statusCode: 200, body: {seen: seen.split('').reverse().join('')}};\n"
    "}"
)


@pytest.fixture
def webhook(sales):
    return script_flow(
        sales,
        "webhook",
        ECHO,
        api={"enabled": True, "method": "POST", "path": "/webhook", "mode": "sync"},
    )


@pytest.fixture
def session_cookie(owner) -> str:
    """The value of a real, logged-in Flowsite session cookie."""
    browser = Client()
    browser.force_login(owner)
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def credentials(integration, session_cookie) -> dict[str, str]:
    return {
        "API key": create_api_key(owner=integration).plaintext,
        "session cookie": session_cookie,
        "CSRF cookie": get_random_string(32),
    }


def send_webhook(live_server, flow, credentials, *, bare=False):
    cookies = (
        f"{settings.SESSION_COOKIE_NAME}={credentials['session cookie']}; "
        f"{settings.CSRF_COOKIE_NAME}={credentials['CSRF cookie']}; theme=dark"
    )
    return call(
        live_server,
        "POST",
        f"{trigger_url(flow)}?token={TOKEN}&plain=1",
        key=credentials["API key"],
        bare=bare,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": SIGNATURE,
            "Cookie": cookies,
        },
        body=RAW_BODY,
    )


def seen_by_the_step(response) -> dict:
    assert response.status == 200, response.data[:2000]
    return json.loads(as_json(response)["seen"][::-1])


@pytest.mark.parametrize("bare", [False, True], ids=["Bearer key", "bare PhixFlow key"])
def test_steps_see_the_request_as_sent_but_never_flowsites_credentials(
    live_server, webhook, credentials, bare
):
    seen = seen_by_the_step(send_webhook(live_server, webhook, credentials, bare=bare))

    assert seen["query"] == {"token": TOKEN, "plain": "1"}
    assert seen["body"] == {"password": PASSWORD, "note": "kept as sent"}
    assert seen["rawBody"] == RAW_BODY
    assert seen.get("rawBodyEncoding") != "base64"
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert headers["x-hub-signature-256"] == SIGNATURE
    assert "authorization" not in headers
    assert "theme=dark" in headers.get("cookie", "")  # the caller's other cookies are its own
    everything = json.dumps(seen)
    for name, value in credentials.items():
        assert value not in everything, f"the step saw the {name}"


def test_a_body_that_is_not_utf8_reaches_steps_as_base64(live_server, webhook, credentials):
    body = "café".encode("latin-1")
    response = call(
        live_server,
        "POST",
        trigger_url(webhook),
        key=credentials["API key"],
        headers={"Content-Type": "text/plain; charset=iso-8859-1"},
        body=body,
    )

    seen = seen_by_the_step(response)
    assert seen["rawBodyEncoding"] == "base64"
    assert base64.b64decode(seen["rawBody"]) == body


def stored_run(execution_id) -> str:
    """Every stored row of the run (the execution, its steps and errors) as text."""
    rows = [
        *Execution.objects.filter(pk=execution_id).values(),
        *StepRun.objects.filter(execution_id=execution_id).values(),
        *ExecutionError.objects.filter(execution_id=execution_id).values(),
    ]
    return json.dumps(rows, default=str)


def test_the_stored_run_its_admin_page_and_the_jobs_api_hold_none_of_the_secrets(
    live_server, webhook, credentials, manager, admin_client
):
    seen = seen_by_the_step(send_webhook(live_server, webhook, credentials))
    assert (seen["query"]["token"], seen["body"]["password"]) == (TOKEN, PASSWORD)
    execution = Execution.objects.get(flow=webhook)

    job = manager.get(f"/api/v1/jobs/{execution.pk}")
    page = admin_client.get(f"/admin/executions/execution/{execution.pk}/change/")

    assert (job.status_code, page.status_code) == (200, 200)
    stored = stored_run(execution.pk)
    assert "kept as sent" in stored  # the request was stored, only its secrets were not
    secrets = {**credentials, "token": TOKEN, "password (in the body and the raw body)": PASSWORD}
    places = {
        "the stored run": stored,
        "the jobs API": job.content.decode(),
        "the admin page": page.content.decode(),
    }
    for place, text in places.items():
        for name, value in secrets.items():
            assert value not in text, f"{place} holds the {name}"
