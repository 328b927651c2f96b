"""django-filter FilterSets that refuse what they do not know.

A misspelt filter (`?stauts=failed`) silently ignored would return every row; here it is
a 400 naming it and the filters that exist.
"""

import django_filters
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
