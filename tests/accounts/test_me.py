import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from apps.accounts import key_cache, selectors
from apps.accounts.api.serializers import MeSerializer, me_document
from apps.accounts.models import Role, User
from apps.accounts.permissions import HasPrivilege
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key

ME = "/api/v1/me"
ALL = [
    "use_api_key",
    "run_flows",
    "manage_flows",
    "view_executions",
    "execute_operations",
    "query_views",
]


def test_me_lists_every_privilege_of_a_superuser(key_client, owner):
    body = key_client(owner).get(ME).json()
    assert body["isSuperuser"] is True
    assert body["privileges"] == ALL


def test_me_lists_the_privileges_a_member_holds_through_its_role(key_client, member):
    body = key_client(member).get(ME).json()
    assert body["accountType"] == "regular"
    assert body["roles"] == ["Callers"]
    assert body["privileges"] == ["use_api_key", "run_flows"]


def test_me_describes_an_integration_account_and_its_key(key_client, integration):
    body = key_client(integration, label="ERP").get(ME).json()
    assert body["accountType"] == "integration"
    assert body["apiKey"]["label"] == "ERP"
    assert body["apiKey"]["prefix"].startswith("fs_")


def test_me_with_a_session_shows_an_outsider_holds_nothing(api_client, outsider):
    api_client.force_login(outsider)
    body = api_client.get(ME).json()
    assert body["authentication"] == "session"
    assert body["privileges"] == []
    assert body["apiKey"] is None


def test_leaving_a_role_takes_its_privileges_away(key_client, member, callers_role):
    client = key_client(member)
    callers_role.members.remove(member)
    response = client.get(ME)
    assert response.status_code == 403  # no use_api_key any more
    assert response.json()["privilege"] == "use_api_key"


def test_me_without_credentials_is_401(api_client, db):
    response = api_client.get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"]


class RunFlowsView(APIView):
    permission_classes = [HasPrivilege.of(Privilege.RUN_FLOWS)]

    def get(self, request):
        return Response({"ok": True})


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 200), ("member", 200), ("outsider", 403), (None, 401)]
)
def test_a_privilege_gate_admits_holders_and_names_what_others_lack(request, who, status, db):
    factory = APIRequestFactory()
    http_request = factory.get("/gated")
    if who:
        from rest_framework.test import force_authenticate

        force_authenticate(http_request, user=request.getfixturevalue(who))
    response = RunFlowsView.as_view()(http_request)
    assert response.status_code == status
    if status == 403:
        assert response.data["privilege"] == "run_flows"
        assert "run_flows" in response.data["detail"]


def test_an_account_switched_to_integration_loses_its_browser_session_on_the_api(
    api_client, member
):
    api_client.force_login(member)
    assert api_client.get(ME).status_code == 200
    member.account_type = "integration"
    member.save()
    assert api_client.get(ME).status_code == 401


def test_a_client_accepting_only_problem_json_gets_its_error(api_client, db):
    response = api_client.get(ME, HTTP_ACCEPT="application/problem+json")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


@pytest.fixture
def remembered_keys(monkeypatch):
    monkeypatch.setattr(key_cache.memory, "seconds", 60.0)  # however slow the machine
    key_cache.clear()
    yield
    key_cache.clear()


def test_me_with_a_remembered_key_reads_nothing(key_client, member, remembered_keys):
    client = key_client(member)
    assert client.get(ME).status_code == 200  # reads the key, its privileges and roles
    with CaptureQueriesContext(connection) as queries:
        body = client.get(ME).json()
    assert body["roles"] == ["Callers"]
    assert body["privileges"] == ["use_api_key", "run_flows"]
    # The key's last_used_at is written at most once a minute: nothing this time.
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_role_left_leaves_me_within_the_keys_memory(key_client, member, callers_role):
    other = Role.objects.create(name="Auditors")
    other.members.add(member)
    client = key_client(member)
    assert client.get(ME).json()["roles"] == ["Auditors", "Callers"]
    other.members.remove(member)  # in this process: the memory is cleared at once
    assert client.get(ME).json()["roles"] == ["Callers"]


@pytest.mark.parametrize("expires", [None, datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)])
@pytest.mark.parametrize("who", ["owner", "member", "outsider", "inactive superuser"])
def test_the_me_document_is_what_its_documented_serializer_gives(request, who, expires, db):
    if who == "inactive superuser":
        user = User.objects.create_superuser("gone", password="gone-pass-123", is_active=False)
    else:
        user = request.getfixturevalue(who)
    api_key = create_api_key(owner=user, label="ERP", expires_at=expires).api_key
    roles = selectors.role_names(user)
    privileges = selectors.effective_privileges(user)
    assert privileges == [p.value for p in Privilege if user.has_perm(p.perm)]
    for key in (api_key, None):
        documented = MeSerializer(
            {
                "id": user.pk,
                "username": user.username,
                "account_type": user.account_type,
                "is_superuser": user.is_superuser,
                "roles": roles,
                "privileges": privileges,
                "authentication": "apiKey" if key else "session",
                "apiKey": key,
            }
        ).data
        built = me_document(user, api_key=key, roles=roles, privileges=privileges)
        assert json.dumps(built) == json.dumps(documented)
