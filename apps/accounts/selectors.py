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


class RoleNames:
    """A user's role names, read when first asked for and then kept: key_cache gives one
    to each key it remembers, so /api/v1/me reads them once per key and half second, and
    a flow call, which never asks, does not read them at all."""

    __slots__ = ("names",)

    def __init__(self):
        self.names: tuple[str, ...] | None = None


def role_names(user: User) -> list[str]:
    remembered = getattr(user, "_role_names", None)
    if remembered is None:
        return _read_role_names(user)
    if remembered.names is None:  # two threads may both read: the same names
        remembered.names = tuple(_read_role_names(user))
    return list(remembered.names)


def _read_role_names(user: User) -> list[str]:
    return list(user.roles.order_by("name").values_list("name", flat=True))
