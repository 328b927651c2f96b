"""Fixtures for calling flows over HTTP on a live server."""

import json
import time

import pytest
import urllib3
from werkzeug.wrappers import Response

from apps.accounts.services import create_api_key
from apps.executions import queue
from apps.flows.models import Application, Export, Flow, Script

GREETING = (
    "function main(ctx) {\n"
    "  return {statusCode: 200, result: 'Hello ' + ctx.trigger.args.request.query.name};\n}"
)
http = urllib3.PoolManager(retries=False, timeout=30)


def call(live_server, method, path, *, key=None, bare=False, headers=None, body=None, **kw):
    headers = dict(headers or {})
    if key:
        headers["Authorization"] = key if bare else f"Bearer {key}"
    if isinstance(body, dict | list):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    return http.request(method, f"{live_server.url}{path}", headers=headers, body=body, **kw)


def as_json(response):
    return json.loads(response.data)


@pytest.fixture
def sales(db) -> Application:
    return Application.objects.create(name="Sales Ops")


@pytest.fixture
def greeting(sales) -> Flow:
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    return Flow.objects.create(
        application=sales,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/greeting", "mode": "sync"},
    )


@pytest.fixture
def leads(sales, local_api, httpserver) -> Flow:
    httpserver.expect_request("/leads").respond_with_json(
        {"data": [{"company": "Acme", "rating": "Hot"}, {"company": "Globex", "rating": "Cold"}]}
    )
    export = Export.objects.create(
        name="Leads", connection=local_api, relative_uri="/leads", resource_path="data"
    )
    return Flow.objects.create(
        application=sales,
        name="Hot leads",
        page_generators=[{"_exportId": str(export.pk)}],
        api={"enabled": True, "mode": "sync", "outputName": "Leads"},
    )


@pytest.fixture
def caller_key(integration) -> str:
    return create_api_key(owner=integration).plaintext


@pytest.fixture
def slow_flow(sales, local_api, httpserver):
    """make(name, seconds, body, **flow fields): an API flow whose one page takes a while."""

    def make(name: str, seconds: float, body: str = "[]", **fields) -> Flow:
        path = f"/slow/{name}"

        def slow(request):
            time.sleep(seconds)
            return Response(body, content_type="application/json")

        httpserver.expect_request(path).respond_with_handler(slow)
        export = Export.objects.create(name=name, connection=local_api, relative_uri=path)
        return Flow.objects.create(
            application=sales, name=name, page_generators=[{"_exportId": str(export.pk)}], **fields
        )

    return make


@pytest.fixture
def queued(monkeypatch):
    """Runs handed to a worker (none runs: the test looks at what was queued)."""
    sent: list[str] = []
    monkeypatch.setattr(queue, "send_run", sent.append)
    return sent
