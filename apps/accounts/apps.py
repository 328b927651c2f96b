from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    """Users (regular and integration accounts), roles and API keys."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"
    default_auto_field = "django.db.models.BigAutoField"


class FlowsiteAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the site that refuses integration accounts."""

    default = False  # AdminConfig says True; AccountsConfig is this module's default
    default_site = "apps.accounts.admin_site.FlowsiteAdminSite"
