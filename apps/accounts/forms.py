from django import forms

from apps.accounts.models import ApiKey


class ApiKeyCreateForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("owner", "label", "expires_at", "flows")
