"""django-filter FilterSets that refuse what they do not know.

A misspelt filter (`?stauts=failed`) silently ignored would return every row; here it is
a 400 naming it and the filters that exist.
"""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict

PAGING = frozenset({"cursor", "limit"})


class StrictFilterSet(django_filters.FilterSet):
    @property
    def errors(self):
        errors = ErrorDict(self.form.errors)
        known = ", ".join(sorted(self.filters))
        for name in sorted(set(self.data) - set(self.filters) - PAGING):
            errors[name] = self.form.error_class(
                [ValidationError(f"Unknown filter. The filters are: {known}.", code="unknown")]
            )
        return errors

    def is_valid(self) -> bool:
        return not self.errors


class IdFilter(django_filters.NumberFilter):
    """A resource id: a positive 64-bit integer (no decimals, nothing SQLite can't hold)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, compared in UTC: PostgreSQL refuses UTC offsets beyond ±15:59
    that Python accepts (+23:38), and a moment past the calendar's edge is a 400."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None or moment.tzinfo is None:
            return moment
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError(
                "This moment is outside the dates that can be stored.", code="invalid"
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
