"""PhixFlow as printed (seed 001, copied under tests/fixtures/seeds/): its trigger, legacy
and poll URLs as the documentation prints them, with the instance segment in front
(`/phixflow/api/1/…`) and without it, on a live server."""

import re
import time
from pathlib import Path

import pytest

from apps.flows.models import Application, Flow, Script
from tests.conftest import live_database_url, wait_for
from tests.executions.conftest import as_json, call

pytestmark = pytest.mark.django_db(transaction=True)

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seeds" / "001_phixflow_incoming_api.txt"
SEED_TEXT = SEED.read_text()
# The two example URLs of the seed, without their server: version 11's and version 10's.
EXAMPLE = "/phixflow/api/1/action/MyApp/My%20API/trigger"
LEGACY_EXAMPLE = "/phixflow/api/1/action/My%20API/trigger"
COMPANIES = (
    "function main(ctx) {\n  return [{company: 'Acme', url: ctx.trigger.args.request.url}];\n}"
)


def test_the_seed_prints_these_urls():
    printed = set(re.findall(r"https://app\.phixflow\.com(/\S+)", SEED_TEXT))
    assert printed == {EXAMPLE, LEGACY_EXAMPLE}


def poll_as_printed(process_id: str, *, application="MyApp", flow="My%20API") -> str:
    """The seed's poll URL, its placeholders filled in, without its server."""
    template = re.search(r"https://<<Server Name>>(/.+?/poll/<<processID>>)", SEED_TEXT)[1]
    return (
        template.replace("<<Application Name>>", application)
        .replace("<<Actionflow Name>>", flow)
        .replace("<<processID>>", process_id)
    )


def without_instance(path: str) -> str:
    return path.removeprefix("/phixflow")


@pytest.fixture
def my_api(db) -> Flow:
    """Seed 001's 'My API' in 'MyApp', its output named Companies ($.data.Companies)."""
    script = Script.objects.create(name="companies", content=COMPANIES)
    return Flow.objects.create(
        application=Application.objects.create(name="MyApp"),
        name="My API",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "outputName": "Companies"},
    )


def answering(flow: Flow, answer: str, **api) -> Flow:
    """The flow with one script step returning `answer` (JavaScript), and these API settings."""
    script = Script.objects.create(
        name=f"answer{Script.objects.count()}", content=f"function main(ctx) {{ return {answer}; }}"
    )
    flow.page_processors = [{"type": "script", "_scriptId": str(script.pk)}]
    flow.api = {**flow.api, **api}
    flow.full_clean()
    flow.save()
    return flow


# --- The instance segment -------------------------------------------------------------


@pytest.mark.parametrize("path", [EXAMPLE, without_instance(EXAMPLE)])
def test_the_example_url_triggers_the_flow_with_and_without_the_instance(
    live_server, my_api, caller_key, path
):
    response = call(live_server, "POST", path, key=caller_key, bare=True)
    assert response.status == 200, response.data
    assert response.headers["Content-Type"] == "application/json"
    body = as_json(response)
    assert body["status"] == "succeeded"
    assert body["data"]["Companies"] == [{"company": "Acme", "url": f"{live_server.url}{path}"}]


@pytest.mark.parametrize("path", [LEGACY_EXAMPLE, without_instance(LEGACY_EXAMPLE)])
def test_the_version_10_url_still_works_with_and_without_the_instance(
    live_server, my_api, caller_key, path
):
    response = call(live_server, "POST", path, key=caller_key)
    assert response.status == 200, response.data
    assert as_json(response)["data"]["Companies"][0]["company"] == "Acme"


@pytest.mark.parametrize("debug", [False, True])
def test_another_instance_name_is_a_404_problem_that_names_the_right_one(
    live_server, my_api, caller_key, settings, debug
):
    settings.DEBUG = debug
    response = call(live_server, "GET", "/acme/api/1/action/MyApp/My%20API/trigger", key=caller_key)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = as_json(response)
    assert problem["detail"] == (
        "Nothing is found at /acme/api/1/action/MyApp/My API/trigger. PhixFlow's URLs "
        "are served at /api/1/action/… and /phixflow/api/1/action/…."
    )
    assert "Traceback" not in response.data.decode()


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path",
    [
        "/phixflow/api/1/action/MyApp/My%20API/nothing",
        "/phixflow/api/1/nothing",
        "/phixflow/api/v1/flows",
        "/phixflow/api/1/action/MyApp/Nope/trigger",
    ],
)
def test_unknown_urls_under_the_instance_are_404_problems(
    live_server, my_api, caller_key, settings, debug, path
):
    settings.DEBUG = debug
    response = call(live_server, "GET", path, key=caller_key)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert as_json(response)["status"] == 404


