"""Seed 003's downloads, against a live server: a whole integration downloads as one bundle
(GET /api/v1/integrations/<id>/download) and is created again from it (POST
/api/v1/integrations/import); `?signedURL=true` answers Celigo's pre-signed URL, for flows
and integrations, which serves that one download without a key for its TTL while the key
that asked may still download it."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from rest_framework.test import APIClient
from werkzeug.wrappers import Response

from apps.accounts.models import ApiKey, Role, User
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key, revoke_api_keys
from apps.flows import services
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from tests.conftest import grant

PROBLEM = "application/problem+json"
TOKEN = "tok-93b1-integration-secret"
HEADER_SECRET = "hdr-52c0-subscription-secret"
VARIABLE_SECRET = "var-7d14-signing-secret"
ENRICH = (
    "function main(ctx) { return ctx.records.map(function (r) {"
    " return Object.assign({}, r, {region: ctx.variables.region}); }); }"
)
SCORE = "function main(ctx) { var r = ctx.records[0]; r.score = r.company.length; return r; }"
http = urllib3.PoolManager(retries=False, timeout=30)


def call(server, method: str, path: str, *, key: str | None = None, body=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    url = path if path.startswith("http") else f"{server.url}{path}"
    return http.request(method, url, headers=headers, body=body)


def document(response, status: int) -> dict:
    assert response.status == status, response.data[:2000]
    return json.loads(response.data)


def problem(response, status: int) -> dict:
    assert response.headers["Content-Type"] == PROBLEM, response.data[:500]
    return document(response, status)


@pytest.fixture
def builders(db) -> Role:
    role = Role.objects.create(name="Builders")
    grant(
        role,
        Privilege.USE_API_KEY,
        Privilege.RUN_FLOWS,
        Privilege.MANAGE_FLOWS,
        Privilege.VIEW_EXECUTIONS,
    )
    return role


@pytest.fixture
def manager_key(builders) -> ApiKey:
    """A builder's key: manage_flows, view_executions, run_flows and use_api_key."""
    builder = User.objects.create_user("builder", password="builder-pass-123", is_staff=True)
    builders.members.add(builder)
    return create_api_key(owner=builder, label="builder")


@pytest.fixture
def key(manager_key) -> str:
    return manager_key.plaintext


@pytest.fixture
def crm_server(httpserver):
    httpserver.expect_request("/leads", method="GET").respond_with_json(
        {"data": [{"company": "Acme"}, {"company": "Globex Corp"}]}
    )
    httpserver.expect_request("/scored", method="POST").respond_with_handler(
        lambda request: Response("{}", content_type="application/json")
    )
    return httpserver


@pytest.fixture
def usage(db, crm_server) -> Application:
    """Seed 002's integration, whole: a flow reading leads over a bearer-token connection,
    a script, a sub-flow with its own script, an import, an error handler (the flow's and
    the integration's), and an export nothing uses yet."""
    application = Application.objects.create(name="Usage Stats", description="seed 002")
    crm = Connection.objects.create(
        name="CRM",
        base_uri=crm_server.url_for("/").rstrip("/"),
        auth_type=Connection.AuthType.BEARER,
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )
    crm.set_secrets(token=TOKEN)
    crm.set_secret_headers({"Ocp-Apim-Subscription-Key": HEADER_SECRET})
    crm.save()
    leads = Export.objects.create(
        name="Leads", connection=crm, relative_uri="/leads", resource_path="data"
    )
    Export.objects.create(name="Spare", application=application, connection=crm, relative_uri="/x")
    post = Import.objects.create(name="Post scored", connection=crm, relative_uri="/scored")
    enrich = Script.objects.create(name="Enrich", content=ENRICH, application=application)
    score = Script.objects.create(name="Score", content=SCORE)
    handler = Flow.objects.create(application=application, name="On error")
    child = Flow.objects.create(
        application=application,
        name="Score lead",
        page_processors=[{"type": "script", "_scriptId": str(score.pk)}],
    )
    sync = Flow(
        application=application,
        name="Sync leads",
        page_generators=[{"_exportId": str(leads.pk)}],
        page_processors=[
            {"type": "script", "_scriptId": str(enrich.pk)},
            {
                "type": "flow",
                "_flowId": str(child.pk),
                "responseMapping": {"lists": [], "fields": [{"extract": "data", "generate": "s"}]},
            },
            {"type": "import", "_importId": str(post.pk), "proceedOnFailure": True},
        ],
        api={"enabled": True, "method": "GET", "path": "/sync-leads", "mode": "sync"},
        variables={"region": "EU"},
        error_flow=handler,
    )
    sync.set_secret_variables({"signingKey": VARIABLE_SECRET})
    sync.save()
    application.error_flow = handler
    application.save()
    return application


