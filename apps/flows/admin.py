import re
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from apps.core.admin import StrictJSONAdminMixin
from apps.flows import selectors, services, step_samples
from apps.flows.api_settings import INSTANCE_HEADER
from apps.flows.documents import DocumentError
from apps.flows.forms import (
    AdminFlowForm,
    ConnectionAdminForm,
    ConnectionTestForm,
    ExportForm,
    ExportPreviewForm,
    ImportDryRunForm,
    ImportForm,
    InstanceForm,
    ScriptForm,
    ScriptTestForm,
)
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from apps.flows.sandbox import check_syntax
from apps.flows.schedules import PERIODIC_TASK_PREFIX, describe_schedule, next_runs


class InUseProtectedAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    """Django's delete page refuses what flows still use: flows reference resources inside
    their JSON pipelines, which Django's collector cannot see. JSON is read as the API reads
    it (StrictJSONAdminMixin)."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected)
        for obj in objs:
            if usage := selectors.usage_of(obj):
                protected.extend(
                    format_html(
                        'Flow <a href="{}">{}</a> uses {}',
                        reverse("admin:flows_flow_change", args=[flow.pk]),
                        flow,
                        obj,
                    )
                    for flow in usage.flows
                )
                if not usage.flows:
                    protected.append(usage.message)
        return deleted, counts, perms_needed, protected


@dataclass(frozen=True)
class TryIt:
    """A page that tries a saved object where it is built (nothing is stored): its URL
    segment, the action's name, its form and template. One that sends the connection's
    credentials is for those who may change the object, not only look at it."""

    segment: str
    action: str
    form: type[forms.Form]
    template: str
    submit: str
    sends_credentials: bool = False


class TryItAdmin(InUseProtectedAdmin):
    """An admin whose saved objects can be tried from their own page: a form, then what
    `run_try_it(obj, cleaned_data)` returns, shown by `try_it.template` as `result`."""

    try_it: TryIt

    def run_try_it(self, obj, data: dict):
        raise NotImplementedError

    def try_it_context(self, request, obj) -> dict:
        """More for the template; an "initial" entry fills the form when it is first shown."""
        return {}

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_{self.try_it.segment.replace('-', '_')}"
        view = self.admin_site.admin_view(self.try_it_view)
        return [
            path(f"<int:object_id>/{self.try_it.segment}/", view, name=name),
            *super().get_urls(),
        ]

    def may_try(self, request, obj) -> bool:
        allowed = (
            self.has_change_permission
            if self.try_it.sends_credentials
            else self.has_view_permission
        )
        return allowed(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The same form on the object's own page (admin/flows/try_panel.html), once saved,
        # for those who may use it.
        context["may_try"] = obj is not None and bool(obj.pk) and self.may_try(request, obj)
        if context["may_try"]:
            extra = self.try_it_context(request, obj)
            opts = self.model._meta
            segment = self.try_it.segment.replace("-", "_")
            context["try_panel"] = {
                "title": f"{self.try_it.action} it here",
                "url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_{segment}", args=[obj.pk]
                ),
                "form": self.try_it.form(initial=extra.get("initial"), auto_id="try_%s"),
                "submit": self.try_it.submit,
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def try_it_view(self, request, object_id: int):
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.may_try(request, obj):
            return redirect("admin:index")
        extra = self.try_it_context(request, obj)
        form = self.try_it.form(request.POST or None, initial=extra.get("initial"))
        result = None
        if request.method == "POST" and form.is_valid():
            result = self.run_try_it(obj, form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{self.try_it.action}: {obj}",
            "action": self.try_it.action,
            "submit": self.try_it.submit,
            "opts": self.model._meta,
            "original": obj,
            "form": form,
            "result": result,
            **extra,
        }
        return TemplateResponse(request, self.try_it.template, context)


@admin.register(Application)
class ApplicationAdmin(InUseProtectedAdmin):
    list_display = ("name", "description", "modified_at")
    search_fields = ("name", "description")
    fields = ("name", "description", "error_flow")
    autocomplete_fields = ("error_flow",)


@admin.register(Connection)
class ConnectionAdmin(TryItAdmin):
    form = ConnectionAdminForm
    change_form_template = "admin/flows/connection/change_form.html"
    try_it = TryIt(
        "test",
        "Test",
        ConnectionTestForm,
        "admin/flows/connection/test.html",
        "Send the GET",
        sends_credentials=True,
    )

    def run_try_it(self, connection, data):
        """One GET through the saved connection: reachable, authenticated, allowed?"""
        return services.try_connection(connection=connection, path=data["path"])

    def get_fieldsets(self, request, obj=None):
        """Those who may only look see which secrets are stored, not empty inputs that read
        as "None" whatever is stored."""
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        hidden = {*Connection.SECRET_FIELDS, "clear_secrets"}
        return [
            (
                title,
                {
                    **options,
                    "fields": [f for f in options["fields"] if f not in hidden]
                    + (["stored_secrets"] if title == "Authentication" else []),
                },
            )
            for title, options in fieldsets
        ]

    @admin.display(description="stored secrets")
    def stored_secrets(self, connection) -> str:
        try:
            names = [name for name, value in connection.secrets().items() if value]
            names += [f"header {name}" for name in connection.secret_headers()]
        except ValueError:
            return "Stored, but they cannot be decrypted (FLOWSITE_ENCRYPTION_KEY changed)."
        return ", ".join(f"{name} (hidden)" for name in names) if names else "None stored."

    list_display = ("name", "type", "base_uri", "auth_type", "modified_at")
    list_filter = ("type", "auth_type")
    search_fields = ("name", "base_uri")
    fieldsets = (
        (None, {"fields": ("name", "type", "base_uri", "headers")}),
        (
            "Authentication",
            {
                "fields": (
                    "auth_type",
                    "username",
                    "password",
                    "token",
                    "header_name",
                    "api_key",
                    "token_url",
                    "client_id",
                    "client_secret",
                    "scope",
                    "clear_secrets",
                )
            },
        ),
        (
            "Advanced",
            {
                "classes": ("collapse",),
                "fields": ("allowed_private_hosts", "timeout_ms", "concurrency"),
            },
        ),
    )


@admin.register(Export)
class ExportAdmin(TryItAdmin):
    form = ExportForm
    change_form_template = "admin/flows/export/change_form.html"
    try_it = TryIt(
        "preview",
        "Preview",
        ExportPreviewForm,
        "admin/flows/export/preview.html",
        "Read the first page",
        sends_credentials=True,
    )

    def run_try_it(self, export, data):
        """The export's first page of records, as a flow would read it."""
        return services.preview_export(export=export, variables=data.get("variables"))

    list_display = ("name", "connection", "method", "relative_uri", "paging")
    list_filter = ("connection", "paging")
    list_select_related = ("connection",)
    search_fields = ("name", "relative_uri")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "application",
                    "connection",
                    "method",
                    "relative_uri",
                    "resource_path",
                )
            },
        ),
        ("Request", {"classes": ("collapse",), "fields": ("query", "headers", "body")}),
        (
            "Paging",
            {
                "fields": (
                    "paging",
                    "page_size",
                    "page_size_param",
                    "page_param",
                    "next_path",
                    "cursor_param",
                    "max_pages",
                )
            },
        ),
        ("Data tables connection", {"classes": ("collapse",), "fields": ("records",)}),
    )


