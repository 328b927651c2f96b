"""Form fields every app's forms share."""

from django import forms

from apps.core.parsers import MAX_DEPTH, FiniteJSONDecoder, too_deep


class StrictJSONField(forms.JSONField):
    """JSON as the API's parser takes it: finite numbers, nested at most MAX_DEPTH levels
    (NaN, or a document some hundreds of levels deep, was a 500 in the admin; found by
    outside probes and the review). With `allow_null=False` (a model field that stores no
    null), a typed `null` is the field's error, not an IntegrityError when it is saved."""

    def __init__(self, *, allow_null: bool = True, **kwargs):
        if kwargs.get("decoder") is None:  # a model field passes its own (None)
            kwargs["decoder"] = FiniteJSONDecoder
        self.allow_null = allow_null
        super().__init__(**kwargs)

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except (ValueError, RecursionError):  # shown back as typed, with the error
            return forms.fields.InvalidJSONInput(data)

    def to_python(self, value):
        deep = forms.ValidationError(f"Nested more than {MAX_DEPTH} levels deep.")
        try:
            converted = super().to_python(value)
        except ValueError as exc:  # the decoder's refusal of a number that is not finite
            raise forms.ValidationError(str(exc)) from None
        except RecursionError:
            raise deep from None
        if converted is None and not self.allow_null and value not in self.empty_values:
            raise forms.ValidationError(
                "JSON null is not a value here: give an object, a list or a value."
            )
        if too_deep(converted):
            raise deep
        return converted