def download_url(application: Application) -> str:
    return f"/api/v1/integrations/{application.pk}/download"


def forget_everything() -> None:
    """A fresh database as far as integrations go: what the bundle holds is gone."""
    Application.objects.update(error_flow=None)
    Flow.objects.update(error_flow=None)
    Flow.objects.all().delete()
    for model in (Export, Import, Script, Connection, Application):
        model.objects.all().delete()


# --- integration download → import ----------------------------------------------------------


def test_an_integration_downloads_as_one_bundle_without_secrets(live_server, usage, key):
    response = call(live_server, "GET", download_url(usage), key=key)

    bundle = document(response, 200)
    assert response.headers["Content-Disposition"] == 'attachment; filename="Usage-Stats.json"'
    for secret in (TOKEN, HEADER_SECRET, VARIABLE_SECRET):
        assert secret not in response.data.decode()
    assert (bundle["version"], bundle["_integrationId"]) == (1, str(usage.pk))
    assert bundle["integration"]["name"] == "Usage Stats"
    assert bundle["integration"]["_errorFlowId"] == str(usage.error_flow_id)
    assert sorted(f["name"] for f in bundle["flows"]) == ["On error", "Score lead", "Sync leads"]
    assert sorted(e["name"] for e in bundle["exports"]) == ["Leads", "Spare"]
    assert [i["name"] for i in bundle["imports"]] == ["Post scored"]
    assert sorted(s["name"] for s in bundle["scripts"]) == ["Enrich", "Score"]
    [crm] = bundle["connections"]
    assert crm["name"] == "CRM"
    assert crm["http"]["auth"]["type"] == "bearer"
    assert "token" not in crm["http"]["auth"]


def test_an_integration_round_trips_into_a_fresh_database_and_its_flows_run(
    live_server, usage, key, crm_server
):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    forget_everything()

    response = call(
        live_server, "POST", "/api/v1/integrations/import", key=key, body={"bundle": bundle}
    )

    report = document(response, 201)
    imported = Application.objects.get()
    assert response.headers["Location"] == f"{live_server.url}/api/v1/integrations/{imported.pk}"
    assert report["integration"]["_id"] == str(imported.pk)
    assert (imported.name, imported.description) == ("Usage Stats", "seed 002")
    [placed] = report["connections"]
    crm = Connection.objects.get()
    assert placed == {
        "_id": str(crm.pk),
        "name": "CRM",
        "_sourceId": bundle["connections"][0]["_id"],
        "status": "created",
        "missingSecrets": ["http.auth.token"],
    }
    assert (crm.auth_type, crm.secrets()) == ("bearer", {})
    flows = {flow.name: flow for flow in Flow.objects.all()}
    assert sorted(flows) == ["On error", "Score lead", "Sync leads"]
    new_ids = report["ids"]["flows"]
    assert sorted(new_ids.values()) == sorted(str(f.pk) for f in flows.values())
    sync, child, handler = flows["Sync leads"], flows["Score lead"], flows["On error"]
    assert imported.error_flow == handler
    assert sync.error_flow == handler
    assert all(f.application == imported and f.disabled for f in flows.values())
    assert sync.page_processors[1]["_flowId"] == str(child.pk)
    export = Export.objects.get(pk=sync.page_generators[0]["_exportId"])
    assert (export.name, export.connection, export.application) == ("Leads", crm, imported)
    assert Export.objects.filter(name="Spare", application=imported).exists()

    # The builder sets the secret and enables the flows; then they run as before.
    patched = call(
        live_server,
        "PATCH",
        f"/api/v1/connections/{crm.pk}",
        key=key,
        body={"http": {"auth": {"token": TOKEN}}},
    )
    assert patched.status == 200, patched.data
    for flow in (sync, child):
        enabled = call(
            live_server, "PATCH", f"/api/v1/flows/{flow.pk}", key=key, body={"disabled": False}
        )
        assert enabled.status == 200, enabled.data
    answer = document(call(live_server, "GET", "/api/resources/sync-leads", key=key), 200)

    assert answer["status"] == "succeeded"
    assert [(r["company"], r["region"], r["s"][0]["score"]) for r in answer["data"]["records"]] == [
        ("Acme", "EU", 4),
        ("Globex Corp", "EU", 11),
    ]
    calls = [(r.method, r.path, r.headers.get("Authorization")) for r, _ in crm_server.log]
    assert ("GET", "/leads", f"Bearer {TOKEN}") in calls
    assert calls.count(("POST", "/scored", f"Bearer {TOKEN}")) == 2


