from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    """Users (regular and integration accounts), roles and API keys."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.accounts.permissions import MANAGE_DEFINITIONS, READ_DEFINITIONS
        from apps.core.api import guard_definitions

        guard_definitions(read=READ_DEFINITIONS, manage=MANAGE_DEFINITIONS)
        _forget_keys_on_account_changes()


def _forget_keys_on_account_changes() -> None:
    """A key, account, role, group or privilege saved or deleted in this process clears
    the remembered keys at once (other processes forget them within half a second)."""
    from django.contrib.auth.models import Group, Permission
    from django.db.models import signals

    from apps.accounts import key_cache
    from apps.accounts.models import ApiKey, Role, User

    for model in (ApiKey, User, Role, Group, Permission):
        signals.post_save.connect(key_cache.clear, sender=model, dispatch_uid=f"keys-{model}")
        signals.post_delete.connect(key_cache.clear, sender=model, dispatch_uid=f"keys-{model}")
    for through in (
        Role.members.through,
        Role.permissions.through,
        User.groups.through,
        User.user_permissions.through,
        Group.permissions.through,
        ApiKey.flows.through,
    ):
        signals.m2m_changed.connect(key_cache.clear, sender=through, dispatch_uid=f"keys-{through}")


class FlowsiteAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the site that refuses integration accounts."""

    default = False  # AdminConfig says True; AccountsConfig is this module's default
    default_site = "apps.accounts.admin_site.FlowsiteAdminSite"
