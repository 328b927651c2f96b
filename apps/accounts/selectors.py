"""Reads for accounts."""

from apps.accounts.models import User
from apps.accounts.privileges import Privilege


def effective_privileges(user: User) -> list[str]:
    """Flowsite privileges the user holds (roles, direct permissions or superuser).

    As `user.has_perm` answers for each, with the permissions read once."""
    if not user.is_active:
        return []
    if user.is_superuser:
        return [privilege.value for privilege in Privilege]
    held = user.get_all_permissions()
    return [privilege.value for privilege in Privilege if privilege.perm in held]


def role_names(user: User) -> list[str]:
    """The user's roles by name; a key's owner from key_cache brings them along."""
    remembered = getattr(user, "_role_names", None)
    if remembered is not None:
        return list(remembered)
    return list(user.roles.order_by("name").values_list("name", flat=True))
