"""A Python client generated from /api/schema/ (openapi-python-client, a dev dependency)
works against a live server: with a manage_flows key's schema it creates, lists, reads,
replaces and runs a flow and polls its job; with an integration account's it calls
Execute() and Query(). Generation must give no warning (a warning means a part of the API
the client leaves out or cannot parse)."""

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from apps.accounts.models import Role, User
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.surface.demo import install_lead_registration
from tests.conftest import grant, live_database_url, require

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent


@pytest.fixture
def generator() -> Path:
    command = BIN / "openapi-python-client"
    require(
        "openapi-python-client",
        None if command.exists() else "install the dev dependencies (pip install --group dev)",
    )
    return command


@pytest.fixture
def keys(transactional_db, member, callers_role) -> dict[str, str]:
    """A manage_flows key, and the demo integration account's key (Execute(), Query())."""
    grant(callers_role, Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
    grant(
        Role.objects.create(name="Integration callers"),
        Privilege.USE_API_KEY,
        Privilege.EXECUTE_OPERATIONS,
        Privilege.QUERY_VIEWS,
    )
    owner = User.objects.create_superuser("client-owner", password="owner-pass-123")
    demo = install_lead_registration(owner=owner)
    return {"manage": create_api_key(owner=member).plaintext, "integration": demo.key}


@pytest.fixture
def generate(live_server, generator, tmp_path):
    """Generate the client of the schema a key reads, and import it as `package`."""
    imported = []

    def make(key: str, package: str):
        served = requests.get(
            f"{live_server.url}/api/schema/?format=json",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        served.raise_for_status()
        schema = tmp_path / f"{package}.json"
        schema.write_text(served.text)
        run = subprocess.run(
            [
                *(str(generator), "generate", "--path", str(schema)),
                *("--output-path", str(tmp_path / package), "--meta", "none"),
                "--fail-on-warning",
            ],
            # Its post-hooks run ruff, from the same environment.
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        assert "warning" not in output.lower(), output
        sys.path.insert(0, str(tmp_path))
        imported.append(package)
        return importlib.import_module(package)

    yield make
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
    for name in list(sys.modules):
        if name.split(".")[0] in imported:
            del sys.modules[name]


@pytest.fixture
def worker(start_worker):
    # Runs go to a real worker: same broker as this process, same database.
    return start_worker(DATABASE_URL=live_database_url())


def test_a_generated_client_manages_and_runs_a_flow_and_calls_the_surface(
    live_server, keys, generate, worker
):
    manage = generate(keys["manage"], "flowsite_manage")
    from flowsite_manage.api.flows import (
        v1_flows_create,
        v1_flows_list,
        v1_flows_retrieve,
        v1_flows_run_create,
        v1_flows_update,
    )
    from flowsite_manage.api.integrations import v1_integrations_list
    from flowsite_manage.api.jobs import v1_jobs_retrieve
    from flowsite_manage.models import Flow, FlowRequest, Job, JobDetail, V1FlowsRunCreateBody

    client = manage.AuthenticatedClient(base_url=live_server.url, token=keys["manage"])
    integrations = v1_integrations_list.sync(client=client)
    application = next(i for i in integrations if i.name == "Lead Registration")

    document = {
        "name": "Generated greeting",
        "_integrationId": application.field_id,
        "variables": {"greeting": "Hello"},
    }
    created = v1_flows_create.sync(client=client, body=FlowRequest.from_dict(document))
    assert isinstance(created, Flow), created
    assert created.name == "Generated greeting"
    flow_id = created.field_id

    listed = v1_flows_list.sync(client=client)
    assert "Generated greeting" in [flow.name for flow in listed]
    read = v1_flows_retrieve.sync(flow_id, client=client)
    assert isinstance(read, Flow)
    assert read.variables.to_dict() == {"greeting": "Hello"}

    replaced = v1_flows_update.sync(
        flow_id,
        client=client,
        body=FlowRequest.from_dict({**document, "description": "Made by a generated client"}),
    )
    assert isinstance(replaced, Flow), replaced
    assert replaced.description == "Made by a generated client"

    job = v1_flows_run_create.sync(
        flow_id,
        client=client,
        body=V1FlowsRunCreateBody.from_dict({"input": {"name": "Ada"}}),
    )
    assert isinstance(job, Job), job
    deadline = time.monotonic() + 60
    while True:
        polled = v1_jobs_retrieve.sync(str(job.field_id), client=client)
        assert isinstance(polled, JobDetail), polled
        if polled.status.value not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    assert polled.status.value == "succeeded", worker.log()

    surface = generate(keys["integration"], "flowsite_integration")
    from flowsite_integration.api.integration_surface import surface_execute, surface_query
    from flowsite_integration.models import SurfaceExecuteBody

    caller = surface.AuthenticatedClient(base_url=live_server.url, token=keys["integration"])
    record = surface_execute.sync(
        "Lead Registration",
        "Register Lead",
        client=caller,
        body=SurfaceExecuteBody.from_dict(
            {
                "Company": "Generated Inc",
                "Contact": "Ada",
                "Email": "ada@generated.example",
                "Rating": "Hot",
            }
        ),
    )
    assert not isinstance(record, surface.models.Problem), record
    assert record.to_dict()["Company"] == "Generated Inc"
    records = surface_query.sync("Lead Registration", "All Leads", client=caller, limit=1000)
    assert isinstance(records, list), records
    assert "Generated Inc" in [item.to_dict()["Company"] for item in records]
