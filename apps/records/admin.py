from urllib.parse import parse_qs

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Cast, Coalesce
from django.forms.models import BaseInlineFormSet
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from apps.core.admin import StrictJSONAdminMixin
from apps.flows.pipeline import as_id
from apps.records import selectors, services
from apps.records.forms import RecordFieldForm, form_name, record_form_class
from apps.records.models import Record, RecordField, RecordType

SUMMARY_FIELDS = 3
# The field types whose values are text a search may look into one by one.
SEARCHED_TYPES = (
    RecordField.Type.TEXT,
    RecordField.Type.LONG_TEXT,
    RecordField.Type.CHOICE,
    RecordField.Type.EMAIL,
    RecordField.Type.URL,
)


class RecordFieldFormSet(BaseInlineFormSet):
    """The fields as one change: refused when it would break what uses them (a view
    filtering on a field removed or renamed), saying what and where."""

    def clean(self):
        super().clean()
        if any(self.errors) or self.instance.pk is None:
            return
        fields = [
            form.instance
            for form in self.forms
            if (form.instance.pk is not None or form.has_changed()) and not self._deleting(form)
        ]
        if problems := services.fields_change_problems(record_type=self.instance, fields=fields):
            raise ValidationError(problems)

    def deleted(self) -> list[str]:
        """The names of the saved fields this change deletes."""
        return [form.initial["name"] for form in self.initial_forms if self._deleting(form)]

    def added(self) -> list[str]:
        """The names of the fields this change adds."""
        return [
            form.cleaned_data["name"]
            for form in self.extra_forms
            if form.has_changed() and not self._deleting(form)
        ]

    def renamed(self) -> dict[str, str]:
        """{old name: new name} of the saved fields this change renames."""
        return {
            form.initial["name"]: form.cleaned_data["name"]
            for form in self.initial_forms
            if "name" in form.changed_data and not self._deleting(form)
        }

    def freed_names(self) -> list[int]:
        """The saved fields whose names this change frees (renamed or deleted), which another
        field may take in the same change."""
        return [
            form.instance.pk
            for form in self.initial_forms
            if "name" in form.changed_data or self._deleting(form)
        ]

    def _deleting(self, form) -> bool:
        return self.can_delete and self._should_delete_form(form)


class RecordFieldInline(StrictJSONAdminMixin, admin.TabularInline):
    model = RecordField
    form = RecordFieldForm
    formset = RecordFieldFormSet
    fields = ("position", "name", "type", "required", "choices", "default")
    ordering = ("position", "pk")
    extra = 1


