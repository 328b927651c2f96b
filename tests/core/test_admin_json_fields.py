"""Every JSON field of every admin form reads JSON as the API does: a number that is not
finite, a document nested past the limit, or `null` where the model stores no null is an
error on the form, not a 500 when it is saved (found in review: a `null` typed into a flow's
steps, or `NaN` into a record's data, reached the database)."""

import pytest
from django import forms
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.test import RequestFactory

from apps.accounts.models import User

DEEP = "[" * 150 + "]" * 150


def json_form_fields():
    """(where, form field, model field) for every JSON form field the admin builds from a
    model's JSONField, its inlines' included."""
    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    found = []
    for model, model_admin in admin.site._registry.items():
        owners = [(model, model_admin.get_form(request))]
        owners += [
            (inline.model, inline.get_formset(request).form)
            for inline in model_admin.get_inline_instances(request)
        ]
        for owner, form_class in owners:
            for name, field in form_class.base_fields.items():
                try:
                    model_field = owner._meta.get_field(name)
                except FieldDoesNotExist:  # a form's own field
                    continue
                if isinstance(model_field, models.JSONField) and isinstance(field, forms.JSONField):
                    found.append((f"{owner._meta.label}.{name}", field, model_field))
    return found


FIELDS = json_form_fields()


def test_the_admin_has_json_fields_to_check():
    assert len(FIELDS) > 10


@pytest.mark.parametrize(
    ("where", "field", "model_field"), FIELDS, ids=[where for where, *_ in FIELDS]
)
@pytest.mark.parametrize("text", ["NaN", "1e400", '{"a": -Infinity}', DEEP])
def test_a_number_that_is_not_finite_or_a_document_too_deep_is_a_form_error(
    where, field, model_field, text
):
    with pytest.raises(forms.ValidationError):
        field.clean(text)


@pytest.mark.parametrize(
    ("where", "field", "model_field"),
    [row for row in FIELDS if not row[2].null],
    ids=[where for where, _, model_field in FIELDS if not model_field.null],
)
def test_null_is_a_form_error_where_the_model_stores_no_null(where, field, model_field):
    with pytest.raises(forms.ValidationError, match="null"):
        field.clean("null")