def test_importing_next_to_the_original_renames_it_and_reuses_its_connection(
    live_server, usage, key
):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    crm = Connection.objects.get()

    report = document(
        call(live_server, "POST", "/api/v1/integrations/import", key=key, body={"bundle": bundle}),
        201,
    )

    assert report["integration"]["name"] == "Usage Stats (2)"
    assert report["connections"][0]["_id"] == str(crm.pk)
    assert (report["connections"][0]["status"], report["connections"][0]["missingSecrets"]) == (
        "matched",
        [],
    )
    copy = Application.objects.get(name="Usage Stats (2)")
    sync = Flow.objects.get(application=copy, name="Sync leads")
    assert sync.api["enabled"] is False  # the original still answers GET /sync-leads
    assert Export.objects.get(pk=sync.page_generators[0]["_exportId"]).connection == crm
    assert Flow.objects.filter(application=usage).count() == 3


def test_a_connection_map_and_a_name_choose_where_the_import_goes(live_server, usage, key):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    other = Connection.objects.create(name="CRM EU", base_uri="https://crm.example.eu")
    old = bundle["connections"][0]["_id"]

    report = document(
        call(
            live_server,
            "POST",
            "/api/v1/integrations/import",
            key=key,
            body={
                "bundle": bundle,
                "name": "Usage Stats EU",
                "connectionMap": {old: str(other.pk)},
            },
        ),
        201,
    )

    assert report["integration"]["name"] == "Usage Stats EU"
    assert report["connections"][0]["status"] == "mapped"
    assert report["ids"]["connections"] == {old: str(other.pk)}
    copy = Application.objects.get(name="Usage Stats EU")
    assert {e.connection for e in Export.objects.filter(application=copy)} == {other}


@pytest.mark.parametrize(
    ("spoil", "pointer"),
    [
        (lambda b: b.pop("integration"), "#/bundle/integration"),
        (lambda b: b.update(version=7), "#/bundle/version"),
        (lambda b: b.update(flows={"a": 1}), "#/bundle/flows"),
        (lambda b: b["exports"][1]["http"].update(method="FETCH"), "#/exports[1]/http/method"),
        (lambda b: b["flows"][2].update(schedule="every tuesday"), "#/flows[2]/schedule"),
        (lambda b: b["connections"].clear(), "#/connectionMap"),
        # A flow naming itself as its error handler, which the API refuses (an outside probe).
        (
            lambda b: b["flows"][2].update(_errorFlowId=b["flows"][2]["_id"]),
            "#/flows[2]/_errorFlowId",
        ),
        # A step whose type is a list was a 500 (an outside probe).
        (
            lambda b: b["flows"][2]["pageProcessors"][0].update(type=["script"]),
            "#/flows[2]/pageProcessors",
        ),
    ],
)
def test_a_bad_bundle_is_400_naming_what_is_wrong_and_creates_nothing(
    live_server, usage, key, spoil, pointer
):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    bundle["flows"].sort(key=lambda f: f["name"])  # flows[2] is "Sync leads", installed last
    spoil(bundle)
    before = {m: m.objects.count() for m in (Application, Connection, Export, Import, Script, Flow)}

    response = call(
        live_server, "POST", "/api/v1/integrations/import", key=key, body={"bundle": bundle}
    )

    errors = {e["pointer"]: e["detail"] for e in problem(response, 400).get("errors", [])}
    assert pointer in errors, errors
    assert "Traceback" not in response.data.decode()
    assert {m: m.objects.count() for m in before} == before


