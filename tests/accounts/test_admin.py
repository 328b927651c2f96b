import re

import pytest

from apps.accounts import keys
from apps.accounts.models import ApiKey, Role


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/",
        "/admin/accounts/user/add/",
        "/admin/accounts/role/",
        "/admin/accounts/role/add/",
        "/admin/accounts/apikey/",
        "/admin/accounts/apikey/add/",
    ],
)
def test_admin_pages_render(admin_client, url):
    assert admin_client.get(url).status_code == 200


def test_admin_change_pages_render(admin_client, member, callers_role):
    assert admin_client.get(f"/admin/accounts/user/{member.pk}/change/").status_code == 200
    assert admin_client.get(f"/admin/accounts/role/{callers_role.pk}/change/").status_code == 200


def shown_keys(response) -> list[str]:
    return re.findall(r"fs_[A-Za-z0-9_-]{43}", response.content.decode())


def test_generate_api_key_action_shows_the_key_once_and_stores_its_hash(admin_client, member):
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "generate_api_key", "_selected_action": [member.pk]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [plaintext] = shown_keys(response)
    key = ApiKey.objects.get(owner=member)
    assert key.digest == keys.digest(plaintext)
    listing = admin_client.get("/admin/accounts/apikey/")
    assert shown_keys(listing) == []
    assert shown_keys(admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/")) == []


def test_generate_api_key_warns_when_the_account_lacks_use_api_key(admin_client, outsider):
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "generate_api_key", "_selected_action": [outsider.pk]},
    )
    assert "lacks the privilege" in response.content.decode()


def test_adding_a_key_in_the_admin_shows_it_once(admin_client, member):
    response = admin_client.post(
        "/admin/accounts/apikey/add/", {"owner": member.pk, "label": "From the form"}
    )
    assert response.status_code == 200
    [plaintext] = shown_keys(response)
    assert ApiKey.objects.get(label="From the form").digest == keys.digest(plaintext)


def test_revoke_action_revokes_selected_keys(admin_client, member, key_client):
    client = key_client(member)
    key = ApiKey.objects.get(owner=member)
    admin_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert client.get("/api/v1/me").status_code == 401


def test_roles_list_shows_member_counts(admin_client, member, callers_role):
    content = admin_client.get("/admin/accounts/role/").content.decode()
    assert "Callers" in content
    assert Role.objects.get().members.count() == 1


def test_a_staff_member_cannot_mint_a_key_for_a_superuser(client, owner, member):
    from django.contrib.auth.models import Permission

    member.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "add_apikey", "view_apikey"])
    )
    client.force_login(member)
    client.post(
        "/admin/accounts/user/", {"action": "generate_api_key", "_selected_action": [owner.pk]}
    )
    assert not ApiKey.objects.filter(owner=owner).exists()
    page = client.post("/admin/accounts/apikey/add/", {"owner": owner.pk, "label": "x"})
    assert "more powerful than yours" in page.content.decode()
    assert not ApiKey.objects.filter(owner=owner).exists()


def test_a_view_only_staff_member_cannot_revoke_keys(client, member, outsider):
    from django.contrib.auth.models import Permission

    from apps.accounts.services import create_api_key

    key = create_api_key(owner=outsider).api_key
    outsider.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(outsider)
    client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_staff_member_cannot_mint_a_key_for_a_member_of_a_role_they_are_not_in(
    client, member, outsider
):
    """An outside probe: a helpdesk account issued a key for a partner account and called
    the flows only the Partners role may call."""
    from django.contrib.auth.models import Permission

    member.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "add_apikey", "view_apikey"])
    )
    partners = Role.objects.create(name="Partners")
    partners.members.add(outsider)
    client.force_login(member)

    page = client.post("/admin/accounts/apikey/add/", {"owner": outsider.pk, "label": "x"})

    assert "more powerful than yours" in page.content.decode()
    assert not ApiKey.objects.filter(owner=outsider).exists()
    partners.members.add(member)  # a fellow member may
    client.post("/admin/accounts/apikey/add/", {"owner": outsider.pk, "label": "y"})
    assert ApiKey.objects.filter(owner=outsider, label="y").exists()


