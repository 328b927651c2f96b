from django import forms

from apps.accounts.models import ApiKey, Role
from apps.accounts.services import may_act_as


class ApiKeyCreateForm(forms.ModelForm):
    requester = None  # set by the admin to the signed-in user

    class Meta:
        model = ApiKey
        fields = ("owner", "label", "expires_at", "flows")

    def clean_owner(self):
        owner = self.cleaned_data["owner"]
        if self.requester is not None and not may_act_as(self.requester, owner):
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

    def clean_name(self):
        """Flows name the roles that may call them (api.roles): a role renamed by someone
        who is not a superuser could take a name a flow lists (the review)."""
        name = self.cleaned_data["name"]
        renamed = self.instance.pk is not None and name != self.instance.name
        if renamed and self.requester is not None and not self.requester.is_superuser:
            raise forms.ValidationError(
                "Only a superuser renames a role: flows name the roles that may call them."
            )
        return name

    def clean_members(self):
        """No one adds themselves to a role (a new one named like one a flow lists would
        open that flow to them: the review); a superuser needs no role."""
        members = self.cleaned_data["members"]
        requester = self.requester
        if requester is None or requester.is_superuser or requester not in members:
            return members
        if self.instance.pk is None or not self.instance.members.filter(pk=requester.pk).exists():
            raise forms.ValidationError("You cannot add yourself to a role.")
        return members

    def clean_permissions(self):
        chosen = self.cleaned_data["permissions"]
        if self.requester is None or self.requester.is_superuser:
            return chosen
        mine = self.requester.get_all_permissions()
        if beyond := sorted(
            p.codename
            for p in chosen.select_related("content_type")
            if f"{p.content_type.app_label}.{p.codename}" not in mine
        ):
            raise forms.ValidationError(
                f"You cannot grant what you do not have: {', '.join(beyond)}."
            )
        return chosen
