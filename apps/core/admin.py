"""What every app's admin pages share."""

from django.contrib import admin
from django.db import models
from django.forms import JSONField as JSONFormField

from apps.core.forms import StrictJSONField


class StrictJSONAdminMixin(admin.options.BaseModelAdmin):
    """Every JSON field of a model read as the API reads JSON (StrictJSONField), `null`
    refused where the model stores none. For model admins and inlines alike."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            form_class = kwargs.get("form_class", StrictJSONField)
            if issubclass(form_class, JSONFormField):  # not a field of another kind
                if not issubclass(form_class, StrictJSONField):
                    form_class = StrictJSONField
                kwargs.update(form_class=form_class, allow_null=db_field.null)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
