"""Issue "Hot path", constraints: changes take effect everywhere within 1 s.

Keys (apps/accounts/key_cache.py), routes (apps/executions/route_cache.py) and flow specs
(apps/flows/spec_cache.py) are remembered by each web process for half a second. A key
revoked, an account deactivated, a flow disabled or moved to another path, whether by
`QuerySet.update()` (no signal anywhere), by a save in another process (the admin, a
command) or through the API (a signal in one web process only), is refused, or served at
its new route, by every web process 1 s later.

The live-server test runs `manage.py serve` with two web processes, both warmed first, on
the test database; the in-process test repeats it with the caches on as in production.
Nothing here is timed beyond the 1.1 s waits."""

import http.client
import json
import time

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import key_cache
from apps.accounts.models import ApiKey, User
from apps.accounts.services import create_api_key, revoke_api_keys
from apps.executions import route_cache
from apps.flows import spec_cache
from apps.flows.models import Flow, Script
from tests.conftest import Privilege, grant
from tests.core.test_serve import Serve, free_port
from tests.executions.conftest import GREETING

AFTER = 1.1  # seconds: every cache's lifetime (0.5 s) and then some
FOLLOW_UPS = 50
WARM_UPS = 40  # new connections: both web processes answer some of them

MOVED_API = {"enabled": True, "method": "GET", "path": "/greeting-moved", "mode": "sync"}


def greeting_flow(application, name="greeting", path="/greeting") -> Flow:
    script = Script.objects.create(name=f"{name}-script", content=GREETING)
    return Flow.objects.create(
        application=application,
        name=name,
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": path, "mode": "sync"},
    )


def scenarios(application, integration, callers_role):
    """(name, make the change, the path that must now refuse, the path that must answer)

    Each scenario gets its own key, account or flow, so one change never masks another."""

    def fresh_caller(name: str) -> tuple[User, str]:
        user = User.objects.create_user(name, account_type=User.AccountType.INTEGRATION)
        callers_role.members.add(user)
        return user, create_api_key(owner=user).plaintext

    return [
        (
            "key revoked by update()",
            "key",
            lambda ctx: ApiKey.objects.filter(pk=ctx["key_id"]).update(revoked_at=timezone.now()),
        ),
        (
            "key revoked by a command",
            "key",
            lambda ctx: revoke_api_keys(queryset=ApiKey.objects.filter(pk=ctx["key_id"])),
        ),
        (
            "account deactivated by update()",
            "key",
            lambda ctx: User.objects.filter(pk=ctx["user_id"]).update(is_active=False),
        ),
        ("account deactivated by a save", "key", lambda ctx: _deactivate(ctx["user_id"])),
        (
            "flow disabled by update()",
            "flow",
            lambda ctx: Flow.objects.filter(pk=ctx["flow_id"]).update(disabled=True),
        ),
        (
            "flow disabled through the API",
            "flow",
            lambda ctx: ctx["manage"](ctx["flow_id"], {"disabled": True}),
        ),
        (
            "flow moved by update()",
            "moved",
            lambda ctx: Flow.objects.filter(pk=ctx["flow_id"]).update(
                api=MOVED_API, api_path=MOVED_API["path"], api_method="GET"
            ),
        ),
        (
            "flow moved through the API",
            "moved",
            lambda ctx: ctx["manage"](ctx["flow_id"], {"api": MOVED_API}),
        ),
    ], fresh_caller


def _deactivate(user_id) -> None:
    user = User.objects.get(pk=user_id)
    user.is_active = False
    user.save()


def run_scenarios(application, integration, callers_role, get, manage):
    """Each change, then FOLLOW_UPS calls 1.1 s later; `get(path, key)` → status."""
    found, fresh_caller = scenarios(application, integration, callers_role)
    for index, (name, kind, change) in enumerate(found):
        user, key = fresh_caller(f"caller-{index}")
        path = f"/greeting-{index}"
        flow = greeting_flow(application, name=f"greeting-{index}", path=path)
        route = f"/api/resources{path}?name=Leor"
        moved = f"/api/resources{MOVED_API['path']}?name=Leor"
        for _ in range(WARM_UPS):
            assert get(route, key) == 200, name
        ctx = {
            "key_id": ApiKey.objects.get(owner=user).pk,
            "user_id": user.pk,
            "flow_id": flow.pk,
            "manage": manage,
        }
        change(ctx)
        time.sleep(AFTER)
        refused = [get(route, key) for _ in range(FOLLOW_UPS)]
        expected = {"key": 401, "flow": 409, "moved": 404}[kind]
        assert refused == [expected] * FOLLOW_UPS, (name, refused)
        if kind == "moved":
            served = [get(moved, key) for _ in range(FOLLOW_UPS)]
            assert served == [200] * FOLLOW_UPS, (name, served)
            Flow.objects.filter(pk=flow.pk).delete()  # the moved path is free again


@pytest.fixture
def manager_key(callers_role, owner) -> str:
    """A key of an account that manages flows, for the API changes."""
    grant(callers_role, Privilege.MANAGE_FLOWS)
    user = User.objects.create_user("flow-manager", account_type=User.AccountType.INTEGRATION)
    callers_role.members.add(user)
    return create_api_key(owner=user).plaintext


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_see_each_change_within_a_second(
    tmp_path, application, integration, callers_role, manager_key
):
    port = free_port()
    serve = Serve(
        tmp_path,
        port,
        WEB_WORKERS="2",
        FLOWSITE_API_KEY_SECRET=settings.FLOWSITE_API_KEY_SECRET.decode(),
        FLOWSITE_THROTTLE_KEY="1000000/min",
        FLOWSITE_THROTTLE_USER="1000000/min",
        FLOWSITE_THROTTLE_AUTH_FAILURE="1000000/min",
    )

    def request(method: str, path: str, key: str, body: str | None = None) -> int:
        # A new connection per call: the two web processes share the listening socket.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def manage(flow_id, document) -> None:
        status = request("PATCH", f"/api/v1/flows/{flow_id}", manager_key, json.dumps(document))
        assert status == 200, status

    try:
        serve.wait_healthy()
        assert len(serve.children()) == 3, serve.children()  # web (2 workers), worker, beat
        run_scenarios(
            application,
            integration,
            callers_role,
            lambda path, key: request("GET", path, key),
            manage,
        )
    finally:
        serve.cleanup()


@pytest.fixture
def caches_on(monkeypatch):
    """Every cache as in production (tests/conftest.py turns them off)."""
    for module in (key_cache, route_cache, spec_cache):
        monkeypatch.setattr(module.memory, "seconds", 0.5)
        module.clear()
    yield
    for module in (key_cache, route_cache, spec_cache):
        module.clear()


@pytest.mark.django_db(transaction=True)
def test_in_process_each_change_is_seen_within_a_second(
    application, integration, callers_role, manager_key, caches_on, settings
):
    settings.FLOWSITE_THROTTLE_RATES = dict.fromkeys(
        settings.FLOWSITE_THROTTLE_RATES, "1000000/min"
    )
    client = APIClient()

    def get(path: str, key: str) -> int:
        return client.get(path, HTTP_AUTHORIZATION=f"Bearer {key}").status_code

    def manage(flow_id, document) -> None:
        response = client.patch(
            f"/api/v1/flows/{flow_id}",
            document,
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {manager_key}",
        )
        assert response.status_code == 200, response.content

    run_scenarios(application, integration, callers_role, get, manage)
