"""Axway's formula instances on the wire (seed 000): a template never answers calls, its
instances share its path and `Elements-Formula-Instance-Id` names the one to run. Seed 000's
curls are played with curl, as printed (tests/fixtures/seeds/000_axway_faar.txt), with its
placeholders replaced: the empty URL by this server's, 417240 by a real instance's _id."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from apps.accounts.services import create_api_key
from apps.executions import route_cache, selectors
from apps.executions.errors import NotFound
from apps.executions.models import Execution
from apps.flows import services
from apps.flows.models import Connection, Export, Flow, Script
from tests.executions.conftest import GREETING, as_json, call

pytestmark = pytest.mark.django_db(transaction=True)

SEED = Path(__file__).parents[1] / "fixtures" / "seeds" / "000_axway_faar.txt"
HEADER = "Elements-Formula-Instance-Id"


def seed_curls() -> list[str]:
    return [line for line in SEED.read_text().splitlines() if line.startswith("curl ")]


def play(curl: str, url: str, instance_id: str, *extra: str) -> tuple[int, bytes]:
    """Run one of the seed's curl lines with its placeholders replaced: (status, body)."""
    line = curl.replace("''", shlex.quote(url)).replace("417240", instance_id)
    args = [*shlex.split(line), "-s", "-o", "-", "-w", "\n%{http_code}", *extra]
    done = subprocess.run(args, capture_output=True, timeout=60, check=True)
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


@pytest.fixture
def template(sales) -> Flow:
    """Seed 000's "Simple FaaR": GET /greeting, a prepareResponse script; a template."""
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    return Flow.objects.create(
        application=sales,
        name="Simple FaaR",
        is_template=True,
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/greeting", "mode": "sync"},
    )


def instance_of(template: Flow, name: str, **api) -> Flow:
    instance = services.create_instance(template=template, name=name)
    if api:
        instance.api = {**instance.api, **api}
        services.save_flow(flow=instance)
    return instance


def test_the_seed_prints_three_curls_with_the_instance_header():
    curls = seed_curls()
    assert curls == ["curl -X GET '' -H 'Elements-Formula-Instance-Id: 417240'"] * 3


def test_seed_000_curls_as_printed_run_the_instance(live_server, template, caller_key):
    instance = instance_of(template, "Simple FaaR instance", allowAnonymous=True)
    instance_of(template, "Another instance")  # the header picks among several
    first, second, third = seed_curls()
    base = f"{live_server.url}/api/resources/greeting"

    status, body = play(first, base, str(instance.pk))
    assert status == 200, body
    assert json.loads(body) == "Hello undefined"  # no name yet: the blog's first call
    for curl in (second, third):
        status, body = play(curl, f"{base}?name=Leor", str(instance.pk))
        assert (status, json.loads(body)) == (200, "Hello Leor")
    # With a key, as a caller of Flowsite would add it.
    status, body = play(
        second, f"{base}?name=Leor", str(instance.pk), "-H", f"Authorization: Bearer {caller_key}"
    )
    assert (status, json.loads(body)) == (200, "Hello Leor")

    runs = list(Execution.objects.order_by("created_at"))
    assert {run.flow_id for run in runs} == {instance.pk}
    request = runs[-1].request
    assert request["headers"][HEADER.lower()] == str(instance.pk)
    assert request["query"] == {"name": "Leor"}


def test_seed_000_curl_without_a_key_is_401_unless_the_instance_allows_anonymous(
    live_server, template
):
    instance = instance_of(template, "Simple FaaR instance")
    curl = seed_curls()[1]
    url = f"{live_server.url}/api/resources/greeting?name=Leor"

    status, body = play(curl, url, str(instance.pk))
    assert status == 401
    assert json.loads(body)["type"].endswith("not-authenticated")
    status, _ = play(curl, url, "999999")  # an anonymous caller learns of no instance
    assert status == 401

    instance.api = {**instance.api, "allowAnonymous": True}
    services.save_flow(flow=instance)
    status, body = play(curl, url, str(instance.pk))
    assert (status, json.loads(body)) == (200, "Hello Leor")
    assert not Execution.objects.exclude(flow=instance).exists()