def test_an_import_body_with_an_unknown_field_is_400_naming_it(live_server, key):
    response = call(
        live_server, "POST", "/api/v1/integrations/import", key=key, body={"bundle": {}, "x": 1}
    )
    assert "#/x" in {e["pointer"] for e in problem(response, 400)["errors"]}


# Schemathesis found `"name": 0` answered 201: DRF's CharField takes a number for a string.
@pytest.mark.parametrize(
    ("extra", "pointer"),
    [
        ({"name": 0}, "#/name"),
        ({"name": 1.5}, "#/name"),
        ({"connectionMap": {"9": 9}}, "#/connectionMap/9"),
    ],
)
def test_a_number_where_the_import_body_takes_a_string_is_400_and_creates_nothing(
    live_server, usage, key, extra, pointer
):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    before = Application.objects.count()

    response = call(
        live_server,
        "POST",
        "/api/v1/integrations/import",
        key=key,
        body={"bundle": bundle, **extra},
    )

    errors = {e["pointer"]: e["detail"] for e in problem(response, 400)["errors"]}
    assert errors == {pointer: "Not a valid string."}
    assert Application.objects.count() == before


# --- signed URLs ----------------------------------------------------------------------------


def signed(server, path: str, key: str) -> str:
    answer = document(call(server, "GET", f"{path}?signedURL=true", key=key), 200)
    assert set(answer) == {"signedURL"}
    return answer["signedURL"]


def test_a_signed_url_serves_the_download_without_a_key(live_server, usage, key):
    url = signed(live_server, download_url(usage), key)

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == live_server.url
    assert parts.path == download_url(usage)
    assert set(parse_qs(parts.query)) == {"signature"}
    assert key not in url
    assert key[:12] not in url
    response = call(live_server, "GET", url)
    assert document(response, 200) == document(
        call(live_server, "GET", download_url(usage), key=key), 200
    )
    assert response.headers["Content-Disposition"] == 'attachment; filename="Usage-Stats.json"'


def test_a_flow_download_and_template_answer_signed_urls_too(live_server, usage, key):
    flow = Flow.objects.get(name="Sync leads")
    for action in ("download", "template"):
        path = f"/api/v1/flows/{flow.pk}/{action}"
        url = signed(live_server, path, key)
        assert urlsplit(url).path == path
        bundle = document(call(live_server, "GET", url), 200)
        assert bundle["_flowId"] == str(flow.pk)
        assert TOKEN not in json.dumps(bundle)


def test_an_expired_signed_url_is_403(live_server, usage, key, settings):
    settings.FLOWSITE_SIGNED_URL_TTL_SECONDS = 1
    url = signed(live_server, download_url(usage), key)
    assert call(live_server, "GET", url).status == 200
    time.sleep(2.1)

    refused = problem(call(live_server, "GET", url), 403)

    assert "expired" in refused["detail"]
    assert "signedURL=true" in refused["detail"]


def test_a_tampered_signed_url_is_403(live_server, usage, key):
    url = signed(live_server, download_url(usage), key)
    token = parse_qs(urlsplit(url).query)["signature"][0]
    payload, rest = token.split(":", 1)
    for spoiled in (
        url[:-2] + ("AA" if not url.endswith("AA") else "BB"),  # the signature
        url.replace(payload, payload[:-1] + ("x" if payload[-1] != "x" else "y")),  # the grant
        url.split("?")[0] + "?signature=",
        url.split("?")[0] + "?signature=" + rest,
    ):
        refused = problem(call(live_server, "GET", spoiled), 403)
        assert "not valid" in refused["detail"], spoiled


def test_a_signed_url_serves_only_its_own_download(live_server, usage, key):
    other = Application.objects.create(name="Other")
    url = signed(live_server, download_url(usage), key)
    query = urlsplit(url).query
    for elsewhere in (
        f"{download_url(other)}?{query}",
        f"/api/v1/integrations/{usage.pk}?{query}",
        f"/api/v1/flows?{query}",
        f"{download_url(usage)}?{query}&signedURL=true",  # nor makes itself a new one
    ):
        refused = problem(call(live_server, "GET", elsewhere), 403)
        assert f"only GET {download_url(usage)}" in refused["detail"], elsewhere
    assert problem(call(live_server, "DELETE", url), 403)["status"] == 403
    assert Application.objects.filter(pk=usage.pk).exists()