@admin.register(Import)
class ImportAdmin(TryItAdmin):
    form = ImportForm
    change_form_template = "admin/flows/import/change_form.html"
    try_it = TryIt(
        "dry-run",
        "Dry run",
        ImportDryRunForm,
        "admin/flows/import/dry_run.html",
        "Show the request",
    )

    def run_try_it(self, record_import, data):
        """The request the import would send for sample records, not sent."""
        return services.dry_run_import(
            record_import=record_import,
            records=data["records"],
            variables=data.get("variables"),
        )

    list_display = ("name", "connection", "method", "relative_uri", "batch_size")
    list_filter = ("connection",)
    list_select_related = ("connection",)
    search_fields = ("name", "relative_uri")


# check_syntax's message ends with the line when it is known: "… (line 3)".
SYNTAX_ERROR_LINE = re.compile(r"\(line (\d+)\)$")


@admin.register(Script)
class ScriptAdmin(TryItAdmin):
    form = ScriptForm
    list_display = ("name", "language", "modified_at")
    search_fields = ("name", "content")
    change_form_template = "admin/flows/script/change_form.html"
    try_it = TryIt("test", "Test", ScriptTestForm, "admin/flows/script/test.html", "Run the script")

    def run_try_it(self, script, data):
        """The saved script on sample records: its output, debug() lines and errors."""
        return services.try_script(
            script=script,
            records=data["records"],
            function=data["function"],
            variables=data.get("variables"),
        )

    def try_it_context(self, request, script) -> dict:
        """The records this script's step received in the last run that reached it (when
        the app recording runs says so and the user may read runs), else the typed default."""
        sample = step_samples.last_input(selectors.script_steps(script), user=request.user)
        return {
            "lines": enumerate(script.content.splitlines(), start=1),
            "sample": sample,
            "initial": {"records": sample.records} if sample else None,
        }

    def get_urls(self):
        view = self.admin_site.admin_view(self.check_syntax_view)
        return [
            path("check-syntax/", view, name="flows_script_check_syntax"),
            *super().get_urls(),
        ]

    def check_syntax_view(self, request):
        """The code editor's syntax check before save (the form's own check, as JSON):
        {"ok": true} or {"ok": false, "error": "SyntaxError: … (line 3)", "line": 3}."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            return JsonResponse({"error": "You may not edit scripts."}, status=403)
        problem = check_syntax(request.POST.get("source", ""))
        if problem is None:
            return JsonResponse({"ok": True})
        line = SYNTAX_ERROR_LINE.search(problem)
        return JsonResponse({"ok": False, "error": problem, "line": int(line[1]) if line else None})


@admin.register(Flow)
class FlowAdmin(InUseProtectedAdmin):
    """How flows are edited. Running them (Run now, Test run, the last run's status) is
    added by the executions app, which runs flows (apps/executions/admin.py)."""

    form = AdminFlowForm
    list_display = ("name", "application", "enabled", "step_count")
    list_filter = ("application", "disabled")
    list_select_related = ("application",)
    search_fields = ("name", "description")
    readonly_fields = ("pipeline", "next_run", "template_link", "instances_panel")
    autocomplete_fields = ("error_flow",)
    actions = ("clone", "enable", "disable", "create_instance", "update_from_template")
    fieldsets = (
        (None, {"fields": ("application", "name", "description", "disabled", "is_template")}),
        (
            "Pipeline",
            {
                "fields": (
                    "pipeline",
                    "generator_rows",
                    "processor_rows",
                    "variable_rows",
                    "secret_variable_rows",
                )
            },
        ),
        ("Schedule", {"fields": ("schedule", "timezone", "next_run")}),
        (
            "API",
            {
                "fields": (
                    "endpoint_enabled",
                    ("endpoint_method", "endpoint_path"),
                    "endpoint_mode",
                    "endpoint_timeout",
                    "endpoint_anonymous",
                    "endpoint_roles",
                    "endpoint_output_name",
                    "endpoint_error_status",
                    "endpoint_content_type",
                )
            },
        ),
        (
            "Advanced",
            {
                "classes": ("collapse",),
                "fields": (
                    "error_flow",
                    "skip_retries",
                    "capture_for_tests",
                    "run_tests_on_save",
                    "save_despite_failing_tests",
                    "timeout_ms",
                    "max_concurrency",
                    "concurrency_policy",
                ),
            },
        ),
        (
            "Advanced: as JSON",
            {
                "classes": ("collapse",),
                "description": "The documents the rows and fields above stand for, as the "
                "management API reads and writes them. Edit a document here or its fields "
                "above, not both in one save; both are checked the same way.",
                "fields": (
                    "page_generators",
                    "page_processors",
                    "variables",
                    "secret_variables",
                    "api",
                ),
            },
        ),
    )

    @admin.display(description="enabled", boolean=True, ordering="disabled")
    def enabled(self, obj):
        return not obj.disabled

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.page_generators) + len(obj.page_processors)

    @admin.display(description="when it runs")
    def next_run(self, obj):
        if not obj.pk or not (obj.schedule or "").strip():
            return "—"
        try:
            words = f"{describe_schedule(obj.schedule)} ({obj.timezone or 'UTC'})"
            runs = next_runs(obj, count=3)
        except ValueError as exc:
            return str(exc)
        if obj.disabled:
            return f"{words}; the flow is disabled, so it does not run."
        return f"{words}. Next: " + ", ".join(run.strftime("%Y-%m-%d %H:%M %Z") for run in runs)

    def save_model(self, request, obj, form, change):
        services.save_flow(flow=obj, user=request.user)

    @admin.display(description="pipeline")
    def pipeline(self, obj):
        # The executions app draws a saved flow with its last run (RunnableFlowAdmin).
        return "Save the flow to see its pipeline."

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The "Endpoint" panel needs this request for absolute URLs: passed in the context,
        # never kept on the (shared) ModelAdmin.
        from apps.flows.openapi import endpoint_panel

        context["endpoint"] = endpoint_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Templates and instances (Axway's formulas and formula instances) ----------------

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not (obj.is_template or obj.template_flow_id):
            return fieldsets
        shown = ("template_link",) if obj.template_flow_id else ("instances_panel",)
        title = "Template" if obj.template_flow_id else "Instances"
        return (fieldsets[0], (title, {"fields": shown}), *fieldsets[1:])

    @admin.display(description="instance of")
    def template_link(self, obj):
        template = obj.template_flow
        if template is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> (_id {}). Its steps, API and settings were copied from the '
            "template; this instance keeps its own name, variables and connections. "
            '<button type="submit" class="button" formaction="{}" formnovalidate '
            'id="update-from-template">Update from template</button>',
            reverse("admin:flows_flow_change", args=[template.pk]),
            template,
            template.pk,
            reverse("admin:flows_flow_update_from_template", args=[obj.pk]),
        )

    @admin.display(description="instances")
    def instances_panel(self, obj):
        """The template's instances with their ids, as Axway's Flow API Docs show them."""
        if obj.pk is None:
            return "—"
        rows = format_html_join(
            "",
            '<tr><td><code class="instance-id">{}</code></td><td><a href="{}">{}</a></td>'
            "<td>{}</td><td><code>{}: {}</code></td></tr>",
            (
                (
                    flow.pk,
                    reverse("admin:flows_flow_change", args=[flow.pk]),
                    flow.name,
                    "disabled" if flow.disabled else "enabled",
                    INSTANCE_HEADER,
                    flow.pk,
                )
                for flow in selectors.instances_of(obj)
            ),
        )
        create = format_html(
            '<a class="button" href="{}" id="create-instance">Create an instance</a>',
            reverse("admin:flows_flow_create_instance", args=[obj.pk]),
        )
        if not rows:
            return format_html("No instance yet: a template never answers calls itself. {}", create)
        return format_html(
            '<table class="template-instances"><thead><tr><th>_id</th><th>name</th>'
            "<th>state</th><th>header to call it</th></tr></thead><tbody>{}</tbody></table>"
            "<p>They share this template's API path: a call names one with the header "
            "{}.</p>{}",
            rows,
            INSTANCE_HEADER,
            create,
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:flow_id>/create-instance/",
                view(self.create_instance_view),
                name="flows_flow_create_instance",
            ),
            path(
                "<int:flow_id>/update-from-template/",
                view(self.update_from_template_view),
                name="flows_flow_update_from_template",
            ),
            *super().get_urls(),
        ]

    def create_instance_view(self, request, flow_id: int):
        template = get_object_or_404(Flow.objects.select_related("application"), pk=flow_id)
        if not (self.has_add_permission(request) and self.has_view_permission(request, template)):
            return redirect("admin:index")
        change_url = reverse("admin:flows_flow_change", args=[template.pk])
        if not template.is_template:
            self.message_user(
                request,
                f"{template} is not a template: tick “template” on its page first.",
                messages.ERROR,
            )
            return redirect(change_url)
        connections = selectors.dependencies(template).connections
        form = InstanceForm(request.POST or None, template=template, connections=connections)
        if request.method == "POST" and form.is_valid():
            try:
                instance = services.create_instance(
                    template=template,
                    name=form.cleaned_data["name"],
                    variables=form.cleaned_data["variable_rows"],
                    connection_map=form.connection_map(),
                    user=request.user,
                )
            except DocumentError as exc:
                for where, problems in exc.errors.items():
                    pk = where.removeprefix("connectionMap.")
                    field = form.connection_field(pk) if where != pk else where
                    form.add_error(field if field in form.fields else None, problems)
            else:
                self.message_user(
                    request,
                    format_html(
                        "Created instance {} (_id {}): call it with the header {}: {}.",
                        instance.name,
                        instance.pk,
                        INSTANCE_HEADER,
                        instance.pk,
                    ),
                    messages.SUCCESS,
                )
                return redirect("admin:flows_flow_change", instance.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Create an instance of {template}",
            "action": "Create an instance",
            "opts": self.model._meta,
            "original": template,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/flows/flow/create_instance.html", context)

    def update_from_template_view(self, request, flow_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        flow = get_object_or_404(Flow, pk=flow_id)
        if not self.has_change_permission(request, flow):
            return redirect("admin:index")
        self._update_from_template(request, [flow])
        return redirect("admin:flows_flow_change", flow.pk)

    def _update_from_template(self, request, flows) -> None:
        updated, refused = [], []
        for flow in flows:
            try:
                updated.append(services.update_from_template(instance=flow, user=request.user))
            except (services.NotTemplated, DocumentError) as exc:
                detail = exc.errors if isinstance(exc, DocumentError) else str(exc)
                refused.append(f"{flow}: {detail}")
            except services.FlowTestsFailed as exc:
                names = ", ".join(test["name"] for test in exc.failing)
                refused.append(
                    f"{flow}: not updated, its tests fail as updated ({names}) and its guard "
                    "(Run tests on save) is on. Fix the template or the tests, or untick the "
                    "guard and update again."
                )
        if updated:
            self.message_user(
                request,
                f"Updated {len(updated)} instance(s) from their template; their names, "
                "variables and connections were kept.",
                messages.SUCCESS,
            )
        for message in refused:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Create an instance of the template", permissions=["add"])
    def create_instance(self, request, queryset):
        templates = list(queryset[:2])
        if len(templates) != 1 or not templates[0].is_template:
            self.message_user(
                request, "Select one template to create an instance of.", messages.ERROR
            )
            return None
        return redirect("admin:flows_flow_create_instance", templates[0].pk)

    @admin.action(description="Update from template", permissions=["change"])
    def update_from_template(self, request, queryset):
        self._update_from_template(request, list(queryset.select_related("template_flow")))

    @admin.action(description="Clone", permissions=["add"])
    def clone(self, request, queryset):
        clones = [services.clone_flow(flow=flow, user=request.user) for flow in queryset]
        self.message_user(
            request,
            f"Cloned {len(clones)} flow(s), disabled until you enable them.",
            messages.SUCCESS,
        )

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request, queryset):
        count = services.set_flows_disabled(queryset=queryset, disabled=False, user=request.user)
        self.message_user(request, f"Enabled {count} flow(s).", messages.SUCCESS)

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request, queryset):
        count = services.set_flows_disabled(queryset=queryset, disabled=True, user=request.user)
        self.message_user(request, f"Disabled {count} flow(s).", messages.SUCCESS)


# --- Periodic tasks: the ones Flowsite manages are read-only -----------------------------


class ManagedPeriodicTaskAdmin(PeriodicTaskAdmin):
    """django-celery-beat's periodic tasks, except that the beat's own housekeeping
    (settings.CELERY_BEAT_SCHEDULE) and the flows' schedules (edited on the flow's page,
    kept in step by apps.flows.schedules) cannot be changed or deleted here: a change would
    be overwritten, or would leave a flow running on a schedule its page does not show."""

    def managed_by(self, task: PeriodicTask | None) -> str | None:
        if task is None:
            return None
        if task.name.startswith(PERIODIC_TASK_PREFIX):
            return "the flow's page (Schedule)"
        if task.name in settings.CELERY_BEAT_SCHEDULE or task.name.startswith("celery."):
            return "Flowsite itself (its settings)"
        return None

    def managed(self) -> Q:
        return (
            Q(name__startswith=PERIODIC_TASK_PREFIX)
            | Q(name__in=list(settings.CELERY_BEAT_SCHEDULE))
            | Q(name__startswith="celery.")
        )

    def get_actions(self, request):
        """The list's bulk actions (enable, disable, toggle, run, delete) on the selected
        tasks that are not managed: they worked on the managed ones too. Enable, disable,
        toggle and run change tasks: only for who may change them (django-celery-beat's
        actions declare no permission, and a view-only user could run them)."""
        may_change = super().has_change_permission(request)
        return {
            name: (self._unmanaged_only(function), name, description)
            for name, (function, name, description) in super().get_actions(request).items()
            if may_change or name == "delete_selected"
        }

    def _unmanaged_only(self, function):
        def action(modeladmin, request, queryset):
            left = sorted(queryset.filter(self.managed()).values_list("name", flat=True))
            if left:
                self.message_user(
                    request,
                    f"Left alone: {', '.join(left)}. Flowsite manages them: a flow's schedule "
                    "is changed on the flow's page, the beat's own tasks in its settings.",
                    messages.WARNING,
                )
            rest = queryset.exclude(self.managed())
            return function(modeladmin, request, rest) if rest.exists() else None

        return action

    def has_change_permission(self, request, obj=None):
        return self.managed_by(obj) is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.managed_by(obj) is None and super().has_delete_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        task = self.get_object(request, object_id)
        if where := self.managed_by(task):
            self.message_user(
                request, f"This task is managed by {where}: it is shown read-only.", messages.INFO
            )
        return super().change_view(request, object_id, form_url, extra_context)


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, ManagedPeriodicTaskAdmin)
