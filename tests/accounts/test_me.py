import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from apps.accounts.permissions import HasPrivilege
from apps.accounts.privileges import Privilege

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
