"""DRF authentication with API keys: `Authorization: Bearer <key>` or bare `<key>`."""

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.throttling import BaseThrottle

from apps.accounts.permissions import MissingPrivilege
from apps.accounts.privileges import Privilege
from apps.accounts.services import resolve_api_key
from apps.core import throttling

INVALID_KEY = "Invalid API key: it is unknown, malformed, expired or revoked."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates the key's owner; `request.auth` is the ApiKey.

    PhixFlow sends the key bare (`Authorization: fs_…`); everyone else sends
    `Bearer fs_…`. Only accounts holding `use_api_key` may use a key.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "").strip()
        if not header:
            return None
        parts = header.split()
        if len(parts) == 2 and parts[0].lower() == "bearer":
            raw = parts[1]
        elif len(parts) == 1:
            raw = parts[0]
        else:
            return None  # another scheme (e.g. Basic added by a proxy): not ours to judge
        # Guessing keys is rate-limited per client: failures count against the anonymous
        # rate, and past it the caller is refused before any lookup.
        client = BaseThrottle().get_ident(request)
        rate = settings.FLOWSITE_THROTTLE_RATES["anon"]
        if (wait := throttling.exhausted("auth-failure", client, rate)) is not None:
            raise exceptions.Throttled(wait)
        api_key = resolve_api_key(raw)
        if api_key is None:
            throttling.hit("auth-failure", client, rate)
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        if not api_key.owner.has_perm(Privilege.USE_API_KEY.perm):
            # The caller holds a valid key, so naming the missing privilege leaks nothing.
            raise MissingPrivilege(Privilege.USE_API_KEY, subject="The owner of this API key")
        return api_key.owner, api_key

    def authenticate_header(self, request):
        return 'Bearer realm="flowsite"'


class RegularSessionAuthentication(authentication.SessionAuthentication):
    """The admin's session, for the browsable API: never an integration account's (one
    switched to integration keeps no power from a session it had before)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and getattr(result[0], "is_integration", False):
            return None
        return result