def test_the_instance_is_a_setting(live_server, my_api, caller_key, settings):
    settings.FLOWSITE_PHIXFLOW_INSTANCE = "acme"
    ok = call(live_server, "GET", "/acme/api/1/action/MyApp/My%20API/trigger", key=caller_key)
    assert ok.status == 200, ok.data
    gone = call(live_server, "GET", EXAMPLE, key=caller_key)
    assert gone.status == 404
    assert as_json(gone)["detail"].endswith(
        "PhixFlow's URLs are served at /api/1/action/… and /acme/api/1/action/…."
    )


def test_an_empty_instance_setting_serves_phixflow_urls_under_api_only(
    live_server, my_api, caller_key, settings
):
    settings.FLOWSITE_PHIXFLOW_INSTANCE = ""
    assert call(live_server, "GET", without_instance(EXAMPLE), key=caller_key).status == 200
    response = call(live_server, "GET", EXAMPLE, key=caller_key)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert as_json(response)["detail"] == (
        "Nothing is found at /phixflow/api/1/action/MyApp/My API/trigger. PhixFlow's URLs "
        "are served at /api/1/action/… "
        "(without an instance segment: FLOWSITE_PHIXFLOW_INSTANCE is empty)."
    )


@pytest.mark.parametrize("path", [EXAMPLE, without_instance(EXAMPLE)])
def test_a_failed_run_s_poll_url_keeps_the_prefix_the_caller_used(
    live_server, my_api, caller_key, path
):
    answering(my_api, "error('Give a company', 400)")
    response = call(live_server, "GET", path, key=caller_key)
    assert response.status == 400
    problem = as_json(response)
    assert problem["pollUrl"] == path.replace("/trigger", f"/poll/{problem['processId']}")
    polled = call(live_server, "GET", problem["pollUrl"], key=caller_key)
    assert polled.status == 200
    assert as_json(polled)["error"] == {"status": 400, "detail": "Give a company"}


# --- contentType ----------------------------------------------------------------------


def test_the_flow_s_content_type_sets_the_answer_s(live_server, my_api, caller_key):
    answering(my_api, "{statusCode: 200, body: 'company\\nAcme\\n'}", contentType="text/csv")
    response = call(live_server, "GET", EXAMPLE, key=caller_key)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.data == b"company\nAcme\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"


def test_the_content_type_output_attribute_of_an_answer_comes_first(
    live_server, my_api, caller_key
):
    answering(
        my_api,
        "{statusCode: 201, contentType: 'application/xml', body: '<company>Acme</company>'}",
        contentType="text/csv",
    )
    response = call(live_server, "POST", EXAMPLE, key=caller_key)
    assert response.status == 201
    assert response.headers["Content-Type"] == "application/xml"
    assert response.data == b"<company>Acme</company>"


def test_a_json_content_type_applies_to_the_envelope(live_server, my_api, caller_key):
    my_api.api = {**my_api.api, "contentType": "application/vnd.acme.companies+json"}
    my_api.save()
    response = call(live_server, "GET", EXAMPLE, key=caller_key)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.acme.companies+json"
    assert as_json(response)["data"]["Companies"][0]["company"] == "Acme"


def test_an_object_body_under_a_text_content_type_is_sent_as_json(live_server, my_api, caller_key):
    answering(my_api, "{statusCode: 200, body: {company: 'Acme'}}", contentType="text/csv")
    response = call(live_server, "GET", EXAMPLE, key=caller_key)
    assert response.headers["Content-Type"] == "application/json"
    assert as_json(response) == {"company": "Acme"}


