from django import forms

from apps.accounts.models import ApiKey, Role
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


class RoleForm(forms.ModelForm):
    """A role grants only what its editor has (a superuser: anything)."""

    requester = None  # set by the admin to the signed-in user

    class Meta:
        model = Role
        fields = ("name", "description", "permissions", "members")

    def clean_permissions(self):
        chosen = self.cleaned_data["permissions"]
        if self.requester is None or self.requester.is_superuser:
            return chosen
        mine = self.requester.get_all_permissions()
        if beyond := sorted(
            p.codename for p in chosen if f"{p.content_type.app_label}.{p.codename}" not in mine
        ):
            raise forms.ValidationError(
                f"You cannot grant what you do not have: {', '.join(beyond)}."
            )
        return chosen