def test_a_template_never_answers_calls(live_server, template, caller_key):
    for headers in ({}, {HEADER: str(template.pk)}):
        response = call(
            live_server, "GET", "/api/resources/greeting", key=caller_key, **{"headers": headers}
        )
        assert response.status == 409
        problem = as_json(response)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert problem["type"].endswith("flow-is-template")
        assert "is a template: it never answers calls itself" in problem["detail"]
        assert f"POST /api/v1/flows/{template.pk}/instances" in problem["detail"]
    by_name = call(
        live_server, "GET", "/api/1/action/Sales%20Ops/Simple%20FaaR/trigger", key=caller_key
    )
    assert by_name.status == 409
    assert not Execution.objects.exists()


def test_one_instance_answers_its_template_path_without_the_header(
    live_server, template, caller_key
):
    instance = instance_of(template, "Acme")

    response = call(live_server, "GET", "/api/resources/greeting?name=Ann", key=caller_key)

    assert (response.status, as_json(response)) == (200, "Hello Ann")
    assert Execution.objects.get().flow_id == instance.pk


def test_several_instances_without_the_header_answer_409_listing_them(
    live_server, template, caller_key
):
    acme, globex = instance_of(template, "Acme"), instance_of(template, "Globex")

    response = call(live_server, "GET", "/api/resources/greeting", key=caller_key)

    assert response.status == 409
    problem = as_json(response)
    assert problem["type"].endswith("instance-required")
    assert problem["instances"] == [
        {"_id": str(acme.pk), "name": "Acme"},
        {"_id": str(globex.pk), "name": "Globex"},
    ]
    assert HEADER in problem["detail"]
    assert f"{acme.pk} (Acme)" in problem["detail"]
    # An anonymous caller learns only of the instances open to anonymous calls.
    assert call(live_server, "GET", "/api/resources/greeting").status == 401
    globex.api = {**globex.api, "allowAnonymous": True}
    services.save_flow(flow=globex)
    anonymous = as_json(call(live_server, "GET", "/api/resources/greeting"))
    assert anonymous["instances"] == [{"_id": str(globex.pk), "name": "Globex"}]
    assert not Execution.objects.exists()


@pytest.mark.parametrize("named", ["999999", "not-an-id", "other-flow", "other-template"])
def test_an_unknown_or_foreign_instance_id_answers_404(
    live_server, template, caller_key, sales, named
):
    instance_of(template, "Acme")
    other = Flow.objects.create(
        application=sales,
        name="Other",
        api={"enabled": True, "method": "GET", "path": "/other"},
    )
    other_template = Flow.objects.create(application=sales, name="Other template", is_template=True)
    instance_id = {"other-flow": str(other.pk), "other-template": str(other_template.pk)}.get(
        named, named
    )

    response = call(
        live_server, "GET", "/api/resources/greeting", key=caller_key, headers={HEADER: instance_id}
    )

    assert response.status == 404
    problem = as_json(response)
    assert f"No flow {instance_id!r} answers GET /greeting" in problem["detail"]
    assert not Execution.objects.exists()


def test_the_header_naming_a_plain_flow_on_the_path_calls_it(live_server, sales, caller_key):
    """Axway's curl always carries the header: naming a flow that is no template's instance
    was a 404 about a template that does not exist (an outside probe)."""
    plain = Flow.objects.create(
        application=sales,
        name="Plain",
        api={"enabled": True, "method": "GET", "path": "/plain", "mode": "sync"},
    )

    response = call(
        live_server, "GET", "/api/resources/plain", key=caller_key, headers={HEADER: str(plain.pk)}
    )

    assert response.status == 200, response.data
    assert Execution.objects.get().flow == plain


def test_a_named_instance_still_needs_its_method_and_its_checks(live_server, template, caller_key):
    acme = instance_of(template, "Acme")
    headers = {HEADER: str(acme.pk)}

    wrong = call(live_server, "POST", "/api/resources/greeting", key=caller_key, headers=headers)
    assert (wrong.status, wrong.headers["Allow"]) == (405, "GET")
    acme.disabled = True
    services.save_flow(flow=acme)
    disabled = call(live_server, "GET", "/api/resources/greeting", key=caller_key, headers=headers)
    assert disabled.status == 409
    assert "is disabled" in as_json(disabled)["detail"]


