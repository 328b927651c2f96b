import json

from django.contrib import admin, messages
from django.utils.html import format_html

from apps.executions import services
from apps.executions.models import Execution

STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "timed_out": "#c62828",
    "cancelled": "#757575",
    "running": "#1565c0",
    "queued": "#757575",
}


def pretty(value) -> str:
    return (
        format_html("<pre>{}</pre>", json.dumps(value, indent=2, default=str))
        if value is not None
        else "—"
    )


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    """Read-only: what ran, who ran it, each step's records, time, debug lines and errors."""

    change_form_template = "admin/executions/execution/change_form.html"
    list_display = (
        "short_id",
        "flow_name",
        "coloured_status",
        "trigger",
        "caller_label",
        "num_success",
        "num_error",
        "num_ignore",
        "created_at",
        "duration",
    )
    list_filter = ("status", "trigger", ("flow", admin.RelatedOnlyFieldListFilter), "created_at")
    list_select_related = ("flow", "caller")
    search_fields = ("=id", "flow_name", "caller_label", "idempotency_key")
    date_hierarchy = "created_at"
    actions = ("cancel",)
    fieldsets = (
        (None, {"fields": ("id", "flow", "coloured_status", "status_code", "error")}),
        (
            "Trigger",
            {
                "fields": (
                    "trigger",
                    "mode",
                    "caller_label",
                    "caller_ip",
                    "pretty_request",
                    "pretty_input",
                    "variables",
                    "idempotency_key",
                    "parent",
                )
            },
        ),
        ("Outcome", {"fields": ("num_success", "num_error", "num_ignore", "pretty_response")}),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration",
                    "heartbeat_at",
                    "timeout_ms",
                    "cancel_requested",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="process id")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="status", ordering="status")
    def coloured_status(self, obj):
        return format_html(
            '<b style="color:{}">{}</b>',
            STATUS_COLOURS.get(obj.status, "inherit"),
            obj.get_status_display(),
        )

    @admin.display(description="duration")
    def duration(self, obj):
        return f"{obj.duration_ms:.1f} ms" if obj.duration_ms is not None else "—"

    @admin.display(description="request")
    def pretty_request(self, obj):
        return pretty(obj.request)

    @admin.display(description="input")
    def pretty_input(self, obj):
        return pretty(obj.input)

    @admin.display(description="response")
    def pretty_response(self, obj):
        return pretty(obj.response)

    @admin.action(description="Cancel selected runs")
    def cancel(self, request, queryset):
        count = sum(services.cancel_execution(execution) for execution in queryset)
        self.message_user(request, f"Asked {count} run(s) to stop.", messages.SUCCESS)
