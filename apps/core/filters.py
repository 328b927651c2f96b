"""django-filter FilterSets that refuse what they do not know.

A misspelt filter (`?stauts=failed`) silently ignored would return every row; here it is
a 400 naming it and the filters that exist.
"""

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