def test_an_instance_runs_on_its_own_connections(live_server, sales, caller_key, httpserver):
    """The connection map: the template's export reads from the instance's connection."""
    httpserver.expect_request("/us/accounts").respond_with_json([{"name": "US"}])
    httpserver.expect_request("/eu/accounts").respond_with_json([{"name": "EU"}])
    base = httpserver.url_for("/").rstrip("/")
    hosts = ["localhost", "127.0.0.1"]
    us = Connection.objects.create(name="US", base_uri=f"{base}/us", allowed_private_hosts=hosts)
    eu = Connection.objects.create(name="EU", base_uri=f"{base}/eu", allowed_private_hosts=hosts)
    export = Export.objects.create(name="Accounts", connection=us, relative_uri="/accounts")
    template = Flow.objects.create(
        application=sales,
        name="Accounts",
        is_template=True,
        page_generators=[{"_exportId": str(export.pk)}],
        api={"enabled": True, "method": "GET", "path": "/accounts"},
    )
    default = services.create_instance(template=template, name="US accounts")
    european = services.create_instance(
        template=template, name="EU accounts", connection_map={str(us.pk): str(eu.pk)}
    )

    answers = {
        flow.name: as_json(
            call(
                live_server,
                "GET",
                "/api/resources/accounts",
                key=caller_key,
                headers={HEADER: str(flow.pk)},
            )
        )["data"]["records"]
        for flow in (default, european)
    }

    assert answers == {"US accounts": [{"name": "US"}], "EU accounts": [{"name": "EU"}]}


def test_the_route_cache_sees_instances_created_and_deleted_at_once(
    live_server, template, caller_key, settings, monkeypatch
):
    """The route memory is on (the test settings turn it off): an instance created or
    deleted in this process is served, or refused, on the next call."""
    monkeypatch.setattr(route_cache.memory, "seconds", 60.0)
    route_cache.clear()
    key = {"key": caller_key}
    assert call(live_server, "GET", "/api/resources/greeting", **key).status == 409  # template
    acme = instance_of(template, "Acme")
    named = {HEADER: str(acme.pk)}

    assert call(live_server, "GET", "/api/resources/greeting", headers=named, **key).status == 200
    globex = instance_of(template, "Globex")
    assert call(live_server, "GET", "/api/resources/greeting", **key).status == 409
    listed = as_json(call(live_server, "GET", "/api/resources/greeting", **key))["instances"]
    assert [item["name"] for item in listed] == ["Acme", "Globex"]

    globex_id = globex.pk
    globex.delete()
    gone = call(
        live_server, "GET", "/api/resources/greeting", headers={HEADER: str(globex_id)}, **key
    )
    assert gone.status == 404
    assert call(live_server, "GET", "/api/resources/greeting", **key).status == 200  # Acme


def test_a_remembered_path_finds_a_named_instance_without_a_query(
    template, django_assert_num_queries, monkeypatch
):
    monkeypatch.setattr(route_cache.memory, "seconds", 60.0)
    route_cache.clear()
    instances = [instance_of(template, f"Customer {n}") for n in range(50)]
    wanted = instances[37]
    find = lambda: selectors.flow_by_resource(  # noqa: E731
        "GET", "/greeting", instance_id=str(wanted.pk), authenticated=True
    )
    assert find().pk == wanted.pk  # one read of the path's flows, remembered

    with django_assert_num_queries(0):
        found = find()
    assert (found.pk, found.name) == (wanted.pk, "Customer 37")
    wanted.delete()  # forgotten at once in this process
    with pytest.raises(NotFound):
        find()


def test_an_api_key_may_call_its_own_instance_only(live_server, template, integration):
    acme, globex = instance_of(template, "Acme"), instance_of(template, "Globex")
    key = create_api_key(owner=integration, flows=[acme]).plaintext

    mine = call(
        live_server, "GET", "/api/resources/greeting", key=key, headers={HEADER: str(acme.pk)}
    )
    other = call(
        live_server, "GET", "/api/resources/greeting", key=key, headers={HEADER: str(globex.pk)}
    )

    assert mine.status == 200
    assert other.status == 403
    assert re.search("restricted", as_json(other)["detail"])
