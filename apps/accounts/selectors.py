"""Reads for accounts."""

from apps.accounts.models import User
from apps.accounts.privileges import Privilege


def effective_privileges(user: User) -> list[str]:
    """Flowsite privileges the user holds (roles, direct permissions or superuser)."""
    return [privilege.value for privilege in Privilege if user.has_perm(privilege.perm)]


def role_names(user: User) -> list[str]:
    return list(user.roles.order_by("name").values_list("name", flat=True))
