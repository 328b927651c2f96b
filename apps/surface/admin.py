from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from apps.core.admin import StrictJSONAdminMixin
from apps.surface import selectors
from apps.surface.forms import OperationForm, SurfaceConfigurationForm, ViewForm
from apps.surface.models import ExecuteReceipt, Operation, SurfaceConfiguration, View


@admin.register(SurfaceConfiguration)
class SurfaceConfigurationAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    """One page (Flowfinity's REST Integration tab): the switches, the accounts, and the
    details of every REST-enabled operation and view, with warnings."""

    form = SurfaceConfigurationForm
    fields = ("execute", "query", "integration_accounts")
    filter_horizontal = ("integration_accounts",)
    change_form_template = "admin/surface/surfaceconfiguration/change_form.html"

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not SurfaceConfiguration.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        configuration = SurfaceConfiguration.load()
        return redirect(
            reverse("admin:surface_surfaceconfiguration_change", args=[configuration.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        configuration = SurfaceConfiguration.load()
        overview = selectors.surface_overview(configuration, request.build_absolute_uri("/"))
        extra_context = {**(extra_context or {}), "surface": overview}
        return super().change_view(request, str(configuration.pk), form_url, extra_context)


@admin.register(Operation)
class OperationAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    form = OperationForm
    list_display = ("name", "application", "record_type", "action", "flow", "rest_execute", "url")
    list_filter = ("application", "action", "rest_execute")
    list_select_related = ("application", "record_type", "flow")
    search_fields = ("name", "description")
    filter_horizontal = ("roles",)
    fieldsets = (
        (None, {"fields": ("application", "name", "description", "record_type", "action")}),
        ("Flow", {"fields": ("flow",)}),
        ("Integration", {"fields": ("rest_execute", "roles")}),
    )

    @admin.display(description="Execute() URL")
    def url(self, obj):
        return format_html("<code>POST {}</code>", selectors.execute_url(obj))


@admin.register(View)
class ViewAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    form = ViewForm
    list_display = ("name", "application", "record_type", "rest_query", "url")
    list_filter = ("application", "rest_query")
    list_select_related = ("application", "record_type")
    search_fields = ("name", "description")
    filter_horizontal = ("roles",)
    fieldsets = (
        (None, {"fields": ("application", "name", "description", "record_type")}),
        ("Records", {"fields": ("fields", "parameters", "filters", "ordering")}),
        ("Integration", {"fields": ("rest_query", "roles")}),
    )

    @admin.display(description="Query() URL")
    def url(self, obj):
        return format_html("<code>GET {}</code>", selectors.query_url(obj))


@admin.register(ExecuteReceipt)
class ExecuteReceiptAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    """Read-only: what Execute() answered to each ExternalTransactionId."""

    list_display = ("external_transaction_id", "account", "operation", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("account", "operation")
    search_fields = ("external_transaction_id", "account__username")
    readonly_fields = ("account", "external_transaction_id", "operation", "status", "body")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
