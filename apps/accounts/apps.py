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


class FlowsiteAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the site that refuses integration accounts."""

    default = False  # AdminConfig says True; AccountsConfig is this module's default
    default_site = "apps.accounts.admin_site.FlowsiteAdminSite"
