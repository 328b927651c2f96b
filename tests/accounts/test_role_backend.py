from django.contrib.auth.models import Permission

from apps.accounts.models import User
from apps.accounts.privileges import Privilege
from tests.conftest import grant


def test_privileges_come_from_roles_direct_permissions_and_superuser(db, member, owner):
    direct = User.objects.create_user("direct")
    direct.user_permissions.add(Permission.objects.get(codename="view_executions"))
    assert direct.has_perm(Privilege.VIEW_EXECUTIONS.perm)
    assert not direct.has_perm(Privilege.RUN_FLOWS.perm)
    assert member.has_perm(Privilege.RUN_FLOWS.perm)
    assert not member.has_perm(Privilege.VIEW_EXECUTIONS.perm)
    assert owner.has_perm(Privilege.QUERY_VIEWS.perm)


def test_all_effective_permissions_load_in_one_query(
    member, callers_role, django_assert_num_queries
):
    grant(callers_role, Privilege.QUERY_VIEWS)
    user = User.objects.get(pk=member.pk)
    with django_assert_num_queries(1):
        assert user.has_perm(Privilege.QUERY_VIEWS.perm)
        assert user.has_perm(Privilege.USE_API_KEY.perm)
        assert not user.has_perm(Privilege.MANAGE_FLOWS.perm)


def test_an_inactive_account_holds_nothing(member):
    member.is_active = False
    assert not member.has_perm(Privilege.RUN_FLOWS.perm)
