"""List filters of the records and recordTypes resources."""

import django_filters

from apps.core.filters import IdFilter, StrictFilterSet
from apps.records.models import Record, RecordType


class RecordTypeFilter(StrictFilterSet):
    _integrationId = IdFilter(field_name="application_id", help_text="Only this integration's.")
    name = django_filters.CharFilter()

    class Meta:
        model = RecordType
        fields = ()


class RecordFilter(StrictFilterSet):
    _recordTypeId = IdFilter(
        field_name="record_type_id",
        required=True,
        help_text="Required: the record type (data table) whose records to list.",
    )

    class Meta:
        model = Record
        fields = ()
