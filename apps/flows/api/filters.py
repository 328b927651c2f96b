"""List filters of the management API (Celigo's names)."""

import django_filters

from apps.core.filters import IdFilter, StrictFilterSet
from apps.flows.models import Application, Connection, Export, Flow, Import, Script


def _id(field_name: str, help_text: str) -> IdFilter:
    return IdFilter(field_name=field_name, help_text=help_text)


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
    disabled = django_filters.BooleanFilter()

    class Meta:
        model = Flow
        fields = ()
