from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class RoleBackend(ModelBackend):
    """ModelBackend whose permissions also include those of the user's roles.

    All effective permissions (direct, groups, roles) load in one query per request,
    cached on the user object like ModelBackend's own cache.
    """

    def get_role_permissions(self, user_obj, obj=None) -> set[str]:
        return self._get_permissions(user_obj, obj, "role")

    def _get_role_permissions(self, user_obj):
        return Permission.objects.filter(roles__members=user_obj)

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.all()
            else:
                perms = Permission.objects.filter(
                    Q(user=user_obj) | Q(group__user=user_obj) | Q(roles__members=user_obj)
                )
            rows = perms.values_list("content_type__app_label", "codename").distinct()
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in rows}
        return user_obj._perm_cache
