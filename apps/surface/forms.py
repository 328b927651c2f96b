"""Admin forms of the surface: integration accounts only; the JSON of views checked."""

from django import forms

from apps.accounts.models import User
from apps.surface.models import Operation, SurfaceConfiguration, View
from apps.surface.services import not_integration_accounts


class SurfaceConfigurationForm(forms.ModelForm):
    class Meta:
        model = SurfaceConfiguration
        fields = ("execute", "query", "integration_accounts")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        accounts = self.fields["integration_accounts"]
        accounts.queryset = User.objects.filter(account_type=User.AccountType.INTEGRATION).order_by(
            "username"
        )

    def clean_integration_accounts(self):
        accounts = self.cleaned_data["integration_accounts"]
        # The queryset offers integration accounts only; an account switched to regular
        # meanwhile would be refused here, with its name.
        if regular := not_integration_accounts(accounts):
            raise forms.ValidationError(
                "Only integration accounts can call the surface; these are not: %(names)s.",
                params={"names": ", ".join(regular)},
            )
        return accounts


JSON_WIDGET = forms.Textarea(attrs={"rows": 4, "cols": 80, "style": "font-family: monospace"})


class OperationForm(forms.ModelForm):
    class Meta:
        model = Operation
        fields = (
            "application",
            "name",
            "description",
            "record_type",
            "action",
            "flow",
            "rest_execute",
            "roles",
        )


class ViewForm(forms.ModelForm):
    class Meta:
        model = View
        fields = (
            "application",
            "name",
            "description",
            "record_type",
            "rest_query",
            "roles",
            "fields",
            "parameters",
            "filters",
            "ordering",
        )
        widgets = {
            "fields": JSON_WIDGET,
            "parameters": JSON_WIDGET,
            "filters": JSON_WIDGET,
            "ordering": JSON_WIDGET,
        }