@pytest.mark.parametrize(
    ("content_type", "said"),
    [
        ("text/javascript", "text/javascript is refused: a page of Flowsite's origin could"),
        ("application/x-javascript", "could load it as a script"),
        ("text/css", "text/css is refused: a page of Flowsite's origin could load it as a style"),
        ("multipart/x-mixed-replace; boundary=x", "multipart/x-mixed-replace is refused"),
        ("text/*", "is a pattern, not a media type"),
        ("csv", "is not a media type (such as text/csv"),
        ("text/csv; charset=latin-1", "Flowsite sends text as UTF-8"),
        ("text/csv\r\nSet-Cookie: a=b", "is not a media type"),
    ],
)
def test_a_refused_content_type_is_a_400_naming_why_when_saved(manager, my_api, content_type, said):
    response = manager.patch(
        f"/api/v1/flows/{my_api.pk}",
        {"api": {**my_api.api, "contentType": content_type}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert said in response.content.decode()
    my_api.refresh_from_db()
    assert "contentType" not in my_api.api


def test_a_script_answering_a_refused_content_type_fails_its_run(live_server, my_api, caller_key):
    answering(my_api, "{statusCode: 200, contentType: 'text/javascript', body: 'alert(1)'}")
    response = call(live_server, "GET", EXAMPLE, key=caller_key)
    assert response.status == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = as_json(response)
    assert problem["detail"].startswith(
        "The flow's answer has an unusable content type: text/javascript is refused"
    )
    assert b"alert(1)" not in response.data


# --- Async: poll URLs, ?timeout, Prefer: respond-async (a real Celery worker) ----------


@pytest.fixture
def worker(start_worker):
    return start_worker(DATABASE_URL=live_database_url())


def poll_until_done(live_server, url, key, timeout=30):
    def done():
        body = as_json(call(live_server, "GET", url, key=key))
        return body if body["status"] not in ("queued", "running") else None

    return wait_for(done, timeout=timeout, interval=0.1, message=f"{url} to finish")


@pytest.mark.services
@pytest.mark.parametrize("path", [EXAMPLE, without_instance(EXAMPLE)])
def test_async_poll_urls_keep_the_prefix_the_caller_used(
    live_server, my_api, caller_key, worker, path
):
    my_api.api = {**my_api.api, "mode": "async"}
    my_api.save()
    response = call(live_server, "POST", path, key=caller_key, bare=True)
    assert response.status == 202, response.data
    body = as_json(response)
    expected = poll_as_printed(body["processId"])
    assert (
        body["pollUrl"]
        == response.headers["Location"]
        == (expected if path == EXAMPLE else without_instance(expected))
    )
    assert "Preference-Applied" not in response.headers
    final = poll_until_done(live_server, body["pollUrl"], caller_key)
    assert final["status"] == "succeeded", worker.log()
    assert final["data"]["Companies"][0]["company"] == "Acme"


@pytest.mark.services
def test_async_with_a_timeout_answers_200_with_the_result_when_the_run_finishes_in_time(
    live_server, my_api, caller_key, worker
):
    my_api.api = {**my_api.api, "mode": "async"}
    my_api.save()
    response = call(live_server, "GET", f"{EXAMPLE}?timeout=30000", key=caller_key)
    assert response.status == 200, worker.log()
    body = as_json(response)
    assert body["status"] == "succeeded"
    assert body["data"]["Companies"][0]["company"] == "Acme"


@pytest.mark.services
def test_async_with_a_timeout_answers_202_when_the_run_is_slower(
    live_server, slow_flow, caller_key, worker
):
    slow_flow("slow", 4, '[{"done": true}]', api={"enabled": True, "mode": "async"})
    path = "/phixflow/api/1/action/Sales%20Ops/slow/trigger"
    started = time.monotonic()
    response = call(live_server, "GET", f"{path}?timeout=500", key=caller_key)
    elapsed = time.monotonic() - started
    assert response.status == 202
    assert 0.5 <= elapsed < 3.5
    body = as_json(response)
    assert body["pollUrl"] == path.replace("/trigger", f"/poll/{body['processId']}")
    final = poll_until_done(live_server, body["pollUrl"], caller_key)
    assert final["data"]["records"] == [{"done": True}], worker.log()


@pytest.mark.services
@pytest.mark.parametrize("mode", ["sync", "auto", "async"])
def test_prefer_respond_async_answers_202_at_once_even_with_a_timeout(
    live_server, slow_flow, caller_key, worker, mode
):
    slow_flow("slow", 3, "[]", api={"enabled": True, "mode": mode})
    started = time.monotonic()
    response = call(
        live_server,
        "GET",
        "/phixflow/api/1/action/Sales%20Ops/slow/trigger?timeout=20000",
        key=caller_key,
        headers={"Prefer": "wait=20, respond-async"},
    )
    assert response.status == 202
    assert time.monotonic() - started < 2.5
    assert response.headers["Preference-Applied"] == "respond-async"
    assert as_json(response)["pollUrl"].startswith("/phixflow/api/1/action/Sales%20Ops/slow/poll/")


@pytest.mark.services
def test_async_without_a_timeout_answers_202_at_once(live_server, slow_flow, caller_key, worker):
    slow_flow("slow", 3, "[]", api={"enabled": True, "mode": "async", "timeout": 10_000})
    started = time.monotonic()
    response = call(live_server, "GET", "/api/1/action/Sales%20Ops/slow/trigger", key=caller_key)
    assert response.status == 202
    assert time.monotonic() - started < 2.5
