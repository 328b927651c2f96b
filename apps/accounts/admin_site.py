from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed

# One message for every refused sign-in (wrong password, unknown user, inactive, not staff,
# integration account, locked out), so the answer never tells a right password apart.
REFUSED = (
    "Please enter the correct %(username)s and password for a staff account. Note that "
    "both fields may be case-sensitive, and that after repeated failures signing in is "
    "paused for a while."
)


class FlowsiteAuthenticationForm(AdminAuthenticationForm):
    error_messages = {**AdminAuthenticationForm.error_messages, "invalid_login": REFUSED}

    def confirm_login_allowed(self, user):
        """Refuse accounts that may not sign in (integration accounts call the API with
        keys) exactly like a wrong password, and count the refusal towards the lockout
        like one: otherwise their right password would escape the count."""
        if user.is_active and user.is_staff and not getattr(user, "is_integration", False):
            return
        user_login_failed.send(
            sender=__name__,
            credentials={"username": self.cleaned_data.get("username")},
            request=self.request,
        )
        raise self.get_invalid_login_error()


class FlowsiteAdminSite(admin.AdminSite):
    site_header = "Flowsite"
    site_title = "Flowsite admin"
    index_title = "Build and run integrations"
    login_form = FlowsiteAuthenticationForm
    index_template = "admin/flowsite_index.html"  # the home panel above the app list
    site_url = "/admin/"  # "View site": Flowsite's site is its admin (there is no other page)

    def has_permission(self, request):
        user = request.user
        return super().has_permission(request) and not getattr(user, "is_integration", False)
