from django import forms

from apps.accounts.models import ApiKey
from apps.accounts.services import may_issue_key_for


class ApiKeyCreateForm(forms.ModelForm):
    requester = None  # set by the admin to the signed-in user

    class Meta:
        model = ApiKey
        fields = ("owner", "label", "expires_at", "flows")

    def clean_owner(self):
        owner = self.cleaned_data["owner"]
        if self.requester is not None and not may_issue_key_for(self.requester, owner):
            raise forms.ValidationError(
                "You cannot issue a key for an account more powerful than yours (with a "
                "permission or a role you do not have): the key would act as that account."
            )
        return owner
