"""Writes for accounts: API keys."""

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import Permission
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts import keys
from apps.accounts.models import ApiKey, User

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
_NO_MATCH = keys.digest("fs_" + "0" * 43)


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: `plaintext` exists only here, never in the database."""

    api_key: ApiKey
    plaintext: str


def may_act_as(requester: User, owner: User) -> bool:
    """Whether the account is no more powerful than you, in its permissions and in its
    roles (which open flows and the surface's operations and views to their members): only
    then may you issue it a key (the key acts as it) or change it, its password included.
    An outside probe issued a key for a role's member and called that role's flows."""
    if requester.is_superuser:
        return True
    if owner.is_superuser:
        return False
    if not set(owner.roles.values_list("pk", flat=True)) <= set(
        requester.roles.values_list("pk", flat=True)
    ):
        return False
    return held_permissions(owner) <= requester.get_all_permissions()


def held_permissions(user: User) -> set[str]:
    """The permissions the account holds, directly, through its groups or its roles, even
    while it is inactive (Django then counts none, and an inactive account can be made
    active again: the review)."""
    rows = Permission.objects.filter(
        Q(user=user) | Q(group__user=user) | Q(roles__members=user)
    ).values_list("content_type__app_label", "codename")
    return {f"{app_label}.{codename}" for app_label, codename in rows.distinct()}


def may_change_role(requester: User, role) -> bool:
    """Only a role you are in, granting nothing you do not have (a superuser: any)."""
    if requester.is_superuser:
        return True
    if not role.members.filter(pk=requester.pk).exists():
        return False
    granted = {
        f"{app_label}.{codename}"
        for app_label, codename in role.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }
    return granted <= requester.get_all_permissions()


@transaction.atomic
def create_api_key(
    *, owner: User, label: str = "", expires_at: datetime | None = None, flows=()
) -> IssuedKey:
    plaintext = keys.generate_key()
    api_key = ApiKey(
        owner=owner,
        label=label,
        expires_at=expires_at,
        prefix=keys.lookup_prefix(plaintext),
        digest=keys.digest(plaintext),
    )
    api_key.full_clean()
    api_key.save()
    restrict_api_key(api_key=api_key, flows=flows)
    return IssuedKey(api_key=api_key, plaintext=plaintext)


def restrict_api_key(*, api_key: ApiKey, flows) -> None:
    """Limit the key to these flows; none lifts the restriction."""
    flows = list(flows)
    api_key.flows.set(flows)
    api_key.restricted = bool(flows)
    api_key.save(update_fields=["restricted"])


def expiry_in_days(days: int | None) -> datetime | None:
    return timezone.now() + timedelta(days=days) if days else None


def revoke_api_keys(*, queryset) -> int:
    """Revoke the keys not revoked yet; returns how many were revoked."""
    from apps.accounts import key_cache  # it reads keys through this module

    revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    key_cache.clear()  # this process at once; the others within key_cache.SECONDS
    return revoked


def resolve_api_key(raw: str) -> ApiKey | None:
    """The usable key for `raw`, with its owner loaded, or None.

    Unknown, malformed, expired and revoked keys and inactive owners all give None, so a
    caller cannot tell them apart. Digests are compared in constant time.
    """
    well_formed = keys.is_well_formed(raw)
    candidate_digest = keys.digest(raw if well_formed else "")
    match = None
    if well_formed:
        candidates = ApiKey.objects.select_related("owner").filter(prefix=keys.lookup_prefix(raw))
        for candidate in candidates:
            if hmac.compare_digest(candidate.digest, candidate_digest):
                match = candidate
    else:
        hmac.compare_digest(_NO_MATCH, candidate_digest)
    now = timezone.now()
    if match is None or not match.is_usable(now) or not match.owner.is_active:
        return None
    if match.last_used_at is None or now - match.last_used_at >= LAST_USED_RESOLUTION:
        try:
            ApiKey.objects.filter(pk=match.pk).update(last_used_at=now)
        except DatabaseError:  # bookkeeping only (e.g. a busy SQLite): never fail the call
            logger.warning("Could not record the use of API key %s", match.prefix)
        match.last_used_at = now
    return match
