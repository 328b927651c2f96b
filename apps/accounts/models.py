from django.conf import settings
from django.contrib.auth.models import AbstractUser, Permission
from django.db import models
from django.utils import timezone

from apps.accounts.privileges import PERMISSIONS


class User(AbstractUser):
    """A person who builds in the admin, or an integration account that calls the API."""

    class AccountType(models.TextChoices):
        REGULAR = "regular", "Regular (signs in to the admin)"
        INTEGRATION = "integration", "Integration (calls the API with API keys)"

    account_type = models.CharField(
        "account type",
        max_length=16,
        choices=AccountType.choices,
        default=AccountType.REGULAR,
        help_text="Integration accounts cannot sign in to the admin; they call the API.",
    )

    @property
    def is_integration(self) -> bool:
        return self.account_type == self.AccountType.INTEGRATION


class Role(models.Model):
    """A named set of privileges, granted to every member (PhixFlow's user groups)."""

    name = models.CharField("name", max_length=150, unique=True)
    description = models.TextField("description", blank=True)
    permissions = models.ManyToManyField(
        Permission,
        verbose_name="privileges",
        blank=True,
        related_name="roles",
        help_text="What members may do. Flowsite's own privileges are listed under "
        "'accounts | role'.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name="members",
        blank=True,
        related_name="roles",
        help_text="Accounts that hold this role's privileges.",
    )

    class Meta:
        ordering = ("name",)
        permissions = PERMISSIONS

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """An API key of one account. Only an HMAC of the key is stored; it is shown once."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="owner",
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="Calls made with this key act as this account.",
    )
    label = models.CharField(
        "label", max_length=100, blank=True, help_text="What the key is for, e.g. 'ERP sync'."
    )
    prefix = models.CharField(
        "prefix",
        max_length=16,
        db_index=True,
        editable=False,
        help_text="The first characters of the key: not secret, used to find and show it.",
    )
    digest = models.CharField("digest", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField("created", auto_now_add=True)
    expires_at = models.DateTimeField(
        "expires", null=True, blank=True, help_text="Leave empty for a key that never expires."
    )
    last_used_at = models.DateTimeField(
        "last used", null=True, editable=False, help_text="Updated at most once a minute."
    )
    revoked_at = models.DateTimeField("revoked", null=True, blank=True, editable=False)
    restricted = models.BooleanField(
        "restricted to flows",
        default=False,
        help_text="Only the flows below. Stays restricted (to nothing) if they are deleted.",
    )
    flows = models.ManyToManyField(
        "flows.Flow",
        verbose_name="restricted to flows",
        blank=True,
        related_name="api_keys",
        help_text="Choose flows to restrict the key to them; none: every flow its account may run.",
    )

    class Meta:
        verbose_name = "API key"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.label or self.owner})"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now
