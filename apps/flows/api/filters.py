"""List filters of the management API (Celigo's names)."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from apps.core.filters import IdFilter, StrictFilterSet
from apps.flows.models import Application, Connection, Export, Flow, Import, Script


def _id(field_name: str, help_text: str) -> IdFilter:
    return IdFilter(field_name=field_name, help_text=help_text)


class _TrueOrFalse(forms.Field):
    widget = forms.TextInput  # the value as sent: Django's boolean widgets read junk as unset

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise ValidationError("Use true or false.", code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    """true or false; anything else is a 400, not a filter silently dropped (every row)."""

    field_class = _TrueOrFalse


class IntegrationFilter(StrictFilterSet):
    class Meta:
        model = Application
        fields = ("name",)


class ConnectionFilter(StrictFilterSet):
    class Meta:
        model = Connection
        fields = ("name", "type")


class OwnedFilter(StrictFilterSet):
    _integrationId = _id("application_id", "Only this integration's.")
    name = django_filters.CharFilter()


class ExportFilter(OwnedFilter):
    _connectionId = _id("connection_id", "Only those using this connection.")

    class Meta:
        model = Export
        fields = ()


class ImportFilter(ExportFilter):
    class Meta:
        model = Import
        fields = ()


class ScriptFilter(OwnedFilter):
    class Meta:
        model = Script
        fields = ()


class FlowFilter(OwnedFilter):
    disabled = BooleanFilter()

    class Meta:
        model = Flow
        fields = ()