def test_a_revoked_key_s_signed_url_stops_working(live_server, usage, manager_key):
    url = signed(live_server, download_url(usage), manager_key.plaintext)
    assert call(live_server, "GET", url).status == 200

    revoke_api_keys(queryset=ApiKey.objects.filter(pk=manager_key.api_key.pk))

    refused = problem(call(live_server, "GET", url), 403)
    assert "revoked" in refused["detail"]


def test_a_deleted_key_s_signed_url_stops_working(live_server, usage, manager_key):
    url = signed(live_server, download_url(usage), manager_key.plaintext)
    manager_key.api_key.delete()
    assert "deleted" in problem(call(live_server, "GET", url), 403)["detail"]


def test_a_signed_url_stops_working_when_its_key_loses_the_privilege(
    live_server, usage, manager_key, builders
):
    url = signed(live_server, download_url(usage), manager_key.plaintext)
    builders.permissions.remove(
        *builders.permissions.filter(
            codename__in=[Privilege.MANAGE_FLOWS.value, Privilege.VIEW_EXECUTIONS.value]
        )
    )

    refused = problem(call(live_server, "GET", url), 403)

    assert refused["privileges"] == ["manage_flows", "view_executions"]


def test_signed_url_takes_true_or_false(live_server, usage, key):
    bundle = document(
        call(live_server, "GET", f"{download_url(usage)}?signedURL=false", key=key), 200
    )
    assert bundle["version"] == 1
    refused = problem(
        call(live_server, "GET", f"{download_url(usage)}?signedURL=yes", key=key), 400
    )
    assert "#/signedURL" in {e["pointer"] for e in refused["errors"]}


def test_without_a_key_or_a_signature_a_download_is_401(live_server, usage):
    assert problem(call(live_server, "GET", download_url(usage)), 401)["status"] == 401


# --- who may ----------------------------------------------------------------------------------


@pytest.fixture
def integration_key(integration) -> str:
    """An integration account's key (use_api_key and run_flows, as callers have)."""
    return create_api_key(owner=integration).plaintext


@pytest.fixture
def bystander_key(member) -> str:
    """A regular account that may use keys and run flows, but neither manage flows nor
    view executions."""
    return create_api_key(owner=member).plaintext


@pytest.fixture
def viewer_key(outsider) -> str:
    role = Role.objects.create(name="Viewers")
    grant(role, Privilege.USE_API_KEY, Privilege.VIEW_EXECUTIONS)
    role.members.add(outsider)
    return create_api_key(owner=outsider).plaintext


def test_an_integration_account_may_neither_download_nor_import(
    live_server, usage, key, integration_key
):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    for method, path, body in (
        ("GET", download_url(usage), None),
        ("GET", f"{download_url(usage)}?signedURL=true", None),
        ("POST", "/api/v1/integrations/import", {"bundle": bundle}),
    ):
        refused = problem(call(live_server, method, path, key=integration_key, body=body), 403)
        assert "manage_flows" in refused["detail"], path
    assert Application.objects.count() == 1


def test_a_key_without_manage_flows_may_not_import(
    live_server, usage, key, viewer_key, bystander_key
):
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    for other in (viewer_key, bystander_key):
        refused = problem(
            call(
                live_server,
                "POST",
                "/api/v1/integrations/import",
                key=other,
                body={"bundle": bundle},
            ),
            403,
        )
        assert "manage_flows" in refused["detail"]
    assert Application.objects.count() == 1


def test_a_viewer_may_download_as_it_may_read_flows_but_a_bare_key_may_not(
    live_server, usage, viewer_key, bystander_key
):
    assert call(live_server, "GET", download_url(usage), key=viewer_key).status == 200
    url = signed(live_server, download_url(usage), viewer_key)
    assert call(live_server, "GET", url).status == 200
    refused = problem(call(live_server, "GET", download_url(usage), key=bystander_key), 403)
    assert refused["privileges"] == ["manage_flows", "view_executions"]


# --- OpenAPI ----------------------------------------------------------------------------------