@pytest.fixture
def user_manager(client, member):
    """Staff who may change users and roles (an outside probe's "hr")."""
    from django.contrib.auth.models import Permission

    member.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_user", "change_user", "view_role", "change_role", "add_role"]
        )
    )
    client.force_login(member)
    return client


def test_a_user_manager_cannot_make_themselves_superuser(user_manager, member):
    """An outside probe ticked "superuser" on its own account and got the whole admin."""
    page = user_manager.get(f"/admin/accounts/user/{member.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page

    answer = user_manager.post(
        f"/admin/accounts/user/{member.pk}/change/",
        {
            "username": member.username,
            "account_type": member.account_type,
            "is_superuser": "on",
            "is_active": "on",
            "is_staff": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert answer.status_code == 302  # saved: the box was not there to tick
    member.refresh_from_db()
    assert member.is_superuser is False


def test_a_user_manager_cannot_change_a_more_powerful_account_or_its_password(user_manager, owner):
    assert user_manager.post(f"/admin/accounts/user/{owner.pk}/change/", {}).status_code == 403
    answer = user_manager.post(
        f"/admin/accounts/user/{owner.pk}/password/",
        {"password1": "Taken-over-123", "password2": "Taken-over-123"},
    )
    assert answer.status_code == 403
    owner.refresh_from_db()
    assert owner.check_password("owner-pass-123")


def test_a_role_manager_cannot_join_a_role_or_grant_what_they_do_not_have(user_manager, member):
    from django.contrib.auth.models import Permission

    partners = Role.objects.create(name="Partners")
    answer = user_manager.post(
        f"/admin/accounts/role/{partners.pk}/change/",
        {"name": "Partners", "members": [member.pk]},
    )
    assert answer.status_code == 403
    assert not partners.members.exists()

    manage = Permission.objects.get(codename="manage_flows")
    page = user_manager.post(
        "/admin/accounts/role/add/",
        {"name": "Builders", "permissions": [manage.pk], "members": [member.pk]},
    )
    assert "You cannot grant what you do not have: manage_flows." in page.content.decode()
    assert not Role.objects.filter(name="Builders").exists()


def test_a_user_manager_cannot_take_over_an_inactive_more_powerful_account(
    user_manager, django_user_model
):
    """The review: Django counts no permission for an inactive account, so it looked no
    more powerful than anyone, and its password could be set and the account activated."""
    from django.contrib.auth.models import Permission

    dormant = django_user_model.objects.create_user(
        "dormant", password="dormant-pass-1", is_active=False
    )
    dormant.user_permissions.add(Permission.objects.get(codename="manage_flows"))

    answer = user_manager.post(
        f"/admin/accounts/user/{dormant.pk}/password/",
        {"password1": "Taken-over-123", "password2": "Taken-over-123"},
    )

    assert answer.status_code == 403
    dormant.refresh_from_db()
    assert dormant.check_password("dormant-pass-1")


def test_a_role_manager_cannot_add_themselves_to_a_new_role_or_rename_their_own(
    user_manager, member, callers_role
):
    """The review: flows name the roles that may call them, so a new role named like one a
    flow lists, or their own renamed so, would open that flow to them."""
    page = user_manager.post(
        "/admin/accounts/role/add/", {"name": "Partners", "members": [member.pk]}
    )
    assert "You cannot add yourself to a role." in page.content.decode()
    assert not Role.objects.filter(name="Partners").exists()

    page = user_manager.post(
        f"/admin/accounts/role/{callers_role.pk}/change/",
        {
            "name": "Partners",
            "members": [member.pk],
            "permissions": list(callers_role.permissions.values_list("pk", flat=True)),
        },
    )
    assert "Only a superuser renames a role" in page.content.decode()
    callers_role.refresh_from_db()
    assert callers_role.name == "Callers"
