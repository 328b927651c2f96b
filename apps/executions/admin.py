import json
import uuid

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.admin import StrictJSONAdminMixin
from apps.executions import diagram as diagrams
from apps.executions import launch, live
from apps.executions.errors import Refused
from apps.executions.models import Execution, RunRecording
from apps.flows.admin import FlowAdmin
from apps.flows.forms import TestRunForm
from apps.flows.models import Flow

STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "completed_with_errors": "#e65100",
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
class ExecutionAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    """Read-only: what ran, who ran it, each step's records, time, debug lines and errors."""

    change_form_template = "admin/executions/execution/change_form.html"
    change_list_template = "admin/executions/execution/change_list.html"
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
    actions = ("retry", "cancel")
    fieldsets = (
        (None, {"fields": ("id", "flow", "coloured_status", "status_code", "error", "diagram")}),
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

    def get_search_results(self, request, queryset, search_term):
        """A process id can be searched by its first characters (the list shows 8)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lower()
        if 4 <= len(term) < 36 and all(char in "0123456789abcdef-" for char in term):
            found = found | queryset.filter(id__startswith=term)
        return found, duplicates

    # --- Retry, Re-run and Cancel on a run's page, through the front door ---------------

    BUTTONS = {
        "retry": "Retry",
        "rerun": "Re-run with the same input",
        "record": "Re-run and record (to save as a test)",
        "cancel": "Cancel",
    }

    def buttons(self, execution: Execution) -> list[tuple[str, str]]:
        """(action, label) of what can be done to this run now."""
        if not execution.is_finished:
            return [("cancel", self.BUTTONS["cancel"])]
        if execution.flow_id is None or execution.trigger == Execution.Trigger.EXECUTE:
            return []
        shown = [] if execution.status == Execution.Status.SUCCEEDED else ["retry"]
        shown.append("rerun")
        if not RunRecording.objects.filter(execution=execution, complete=True).exists():
            shown.append("record")  # a recorded run offers "Save as test" instead (flowtests)
        return [(action, self.BUTTONS[action]) for action in shown]

    def get_urls(self):
        return [
            path(
                "<uuid:execution_id>/run-action/<str:action>/",
                self.admin_site.admin_view(self.run_action_view),
                name="executions_execution_run_action",
            ),
            # Live runs: what the run page and the runs list poll while runs go on.
            path(
                "<uuid:execution_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="executions_execution_progress",
            ),
            path(
                "progress/",
                self.admin_site.admin_view(self.progress_list_view),
                name="executions_execution_progress_list",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request, execution_id):
        """One run's status, counts, current step and steps' counters, as JSON."""
        if not self.has_view_permission(request):
            return JsonResponse({"detail": "You may not view runs."}, status=403)
        state = live.run_state(execution_id)
        if state is None:
            return JsonResponse({"detail": "No such run."}, status=404)
        return JsonResponse({**state, "colour": STATUS_COLOURS.get(state["status"], "")})

    def progress_list_view(self, request):
        """The status and counts of the runs named by `?id=` (the runs list, live)."""
        if not self.has_view_permission(request):
            return JsonResponse({"detail": "You may not view runs."}, status=403)
        ids = []
        for value in request.GET.getlist("id"):
            try:
                ids.append(uuid.UUID(value))
            except ValueError:
                return JsonResponse({"detail": f"{value!r} is not a process id."}, status=400)
        runs = [
            {**state, "colour": STATUS_COLOURS.get(state["status"], "")}
            for state in live.runs_state(ids)
        ]
        return JsonResponse({"runs": runs})  # admin_view: never cached

    def run_action_view(self, request, execution_id, action: str):
        execution = get_object_or_404(Execution.objects.select_related("flow"), pk=execution_id)
        back = redirect("admin:executions_execution_change", execution.pk)
        if request.method != "POST" or action not in self.BUTTONS:
            return back
        if not self.has_view_permission(request, execution):
            return redirect("admin:index")
        caller = launch.Caller(user=request.user)
        try:
            if action == "cancel":
                launch.cancel(execution, caller=caller)
                self.message_user(request, "Asked the run to stop.", messages.SUCCESS)
                return back
            started, _ = launch.retry(
                execution,
                caller=caller,
                whole=action in ("rerun", "record"),
                capture=action == "record",
            )
        except Refused as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return back
        verb = {"rerun": "Queued a re-run:", "record": "Queued a recorded re-run:"}.get(
            action, "Queued a retry:"
        )
        self.message_user(request, run_link(verb, started), messages.SUCCESS)
        return redirect("admin:executions_execution_change", started.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        execution = self.get_object(request, object_id)
        buttons = self.buttons(execution) if execution is not None else []
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "run_buttons": buttons}
        )

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

    @admin.display(description="diagram")
    def diagram(self, obj):
        return diagrams.html(diagrams.for_run(obj))

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
        caller = launch.Caller(user=request.user)
        asked, finished = 0, []
        for execution in queryset.select_related("flow"):
            try:
                launch.cancel(execution, caller=caller)
                asked += 1
            except Refused as refused:
                finished.append(refused.message)
        if asked:
            self.message_user(request, f"Asked {asked} run(s) to stop.", messages.SUCCESS)
        for message in finished:
            self.message_user(request, message, messages.WARNING)

    @admin.action(description="Retry selected runs (on a worker)")
    def retry(self, request, queryset):
        caller = launch.Caller(user=request.user)
        queued = []
        for execution in queryset.select_related("flow__application"):
            try:
                queued.append(launch.retry(execution, caller=caller)[0])
            except Refused as refused:
                self.message_user(request, refused.message, messages.ERROR)
        if len(queued) == 1:
            self.message_user(request, run_link("Queued retry", queued[0]), messages.SUCCESS)
        elif queued:
            self.message_user(request, runs_link("Queued", "retries", queued), messages.SUCCESS)


def run_link(text: str, execution: Execution) -> str:
    url = reverse("admin:executions_execution_change", args=[execution.pk])
    return format_html('{} <a href="{}">{}</a>.', text, url, str(execution.pk)[:8])


def runs_link(verb: str, noun: str, executions: list[Execution]) -> str:
    """An action that queued several runs links to the runs list showing just them, which
    updates itself while they go on (live_run.js)."""
    ids = ",".join(str(execution.pk) for execution in executions)
    url = f"{reverse('admin:executions_execution_changelist')}?id__in={ids}"
    return format_html(
        '{} {} {}: <a href="{}">watch them live</a>.', verb, len(executions), noun, url
    )


class RunnableFlowAdmin(FlowAdmin):
    """The flow page of the admin, with what runs flows: Run now, Test run, last run."""

    list_display = (*FlowAdmin.list_display, "last_status")
    actions = ("run_now", *FlowAdmin.actions)

    def get_queryset(self, request):
        last = Execution.objects.filter(flow=OuterRef("pk")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(last_run_status=Subquery(last.values("status")[:1]))
        )

    @admin.display(description="pipeline")
    def pipeline(self, obj):
        """The flow as a diagram with its last run's numbers, instead of a numbered list."""
        if not obj.pk:
            return super().pipeline(obj)
        return diagrams.html(diagrams.for_flow(obj))

    @admin.display(description="last run")
    def last_status(self, obj):
        if not obj.last_run_status:
            return "—"
        return format_html(
            '<b style="color:{}">{}</b>',
            STATUS_COLOURS.get(obj.last_run_status, "inherit"),
            Execution.Status(obj.last_run_status).label,
        )

    def get_urls(self):
        return [
            path(
                "<int:flow_id>/test-run/",
                self.admin_site.admin_view(self.test_run_view),
                name="flows_flow_test_run",
            ),
            path(
                "<int:flow_id>/run-now/",
                self.admin_site.admin_view(self.run_now_view),
                name="flows_flow_run_now",
            ),
            *super().get_urls(),
        ]

    def test_run_view(self, request, flow_id: int):
        flow = get_object_or_404(Flow.objects.select_related("application"), pk=flow_id)
        if not self.has_change_permission(request, flow):
            return redirect("admin:index")
        execution = None
        form = TestRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                execution = launch.admin_test_run(
                    flow,
                    caller=launch.Caller(user=request.user),
                    input=form.cleaned_data["input"],
                    query=form.cleaned_data["query"],
                    variables=form.cleaned_data["variables"],
                )
            except Refused as refused:
                messages.error(request, refused.message)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Test run: {flow}",
            "opts": self.model._meta,
            "original": flow,
            "flow": flow,
            "form": form,
            "execution": execution,
            "steps": execution.steps.all() if execution else [],
            "errors": execution.errors.all()[:50] if execution else [],
        }
        return TemplateResponse(request, "admin/flows/flow/test_run.html", context)

    def run_now_view(self, request, flow_id: int):
        """The flow page's Run now: one run through the front door, then its page, where
        it is watched live."""
        flow = get_object_or_404(Flow.objects.select_related("application"), pk=flow_id)
        back = redirect("admin:flows_flow_change", flow.pk)
        if request.method != "POST":
            return back
        if not self.has_change_permission(request, flow):
            return redirect("admin:index")
        try:
            execution, _ = launch.run(flow, caller=launch.Caller(user=request.user))
        except Refused as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return back
        self.message_user(request, run_link("Queued", execution), messages.SUCCESS)
        return redirect("admin:executions_execution_change", execution.pk)

    @admin.action(description="Run now (on a worker)")
    def run_now(self, request, queryset):
        caller = launch.Caller(user=request.user)
        queued = []
        for flow in queryset.select_related("application"):
            try:
                execution, _ = launch.run(flow, caller=caller)
            except Refused as refused:
                self.message_user(request, f"{flow}: {refused.message}", messages.ERROR)
            else:
                queued.append((flow, execution))
        if len(queued) == 1:
            flow, execution = queued[0]
            self.message_user(request, run_link(f"{flow}: queued run", execution), messages.SUCCESS)
        elif queued:
            runs = [execution for _, execution in queued]
            self.message_user(request, runs_link("Queued", "runs", runs), messages.SUCCESS)


admin.site.unregister(Flow)
admin.site.register(Flow, RunnableFlowAdmin)
