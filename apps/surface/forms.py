"""Admin forms of the surface: integration accounts only; the JSON of views checked; a
view's filters edited as rows (field, operator, value or URL parameter)."""

import json
from collections.abc import Mapping
from typing import Any

from django import forms

from apps.accounts.models import User
from apps.core.forms import StrictJSONField
from apps.flows.step_forms import DamagedRows, whole
from apps.records.definitions import FILTER_KEYS
from apps.records.models import SYSTEM_FIELDS
from apps.records.selectors import OPS
from apps.surface.models import Operation, SurfaceConfiguration, View
from apps.surface.services import not_integration_accounts


class SurfaceConfigurationForm(forms.ModelForm):
    class Meta:
        model = SurfaceConfiguration
        fields = ("execute", "query", "integration_accounts")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "integration_accounts" not in self.fields:  # the admin's read-only view
            return
        accounts = self.fields["integration_accounts"]
        accounts.queryset = User.objects.filter(account_type=User.AccountType.INTEGRATION).order_by(
            "username"
        )

    def clean_integration_accounts(self):
        accounts = self.cleaned_data["integration_accounts"]
        # The queryset offers integration accounts only; an account switched to regular
        # meanwhile would be refused here, with its name.
        if regular := not_integration_accounts(accounts):
            raise forms.ValidationError(
                "Only integration accounts can call the surface; these are not: %(names)s.",
                params={"names": ", ".join(regular)},
            )
        return accounts


JSON_WIDGET = forms.Textarea(attrs={"rows": 4, "cols": 80, "style": "font-family: monospace"})


class OperationForm(forms.ModelForm):
    class Meta:
        model = Operation
        fields = (
            "application",
            "name",
            "description",
            "record_type",
            "action",
            "flow",
            "rest_execute",
            "roles",
        )


OPERATORS = {
    "eq": "equals",
    "ne": "differs from",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is greater than",
    "gte": "is at least",
    "contains": "contains",
    "in": "is one of (a,b,c)",
    "isnull": "is empty (true/false)",
}
SOURCES = {"value": "the value", "parameter": "the URL parameter"}
ROW_PARTS = ("field", "op", "source", "value")


def filter_row(item: Any) -> dict[str, str] | None:
    """A filter as a row of text (field, op, source, value), or None when a row cannot say
    it (unknown keys, a value that is an object or null, a list item with a comma)."""
    if not isinstance(item, Mapping) or set(item) - FILTER_KEYS:
        return None
    field, op = item.get("field"), item.get("op", "eq")
    if not isinstance(field, str) or op not in OPS or ("value" in item) == ("parameter" in item):
        return None
    if "parameter" in item:
        if not isinstance(item["parameter"], str):
            return None
        return {"field": field, "op": op, "source": "parameter", "value": item["parameter"]}
    value = item["value"]
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    elif isinstance(value, list) and all(isinstance(v, str) and "," not in v for v in value):
        text = ",".join(value)  # as Query() reads an `in` parameter
    else:
        return None
    return {"field": field, "op": op, "source": "value", "value": text}


def row_filter(row: Mapping[str, str]) -> dict[str, str]:
    item = {"field": row["field"], "op": row["op"] or "eq"}
    item["parameter" if row["source"] == "parameter" else "value"] = row["value"]
    return item


