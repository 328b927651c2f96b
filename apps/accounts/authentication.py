"""DRF authentication with API keys: `Authorization: Bearer <key>` or bare `<key>`."""

from typing import NoReturn
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import authentication, exceptions

from apps.accounts import key_cache, keys
from apps.accounts.permissions import MissingPrivilege
from apps.accounts.privileges import Privilege
from apps.core import throttling

INVALID_KEY = "Invalid API key: it is unknown, malformed, expired or revoked."


def refuse_invalid_key(request, raw: str) -> NoReturn:
    """Count a failed key per client and per key prefix; 429 past either limit, else 401.

    Both counters go up whatever the key was (unknown, malformed, expired, revoked), and the
    prefix counter counts the prefix as presented, existing or not: the answers, 401 or
    429 alike, never tell whether a key with that prefix exists. The per-prefix count
    slows guessing at one key from many addresses.
    """
    rate = settings.FLOWSITE_THROTTLE_RATES["auth_failure"]
    counters = [("auth-failure", throttling.client_ip(request))]
    if keys.is_well_formed(raw):  # a malformed key has no prefix worth a counter
        counters.append(("auth-failure-prefix", keys.lookup_prefix(raw)))
    waits = [throttling.hit(scope, ident, rate) for scope, ident in counters]
    if over := [wait for wait in waits if wait is not None]:
        raise exceptions.Throttled(max(over))
    raise exceptions.AuthenticationFailed(INVALID_KEY)


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
        elif parts[0].lower() == "bearer":  # ours, but not one key: "Bearer a, Bearer b"
            refuse_invalid_key(request, "")
        else:
            return None  # another scheme (e.g. Basic added by a proxy): not ours to judge
        # The key is checked first, so a correct key always gets through: others' failures
        # from the same address (everyone's, behind a proxy that is not trusted) or against
        # the same prefix never refuse it. Only failures are limited. A key that authenticated
        # in this process within the last half second is not read again (key_cache).
        api_key = key_cache.usable_key(raw)
        if api_key is None:
            refuse_invalid_key(request, raw)
        if not api_key.owner.has_perm(Privilege.USE_API_KEY.perm):
            # The caller holds a valid key, so naming the missing privilege leaks nothing.
            raise MissingPrivilege(Privilege.USE_API_KEY, subject="The owner of this API key")
        return api_key.owner, api_key

    def authenticate_header(self, request):
        return 'Bearer realm="flowsite"'


class RegularSessionAuthentication(authentication.SessionAuthentication):
    """The admin's session, for the browsable API: never an integration account's (one
    switched to integration keeps no power from a session it had before), and never for a
    request a page of another site made. Browsers send the session cookie with a top-level
    navigation from anywhere (SameSite=Lax), and CSRF tokens guard only unsafe methods, so
    without this a link on another site could run a GET flow as the signed-in builder."""

    # Sec-Fetch-Site (Fetch Metadata, sent by every current browser): who made the request.
    FOREIGN = frozenset({"cross-site", "same-site"})

    def _from_another_site(self, request) -> bool:
        """Sec-Fetch-Site says so; a browser that sends none (older ones) is judged by the
        Origin, else the Referer, it sent: another host than this one's."""
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site.lower() in self.FOREIGN
        sender = request.headers.get("Origin") or request.headers.get("Referer")
        if not sender or sender == "null":
            return sender == "null"  # an opaque origin is another site's
        return urlsplit(sender).netloc.lower() != request.get_host().lower()

    def authenticate(self, request):
        if self._from_another_site(request):
            return None
        result = super().authenticate(request)
        if result is not None and getattr(result[0], "is_integration", False):
            return None
        return result
