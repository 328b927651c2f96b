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
        if not user.has_perm(self.privilege.perm):
            raise MissingPrivilege(self.privilege)
        return True
