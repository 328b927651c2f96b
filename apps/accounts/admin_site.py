from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

INTEGRATION_REFUSED = (
    "This is an integration account: it cannot sign in to the admin. Integration "
    "accounts call the API with an API key."
)


class FlowsiteAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        if getattr(user, "is_integration", False):
            raise ValidationError(INTEGRATION_REFUSED, code="integration_account")
        super().confirm_login_allowed(user)


class FlowsiteAdminSite(admin.AdminSite):
    site_header = "Flowsite"
    site_title = "Flowsite admin"
    index_title = "Build and run integrations"
    login_form = FlowsiteAuthenticationForm

    def has_permission(self, request):
        user = request.user
        return super().has_permission(request) and not getattr(user, "is_integration", False)
