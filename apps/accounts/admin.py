from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils.html import format_html

from apps.accounts import services
from apps.accounts.forms import ApiKeyCreateForm, RoleForm
from apps.accounts.models import ApiKey, Role, User
from apps.accounts.privileges import Privilege
from apps.core.admin import StrictJSONAdminMixin

# Roles replace groups: one way to grant privileges, not two.
admin.site.unregister(Group)


def show_issued_keys(request, issued: list[services.IssuedKey]) -> TemplateResponse:
    """The only page that ever shows a key's plaintext; it is not cached or stored."""
    rows = [
        {
            "key": item,
            "lacks_privilege": not item.api_key.owner.has_perm(Privilege.USE_API_KEY.perm),
        }
        for item in issued
    ]
    response = TemplateResponse(
        request,
        "admin/accounts/apikey_created.html",
        {**admin.site.each_context(request), "title": "API key created", "rows": rows},
    )
    response["Cache-Control"] = "no-store"
    return response


class NoMorePowerfulMixin:
    """An object `may_change` refuses is read-only to the signed-in user: no change, no
    delete (and for an account, no password)."""

    def may_change(self, request, obj) -> bool:
        raise NotImplementedError

    def has_change_permission(self, request, obj=None):
        if obj is not None and not self.may_change(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not self.may_change(request, obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(User)
class UserAdmin(NoMorePowerfulMixin, StrictJSONAdminMixin, DjangoUserAdmin):
    list_display = ("username", "account_type", "email", "is_staff", "is_active", "role_list")
    list_filter = ("account_type", "is_staff", "is_superuser", "is_active")
    fieldsets = (
        (None, {"fields": ("username", "password", "account_type")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Permissions",
            {
                "classes": ("collapse",),
                "fields": ("is_active", "is_staff", "is_superuser", "user_permissions"),
            },
        ),
        ("Important dates", {"classes": ("collapse",), "fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "account_type", "usable_password", "password1", "password2"),
            },
        ),
    )
    actions = ("generate_api_key",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("roles")

    # No one makes an account more powerful than their own (an outside probe: a staff user
    # who may change users ticked "superuser" on their own account): only superusers set
    # superuser status and direct permissions, and an account more powerful than yours
    # (a permission or a role you do not have) is read-only to you, its password included.
    OWN_POWERS = ("is_superuser", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, *self.OWN_POWERS)

    def may_change(self, request, obj) -> bool:
        return services.may_act_as(request.user, obj)

    @admin.display(description="roles")
    def role_list(self, obj):
        return ", ".join(role.name for role in obj.roles.all()) or "—"

    def has_generate_api_key_permission(self, request) -> bool:
        return request.user.has_perm("accounts.add_apikey")

    @admin.action(description="Generate API key", permissions=["generate_api_key"])
    def generate_api_key(self, request, queryset):
        owners = list(queryset)
        allowed = [user for user in owners if services.may_act_as(request.user, user)]
        if refused := [str(user) for user in owners if user not in allowed]:
            self.message_user(
                request,
                f"No key for {', '.join(refused)}: an account more powerful than yours.",
                messages.ERROR,
            )
        if not allowed:
            return None
        issued = [
            services.create_api_key(owner=user, label=f"Generated in the admin by {request.user}")
            for user in allowed
        ]
        return show_issued_keys(request, issued)


@admin.register(Role)
class RoleAdmin(NoMorePowerfulMixin, StrictJSONAdminMixin, admin.ModelAdmin):
    list_display = ("name", "description", "member_count", "privilege_list")
    search_fields = ("name", "description")
    filter_horizontal = ("permissions", "members")
    fields = ("name", "description", "permissions", "members")
    form = RoleForm

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(num_members=Count("members", distinct=True))
            .prefetch_related("permissions")
        )

    def may_change(self, request, obj) -> bool:
        """A role you are not in, or one granting a permission you do not have, is
        read-only to you: changing it could make you (or anyone) more powerful than you
        (an outside probe joined a role that way)."""
        return services.may_change_role(request.user, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.requester = request.user
        return form

    @admin.display(description="members", ordering="num_members")
    def member_count(self, obj):
        return obj.num_members

    @admin.display(description="privileges")
    def privilege_list(self, obj):
        return ", ".join(sorted(p.codename for p in obj.permissions.all())) or "—"


@admin.register(ApiKey)
class ApiKeyAdmin(StrictJSONAdminMixin, admin.ModelAdmin):
    list_display = (
        "display_prefix",
        "owner",
        "label",
        "created_at",
        "expires_at",
        "last_used_at",
        "status",
    )
    list_filter = ("revoked_at", "expires_at")
    list_select_related = ("owner",)
    search_fields = ("prefix", "label", "owner__username")
    readonly_fields = (
        "owner",
        "display_prefix",
        "restricted",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = (
        "owner",
        "display_prefix",
        "label",
        "expires_at",
        "flows",
        "restricted",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    filter_horizontal = ("flows",)
    actions = ("revoke",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
            kwargs["fields"] = ApiKeyCreateForm.Meta.fields
        form = super().get_form(request, obj, change=change, **kwargs)
        form.requester = request.user
        return form

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_fields(self, request, obj=None):
        return self.fields if obj else ApiKeyCreateForm.Meta.fields

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        # A new key is created by the service, the only place that sees its plaintext.
        # It is kept on the request (ModelAdmin instances are shared between threads).
        request.issued_api_key = services.create_api_key(
            owner=form.cleaned_data["owner"],
            label=form.cleaned_data["label"],
            expires_at=form.cleaned_data["expires_at"],
            flows=form.cleaned_data["flows"],
        )
        return request.issued_api_key.api_key

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        if change:
            services.restrict_api_key(api_key=form.instance, flows=form.cleaned_data["flows"])

    def response_add(self, request, obj, post_url_continue=None):
        return show_issued_keys(request, [request.issued_api_key])

    @admin.display(description="key")
    def display_prefix(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="status")
    def status(self, obj):
        if obj.revoked_at:
            return format_html('<span style="color:#ba2121">{}</span>', "revoked")
        if not obj.is_usable():
            return format_html('<span style="color:#ba2121">{}</span>', "expired")
        return "active"

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        count = services.revoke_api_keys(queryset=queryset)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