class FilterRows(forms.Widget):
    """Filters as rows of inputs sharing four names (`<name>-field`, `-op`, `-source`,
    `-value`), rows added and removed by a small script (without it: two empty rows to
    fill), and the JSON itself under "Advanced" (`<name>`), used when its box is ticked or
    when a post has no rows at all (a script posting JSON)."""

    template_name = "surface/widgets/filter_rows.html"
    EMPTY_ROWS = 2

    class Media:
        css = {"all": ("surface/filter_rows.css",)}
        js = ("surface/filter_rows.js",)

    def __init__(self, attrs=None, *, field_names: tuple[str, ...] = ()):
        super().__init__(attrs)
        self.field_names = field_names

    def format_value(self, value):
        return value  # a list of filters, or what value_from_datadict read

    def value_from_datadict(self, data, files, name):
        if f"{name}-field" not in data:
            return {"rows": [], "use_json": True, "json": data.get(name)}
        parts = [data.getlist(f"{name}-{part}") for part in ROW_PARTS]
        if len({len(column) for column in parts}) != 1:  # a column cut short: refused
            return {"rows": DamagedRows(), "use_json": False, "json": data.get(name, "")}
        rows = [
            {part: (text or "").strip() for part, text in zip(ROW_PARTS, values, strict=False)}
            for values in zip(*parts, strict=False)
        ]
        return {
            "rows": [row for row in rows if row["field"] or row["value"]],
            "use_json": bool(data.get(f"{name}-use_json")),
            "json": data.get(name, ""),
        }

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}-field" not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if isinstance(value, dict):  # as posted, shown again with its errors
            rows, use_json, text = value["rows"], value["use_json"], value["json"] or ""
        else:
            stored = value if value is not None else []
            rows = [filter_row(item) for item in stored] if isinstance(stored, list) else [None]
            use_json = None in rows
            rows = [] if use_json else rows
            text = json.dumps(stored, indent=2, ensure_ascii=False)
        blank = {"field": "", "op": "eq", "source": "value", "value": ""}
        context["widget"].update(
            rows=[*rows, *[blank] * (self.EMPTY_ROWS if not rows else 1)],
            use_json=use_json,
            json=text,
            operators=OPERATORS.items(),
            sources=SOURCES.items(),
            field_names=self.field_names,
        )
        return context


class FilterRowsField(forms.Field):
    """A view's filters from FilterRows: the rows as filter objects, or the Advanced JSON.
    Checked by the model (View.clean), with the same messages as the JSON always had."""

    widget = FilterRows

    def __init__(self, *, encoder=None, decoder=None, **kwargs):
        super().__init__(**kwargs)  # a model JSONField offers its encoder: not needed here

    def to_python(self, value):
        if not isinstance(value, dict):
            return value if value is not None else []
        if not value["use_json"]:
            whole(value["rows"])
            return [row_filter(row) for row in value["rows"]]
        text = value["json"]
        if not isinstance(text, str):  # the management API gives the document's own list
            return text if text is not None else []
        if not (text := text.strip()):
            return []
        return StrictJSONField(allow_null=False).clean(text)

    def has_changed(self, initial, data):
        try:
            return self.to_python(initial) != self.to_python(data)
        except forms.ValidationError:
            return True


class ViewForm(forms.ModelForm):
    """A view's filters are rows (FilterRows); its fields, parameters and ordering JSON."""

    class Meta:
        model = View
        fields = (
            "application",
            "name",
            "description",
            "record_type",
            "rest_query",
            "roles",
            "fields",
            "parameters",
            "filters",
            "ordering",
        )
        widgets = {"fields": JSON_WIDGET, "parameters": JSON_WIDGET, "ordering": JSON_WIDGET}
        field_classes = {"filters": FilterRowsField}
        help_texts = {
            "filters": "Every filter must hold. Compare a field with a value, or with a URL "
            "parameter of the view (a filter on a parameter the caller leaves out, without a "
            'default, is not applied). "is one of" takes values separated by commas. To '
            "remove a filter, empty its field.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        record_type = self.instance.record_type if self.instance.record_type_id else None
        if record_type is not None and "filters" in self.fields:  # suggestions while typing
            names = [f.name for f in record_type.fields.all()] + list(SYSTEM_FIELDS)
            self.fields["filters"].widget.field_names = tuple(names)

    def clean_filters(self):
        """Rows read back unchanged keep the stored filter as it was (a number stays a
        number); a changed or new row is stored as text, which Query() reads as it reads a
        URL parameter."""
        filters = self.cleaned_data["filters"]
        if not isinstance(filters, list) or not isinstance(self.instance.filters, list):
            return filters
        stored = {}
        for item in self.instance.filters:
            if (row := filter_row(item)) is not None:
                stored.setdefault(tuple(row.values()), item)
        return [
            stored.get(tuple(row.values()), item) if (row := filter_row(item)) else item
            for item in filters
        ]
