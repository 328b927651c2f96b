"""Admin forms: a record type's fields inline, and a record's form built from its type."""

from datetime import date
from typing import Any

from django import forms
from django.contrib.admin import widgets
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils.dateparse import parse_datetime

from apps.core.forms import StrictJSONField
from apps.records.models import Record, RecordField, RecordType, new_field_name
from apps.records.validation import RecordInvalid, clean_record

Type = RecordField.Type


class RecordFieldForm(forms.ModelForm):
    """Choices as one value per line, rather than a JSON list."""

    choices = forms.CharField(
        label="choices",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 20}),
        help_text="Choice fields: one value per line.",
    )
    default = StrictJSONField(
        label="default",
        required=False,
        widget=forms.Textarea(attrs={"rows": 1, "cols": 20}),
        help_text='JSON, e.g. "Warm", 0, true or ["Hot"].',
    )

    class Meta:
        model = RecordField
        fields = ("position", "name", "type", "required", "choices", "default")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.instance.choices, list):
            self.initial["choices"] = "\n".join(map(str, self.instance.choices))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if self.instance.pk is None or name != self.instance.name:  # new or renamed
            new_field_name(name)
        return name

    def clean_choices(self) -> list[str]:
        lines = (line.strip() for line in self.cleaned_data["choices"].splitlines())
        return [line for line in lines if line]


def form_name(field: RecordField) -> str:
    """The form field of a record field: names of fields may hold any character."""
    return f"field_{field.pk}"


def _form_field(field: RecordField) -> forms.Field:
    options: dict[str, Any] = {"label": field.name, "required": field.required}
    choices = [(choice, choice) for choice in field.choices or ()]
    match field.type:
        case Type.LONG_TEXT:
            return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), **options)
        case Type.NUMBER:
            return forms.DecimalField(**options)
        case Type.INTEGER:
            return forms.IntegerField(**options)
        case Type.BOOLEAN:
            if field.required:  # a required yes/no still accepts "no"
                return forms.BooleanField(label=field.name, required=False)
            return forms.NullBooleanField(label=field.name, required=False)
        case Type.DATE:
            return forms.DateField(widget=widgets.AdminDateWidget, **options)
        case Type.DATETIME:
            return forms.SplitDateTimeField(widget=widgets.AdminSplitDateTime, **options)
        case Type.CHOICE:
            return forms.ChoiceField(choices=[("", "---------"), *choices], **options)
        case Type.MULTI_CHOICE:
            return forms.MultipleChoiceField(
                choices=choices, widget=forms.CheckboxSelectMultiple, **options
            )
        case Type.EMAIL:
            return forms.EmailField(**options)
        case Type.URL:
            return forms.URLField(assume_scheme="https", **options)
        case Type.JSON:
            return StrictJSONField(widget=forms.Textarea(attrs={"rows": 3}), **options)
    return forms.CharField(widget=widgets.AdminTextInputWidget, **options)


def _initial(field: RecordField, value: Any) -> Any:
    """A stored value as its form field expects it."""
    if value is None:
        return None
    try:
        if field.type == Type.DATE:
            return date.fromisoformat(value)
        if field.type == Type.DATETIME:
            return parse_datetime(value)
    except (TypeError, ValueError):
        return None
    return value


class RecordForm(forms.ModelForm):
    """Base of the generated form; its values are checked by clean_record, like the API's.
    After validation `record_values` holds the values to save."""

    record_type: RecordType | None = None
    record_fields: tuple[RecordField, ...] = ()

    class Meta:
        model = Record
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and self.record_type is not None:
            self.instance.record_type = self.record_type
        stored = self.instance.data if self.instance.pk else {}
        for field in self.record_fields:
            value = stored.get(field.name) if self.instance.pk else field.default
            self.initial.setdefault(form_name(field), _initial(field, value))
        self.record_values: dict[str, Any] = {}

    def clean(self):
        cleaned = super().clean()
        if self._errors:
            return cleaned
        data = {
            field.name: cleaned.get(form_name(field))
            for field in self.record_fields
            if form_name(field) in cleaned
        }
        names = {field.name: form_name(field) for field in self.record_fields}
        try:
            self.record_values = clean_record(self.record_fields, data)
        except RecordInvalid as exc:
            for name, message in exc.errors.items():
                if name in names:
                    self.add_error(names[name], message)
                else:
                    self.add_error(
                        None, message if name == NON_FIELD_ERRORS else f"{name}: {message}"
                    )
        return cleaned


def record_form_class(
    record_type: RecordType | None, fields: list[RecordField]
) -> type[RecordForm]:
    attrs: dict[str, Any] = {form_name(field): _form_field(field) for field in fields}
    attrs.update(record_type=record_type, record_fields=tuple(fields))
    return type("RecordForm", (RecordForm,), attrs)
