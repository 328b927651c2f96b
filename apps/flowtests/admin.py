"""Flow tests in the admin: a recorded run's "Save as test", the flow page's tests with their
last result and a "Run tests" button, and each test's page (expected values, ignored
fields, relaxed request parts, its last report).

The run page and the flow page belong to lower apps; this app plugs its buttons into them
by extending their admins, as the executions app extends the flows' (see the end)."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.accounts.privileges import Privilege
from apps.core.admin import StrictJSONAdminMixin
from apps.core.exceptions import ApiProblem
from apps.executions.models import Execution, RunRecording
from apps.flows.models import Flow
from apps.flowtests import services
from apps.flowtests.models import FlowTest

RESULT_COLOURS = {"passed": "#2e7d32", "failed": "#c62828"}


def result_badge(result: str) -> str:
    if not result:
        return "not run yet"
    return format_html(
        '<b class="flow-test-{}" style="color:{}">{}</b>',
        result,
        RESULT_COLOURS.get(result, "inherit"),
        FlowTest.Result(result).label,
    )


class SaveAsTestForm(forms.Form):
    name = forms.CharField(
        label="Test name", max_length=200, help_text="Unique among the flow's tests."
    )


@admin.register(FlowTest)
class FlowTestAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    list_display = ("name", "flow", "result", "last_run_at")
    list_filter = ("last_result", "flow")
    list_select_related = ("flow", "flow__application")
    search_fields = ("name", "flow__name")
    readonly_fields = ("flow", "source_process_id", "result", "last_run_at", "last_difference")
    actions = ("run_selected",)
    fieldsets = (
        (None, {"fields": ("name", "flow", "source_process_id")}),
        ("Expected", {"fields": ("expected", "ignored_fields", "relaxed")}),
        ("Last run", {"fields": ("result", "last_run_at", "last_difference")}),
    )
    change_form_template = "admin/flowtests/flowtest/change_form.html"

    def has_add_permission(self, request):
        return False  # a test is saved from a recorded run

    @admin.display(description="last result", ordering="last_result")
    def result(self, obj):
        return result_badge(obj.last_result)

    @admin.display(description="why it failed")
    def last_difference(self, obj):
        report = obj.last_report or {}
        if report.get("result") != "failed":
            return "—"
        lines = format_html_join("", "<li>{}</li>", ((line,) for line in report["summary"]))
        return format_html('<ul class="flow-test-summary">{}</ul>', lines)

    def has_run_tests_permission(self, request) -> bool:
        return self.has_change_permission(request) and may_run_tests(request.user)

    @admin.action(description="Run the selected tests (offline)", permissions=["run_tests"])
    def run_selected(self, request, queryset):
        reports = [services.run_test(test) for test in queryset.select_related("flow")]
        failed = [r["name"] for r in reports if r["result"] != "passed"]
        level = messages.ERROR if failed else messages.SUCCESS
        text = f"{len(reports) - len(failed)} passed, {len(failed)} failed"
        self.message_user(request, text + (f": {', '.join(failed)}." if failed else "."), level)

    def get_urls(self):
        return [
            path(
                "save-from/<uuid:execution_id>/",
                self.admin_site.admin_view(self.save_from_run_view),
                name="flowtests_flowtest_save_from_run",
            ),
            path(
                "run-flow/<int:flow_id>/",
                self.admin_site.admin_view(self.run_flow_view),
                name="flowtests_flowtest_run_flow",
            ),
            *super().get_urls(),
        ]

    def save_from_run_view(self, request, execution_id):
        execution = get_object_or_404(Execution.objects.select_related("flow"), pk=execution_id)
        # A test keeps the run's data: only for who may read the run (an outside probe: a
        # flow-test editor read runs through it that the run page refused them).
        may_read_run = self.admin_site._registry[Execution].has_view_permission(request, execution)
        if not (self.has_change_permission(request) and may_read_run):
            return redirect("admin:index")
        form = SaveAsTestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            name = form.cleaned_data["name"]
            if execution.flow and execution.flow.tests.filter(name=name).exists():
                form.add_error("name", f"The flow has a test named {name!r} already.")
            else:
                try:
                    test = services.save_as_test(execution=execution, name=name, user=request.user)
                except ApiProblem as refused:
                    self.message_user(request, str(refused.detail), messages.ERROR)
                    return redirect("admin:executions_execution_change", execution.pk)
                self.message_user(request, f"Saved the test {test.name!r}.", messages.SUCCESS)
                return redirect("admin:flowtests_flowtest_change", test.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Save as test: {execution}",
            "opts": self.model._meta,
            "execution": execution,
            "form": form,
        }
        return TemplateResponse(request, "admin/flowtests/flowtest/save_from_run.html", context)

    def run_flow_view(self, request, flow_id):
        flow = get_object_or_404(Flow.objects.select_related("application"), pk=flow_id)
        back = redirect("admin:flows_flow_change", flow.pk)
        if request.method != "POST":
            return back
        # A run stores each test's last result, and its report shows the flow's data: as in
        # the API, for who may manage flows or read runs.
        if not (self.has_change_permission(request) and may_run_tests(request.user)):
            return redirect("admin:index")
        reports = services.run_tests(flow=flow)
        failed = [r["name"] for r in reports if r["result"] != "passed"]
        text = f"Flow tests: {len(reports) - len(failed)} passed, {len(failed)} failed"
        if failed:
            self.message_user(request, f"{text}: {', '.join(failed)}.", messages.ERROR)
        else:
            self.message_user(request, f"{text}.", messages.SUCCESS)
        return back


def may_run_tests(user) -> bool:
    return user.has_perm(Privilege.MANAGE_FLOWS.perm) or user.has_perm(
        Privilege.VIEW_EXECUTIONS.perm
    )


# --- The flow page and the run page -------------------------------------------------------

_FlowAdmin = type(admin.site._registry[Flow])
_ExecutionAdmin = type(admin.site._registry[Execution])


class TestedFlowAdmin(_FlowAdmin):
    """The flow page, with its tests (last result) and a Run tests button."""

    change_form_template = "admin/flowtests/flow_change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tests = []
        if object_id and str(object_id).isdigit():
            tests = [
                {
                    "test": test,
                    "url": reverse("admin:flowtests_flowtest_change", args=[test.pk]),
                    "badge": result_badge(test.last_result),
                    "summary": (test.last_report or {}).get("summary", [])[:3],
                }
                for test in FlowTest.objects.filter(flow_id=object_id).order_by("name")
            ]
        extra = {**(extra_context or {}), "flow_tests": tests}
        return super().change_view(request, object_id, form_url, extra)

    def test_run_view(self, request, flow_id: int):
        """The Test run page, whose run (always recorded) can be saved as a test at once."""
        response = super().test_run_view(request, flow_id)
        if isinstance(response, TemplateResponse):
            response.template_name = "admin/flowtests/test_run.html"
        return response


class TestableExecutionAdmin(_ExecutionAdmin):
    """The run page, with "Save as test" on a recorded run."""

    change_form_template = "admin/flowtests/execution_change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        try:
            uuid.UUID(str(object_id))
        except ValueError:  # the admin answers "does not exist" for it (it was a 500 here)
            return super().change_view(request, object_id, form_url, extra_context)
        recorded = RunRecording.objects.filter(execution_id=object_id, complete=True).exists()
        extra = {**(extra_context or {}), "recorded": recorded}
        return super().change_view(request, object_id, form_url, extra)


admin.site.unregister(Flow)
admin.site.register(Flow, TestedFlowAdmin)
admin.site.unregister(Execution)
admin.site.register(Execution, TestableExecutionAdmin)