def test_the_schema_lists_the_new_endpoints_with_examples(live_server, key):
    schema = document(call(live_server, "GET", "/api/schema/?format=json", key=key), 200)
    paths = schema["paths"]

    download = paths["/api/v1/integrations/{id}/download"]["get"]
    answer = download["responses"]["200"]["content"]["application/json"]
    assert set(answer["examples"]) >= {"Bundle", "SignedURL(?signedURL=true)"}
    assert {p["name"] for p in download["parameters"]} >= {"id", "signedURL", "signature"}
    assert "403" in download["responses"]

    imported = paths["/api/v1/integrations/import"]["post"]
    body = imported["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["bundle"]
    assert body["examples"]
    assert imported["responses"]["201"]["content"]["application/json"]["examples"]

    flow_download = paths["/api/v1/flows/{id}/download"]["get"]
    assert "signedURL" in {p["name"] for p in flow_download["parameters"]}


def test_a_signed_in_builder_s_signed_url_stands_for_the_builder(live_server, usage, owner):
    """The browsable API (a session, no key): the URL is checked against the account."""
    client = APIClient()
    client.force_login(owner)
    made = client.get(f"{download_url(usage)}?signedURL=true").json()["signedURL"]
    url = made.replace("http://testserver", live_server.url)
    assert call(live_server, "GET", url).status == 200
    owner.is_active = False
    owner.save()
    assert "inactive" in problem(call(live_server, "GET", url), 403)["detail"]


def test_a_flow_bundle_keeps_an_error_handler_found_here_and_names_one_that_is_not(
    live_server, usage, key
):
    sync = Flow.objects.get(name="Sync leads")
    bundle = document(call(live_server, "GET", f"/api/v1/flows/{sync.pk}/download", key=key), 200)
    crm = str(Connection.objects.get().pk)
    body = {"bundle": bundle, "connectionMap": {crm: crm}, "_integrationId": str(usage.pk)}

    copy = document(call(live_server, "POST", "/api/v1/flows/import", key=key, body=body), 201)
    assert copy["_errorFlowId"] == str(usage.error_flow_id)

    [flow] = [f for f in bundle["flows"] if f["_id"] == str(sync.pk)]
    flow["_errorFlowId"] = "987654"
    response = call(live_server, "POST", "/api/v1/flows/import", key=key, body=body)
    errors = {e["pointer"]: e["detail"] for e in problem(response, 400)["errors"]}
    [(pointer, detail)] = errors.items()
    assert pointer.endswith("/_errorFlowId")
    assert "987654" in detail


def test_a_bundle_whose_ids_have_leading_zeros_is_rewired_to_its_own_copies(
    live_server, usage, key
):
    """Ids are matched as the engine reads them on both sides of the bundle, whether the
    resource's _id or the step's reference is written "04" (the review of the first fix)."""
    bundle = document(call(live_server, "GET", download_url(usage), key=key), 200)
    for script in bundle["scripts"]:
        script["_id"] = "0" + str(script["_id"])
    for flow in bundle["flows"]:
        for step in flow.get("pageProcessors") or []:
            if step.get("type") == "script":
                step["_scriptId"] = " " + str(step["_scriptId"]) + " "
    copied = set(Script.objects.values_list("pk", flat=True))

    response = call(
        live_server, "POST", "/api/v1/integrations/import", key=key, body={"bundle": bundle}
    )

    assert response.status == 201, response.data[:2000]
    new_scripts = set(Script.objects.values_list("pk", flat=True)) - copied
    used = {
        int(step["_scriptId"])
        for flow in Flow.objects.exclude(application=usage)
        for step in flow.page_processors
        if step.get("type") == "script"
    }
    assert used
    assert used <= new_scripts


def test_an_id_written_with_a_leading_zero_is_rewired_like_any_other():
    """ "04" names script 4, as the engine reads it; an import left it pointing at the
    target's own script 4 instead of the installed copy (an outside probe)."""
    ids = {"script": {"4": "9"}, "export": {"3": "8"}, "import": {}, "flow": {}}
    generators, processors = services._remapped_pipeline(
        {
            "pageGenerators": [{"_exportId": " 3 "}],
            "pageProcessors": [{"type": "script", "_scriptId": "04"}],
        },
        ids,
    )
    assert generators == [{"_exportId": "8"}]
    assert processors == [{"type": "script", "_scriptId": "9"}]