def _count(model, **filters):
    """The number of related rows as a subquery: two Count() joins would multiply."""
    rows = (
        model.objects.filter(record_type=OuterRef("pk"), **filters)
        .order_by()
        .values("record_type")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


@admin.register(RecordType)
class RecordTypeAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    list_display = ("name", "application", "field_count", "record_count", "modified_at")
    list_filter = ("application",)
    list_select_related = ("application",)
    search_fields = ("name", "description")
    fields = ("application", "name", "description")
    inlines = (RecordFieldInline,)
    actions = ("empty",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(field_total=_count(RecordField), record_total=_count(Record))
        )

    def get_deleted_objects(self, objs, request):
        """Exports and imports name a record type inside their JSON, which Django's
        collector cannot see: deleting one they use is refused too, naming them (an outside
        probe deleted one a flow used, whose runs then failed)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected)
        for record_type in objs:
            protected += [
                format_html(
                    '{} <a href="{}">{}</a> reads or writes {}',
                    type(step)._meta.verbose_name.capitalize(),
                    reverse(f"admin:flows_{type(step)._meta.model_name}_change", args=[step.pk]),
                    step,
                    record_type,
                )
                for step in selectors.steps_using(record_type)
            ]
        return deleted, counts, perms_needed, protected

    def save_formset(self, request, form, formset, change):
        if formset.model is not RecordField:
            return super().save_formset(request, form, formset, change)
        retyped = any(
            field_form.instance.pk is not None and "type" in field_form.changed_data
            for field_form in formset.initial_forms
        )
        changes = {
            "deleted": formset.deleted(),
            "renamed": formset.renamed(),
            "added": formset.added(),
        }
        # Saved one by one, two fields swapping names (or one taking a deleted one's) would
        # meet the unique name on the way: the names they free are parked first.
        services.park_field_names(field_ids=formset.freed_names())
        super().save_formset(request, form, formset, change)
        if change:  # a new table has no values to follow its fields
            services.field_names_changed(record_type=form.instance, **changes)
        if retyped:
            services.fields_retyped(record_type=form.instance)
        return None

    @admin.display(description="fields", ordering="field_total")
    def field_count(self, obj):
        return obj.field_total

    @admin.display(description="records", ordering="record_total")
    def record_count(self, obj):
        records = reverse("admin:records_record_changelist")
        add = reverse("admin:records_record_add")
        return format_html(
            '<a href="{}?record_type__id__exact={}">{}</a> · <a href="{}?record_type={}">add</a>',
            records,
            obj.pk,
            obj.record_total,
            add,
            obj.pk,
        )

    @admin.action(description="Empty: delete all their records", permissions=("delete",))
    def empty(self, request, queryset):
        """Asks first, as Django's delete does (an outside probe lost a table to one
        click)."""
        if request.POST.get("post") != "yes":
            record_types = list(queryset)
            context = {
                **self.admin_site.each_context(request),
                "title": "Empty these tables?",
                "opts": self.model._meta,
                "record_types": record_types,
                "total": sum(record_type.record_total for record_type in record_types),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/records/recordtype/empty_confirmation.html", context
            )
        total = sum(services.empty_record_type(record_type=rt) for rt in queryset)
        self.message_user(
            request, f"Deleted {total} record(s) of {queryset.count()} table(s).", messages.SUCCESS
        )
        return None


@admin.register(Record)
class RecordAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    """The change form is built from the record's type: one form field per record field."""

    list_display = ("record_id", "record_type", "summary", "submission_id", "modified_at")
    list_display_links = ("record_id",)
    ordering = ("-pk",)
    list_filter = ("record_type",)
    list_select_related = ("record_type",)
    search_fields = ("data",)  # see get_search_results
    search_help_text = "Searches the values of every field, and the record id."
    readonly_fields = (
        "table",
        "submission_id",
        "created_by",
        "created_at",
        "modified_by",
        "modified_at",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("record_type", "created_by", "modified_by")
            .prefetch_related("record_type__fields")
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # The JSON as text: crude, but finds a value in any field on every database; and
        # each field's value, which SQLite's JSON text holds as \u escapes when it is not
        # ASCII (an outside probe: "Müller" found nothing there).
        condition = Q(_data_text__icontains=term)
        for name in self._searched_fields(request):
            condition |= Q(**{f"data__{name}__icontains": term})
        if (record_id := as_id(term)) is not None:
            condition |= Q(pk=record_id)
        return queryset.alias(_data_text=Cast("data", TextField())).filter(condition), False

    def _searched_fields(self, request) -> list[str]:
        """The text fields of the record type filtered on, or of every record type."""
        fields = RecordField.objects.filter(type__in=SEARCHED_TYPES)
        if (record_type := as_id(request.GET.get("record_type__id__exact"))) is not None:
            fields = fields.filter(record_type_id=record_type)
        return sorted(set(fields.values_list("name", flat=True)))

    # --- The record type of the form --------------------------------------------------

    def _record_type(self, request, obj=None) -> RecordType | None:
        """The record's type, or on the add page the one chosen: ?record_type=<id>, or
        the changelist's filter the "Add" button came from. Memoised on the request."""
        if obj is not None and obj.record_type_id:
            return obj.record_type
        params = request.GET
        chosen = params.get("record_type")
        if chosen is None and "_changelist_filters" in params:
            filters = parse_qs(params["_changelist_filters"])
            chosen = (filters.get("record_type__id__exact") or [None])[0]
        pk = as_id(chosen)
        if pk is None:
            return None
        memo = request.__dict__.setdefault("_flowsite_record_types", {})
        if pk not in memo:
            memo[pk] = RecordType.objects.filter(pk=pk).select_related("application").first()
        return memo[pk]

    def _fields(self, request, record_type: RecordType | None) -> list[RecordField]:
        if record_type is None:
            return []
        memo = request.__dict__.setdefault("_flowsite_record_fields", {})
        if record_type.pk not in memo:
            memo[record_type.pk] = list(record_type.fields.all())
        return memo[record_type.pk]

    def get_form(self, request, obj=None, change=False, **kwargs):
        record_type = self._record_type(request, obj)
        fields = self._fields(request, record_type)
        kwargs["form"] = record_form_class(record_type, fields)
        kwargs["fields"] = [form_name(field) for field in fields]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fields = self._fields(request, self._record_type(request, obj))
        system = ("submission_id", ("created_by", "created_at"), ("modified_by", "modified_at"))
        return (
            (None, {"fields": ("table", *(form_name(field) for field in fields))}),
            ("System fields", {"classes": ("collapse",), "fields": system}),
        )

    def add_view(self, request, form_url="", extra_context=None):
        if self._record_type(request) is None:
            return self.choose_record_type_view(request)
        return super().add_view(request, form_url, extra_context)

    def choose_record_type_view(self, request):
        record_types = list(RecordType.objects.select_related("application"))
        if len(record_types) == 1:
            return redirect(f"{request.path}?record_type={record_types[0].pk}")
        context = {
            **self.admin_site.each_context(request),
            "title": "Add record",
            "opts": self.model._meta,
            "record_types": record_types,
        }
        return TemplateResponse(request, "admin/records/record/choose_record_type.html", context)

    def save_model(self, request, obj, form, change):
        if change:
            services.update_record(record=obj, data=form.record_values, user=request.user)
            return
        record = services.create_record(
            record_type=obj.record_type, data=form.record_values, user=request.user
        )
        # The admin logs and redirects with the object it passed in.
        for field in Record._meta.concrete_fields:
            setattr(obj, field.attname, getattr(record, field.attname))
        obj._state.adding = False
        obj._state.db = record._state.db

    def delete_model(self, request, obj):
        services.delete_record(record=obj)

    # --- Columns and read-only fields -------------------------------------------------

    @admin.display(description="record", ordering="pk")
    def record_id(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="record type")
    def table(self, obj):
        record_type = obj.record_type if obj.record_type_id else None
        if record_type is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:records_recordtype_change", args=[record_type.pk]),
            record_type.name,
            record_type.application,
        )

    @admin.display(description="values")
    def summary(self, obj):
        parts = []
        for field in list(obj.record_type.fields.all())[:SUMMARY_FIELDS]:
            value = obj.data.get(field.name)
            if isinstance(value, list):
                value = ", ".join(map(str, value))
            parts.append(f"{field.name}: {'—' if value is None else value}")
        return " · ".join(parts)
