"""DRF permission classes that name the privilege a caller is missing."""

from rest_framework import permissions

from apps.accounts.privileges import Privilege
from apps.core.exceptions import ProblemException


class MissingPrivilege(ProblemException):
    status_code = 403
    default_code = "missing_privilege"

    def __init__(self, privilege: Privilege, *, subject: str = "Your account"):
        super().__init__(
            f"{subject} lacks the privilege '{privilege.value}'. Ask an administrator to "
            "grant it through a role.",
            privilege=privilege.value,
        )


class MissingPrivileges(ProblemException):
    status_code = 403
    default_code = "missing_privilege"

    def __init__(self, privileges: tuple[Privilege, ...]):
        names = " or ".join(f"'{privilege.value}'" for privilege in privileges)
        super().__init__(
            f"Your account lacks the privilege {names}. Ask an administrator to grant one "
            "through a role.",
            privileges=[privilege.value for privilege in privileges],
        )


class KeyRestricted(ProblemException):
    status_code = 403
    default_code = "key_restricted"


def refuse_restricted_key(request) -> None:
    """A key restricted to flows only calls those flows' endpoints (and polls their runs):
    not the management API, the jobs API or the integration surface."""
    if getattr(getattr(request, "auth", None), "restricted", False):
        raise KeyRestricted(
            "This API key is restricted to flows: it can only call their endpoints. Use an "
            "unrestricted key of the account for the rest of the API."
        )


class HasPrivilege(permissions.BasePermission):
    """Use as `HasPrivilege.of(Privilege.RUN_FLOWS)` in `permission_classes`."""

    privilege: Privilege

    @classmethod
    def of(cls, privilege: Privilege) -> type["HasPrivilege"]:
        return type(f"Has_{privilege.value}", (cls,), {"privilege": privilege})

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 with WWW-Authenticate
        refuse_restricted_key(request)
        if not user.has_perm(self.privilege.perm):
            raise MissingPrivilege(self.privilege)
        return True


class HasAnyPrivilege(permissions.BasePermission):
    """Use as `HasAnyPrivilege.of(Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)`."""

    privileges: tuple[Privilege, ...]

    @classmethod
    def of(cls, *privileges: Privilege) -> type["HasAnyPrivilege"]:
        name = "_or_".join(privilege.value for privilege in privileges)
        return type(f"HasAny_{name}", (cls,), {"privileges": privileges})

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        refuse_restricted_key(request)
        if not any(user.has_perm(privilege.perm) for privilege in self.privileges):
            raise MissingPrivileges(self.privileges)
        return True


# The management API's definitions (flows, resources, data tables, the surface).
READ_DEFINITIONS = HasAnyPrivilege.of(Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
MANAGE_DEFINITIONS = HasPrivilege.of(Privilege.MANAGE_FLOWS)


def may_manage(request) -> bool:
    """Whether the request's caller may manage flows: an account holding manage_flows,
    through a session or a key that is not restricted to flows."""
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return False
    if getattr(getattr(request, "auth", None), "restricted", False):
        return False
    return user.has_perm(Privilege.MANAGE_FLOWS.perm)
