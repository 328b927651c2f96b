"""Signed download URLs: Celigo's `GET …/download?signedURL=true`.

A caller asks for a download with `?signedURL=true` and gets `{"signedURL": …}`: the same
path with a `signature` parameter, to hand to a browser, `curl` or a job runner that holds
no key. The signature (Django's signing: HMAC under SECRET_KEY with its own salt, and a
timestamp) covers the path and the id of the API key that asked — never key material.

On every use the URL is checked, in this order: the signature (tampered → 403), its age
(older than FLOWSITE_SIGNED_URL_TTL_SECONDS → 403), the method and path (only a GET of the
path it was made for, with no other parameter → 403), then the key that made it, read
again: it must still exist, be neither revoked nor expired, and its account must be active
and hold `use_api_key` (else 403). The call then acts as that key, so the view's own
privilege check decides as it would for the key itself: a role taken away since the URL
was made refuses it too.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication

from apps.accounts.models import ApiKey, User
from apps.accounts.privileges import Privilege
from apps.core.exceptions import ProblemException

SALT = "flowsite.signed-download"
PARAMETER = "signature"
SAFE_METHODS = ("GET", "HEAD")


class SignedURLRefused(ProblemException):
    status_code = 403
    default_code = "signed_url_refused"


def signed_url(request) -> str:
    """An absolute URL that serves `request.path` (a download) for the TTL without an
    Authorization header, on behalf of the API key of `request` (or, in the browsable API,
    of the signed-in account)."""
    grant: dict = {"path": request.path}
    if isinstance(request.auth, ApiKey):
        grant["key"] = request.auth.pk
    else:
        grant["user"] = request.user.pk
    token = signing.dumps(grant, salt=SALT, compress=True)
    return request.build_absolute_uri(request.path) + "?" + urlencode({PARAMETER: token})


def ttl_seconds() -> int:
    return settings.FLOWSITE_SIGNED_URL_TTL_SECONDS


class SignedURLAuthentication(authentication.BaseAuthentication):
    """Authenticates a request that carries `?signature=` as the key that made it (see the
    module's docstring); stays out of the way of every other request."""

    def authenticate(self, request):
        token = request.query_params.get(PARAMETER)
        if token is None:
            return None
        try:
            grant = signing.loads(token, salt=SALT, max_age=ttl_seconds())
        except signing.SignatureExpired:
            raise SignedURLRefused(
                f"This signed URL has expired (it is valid {ttl_seconds()} seconds): ask for "
                "a new one with ?signedURL=true."
            ) from None
        except signing.BadSignature:
            raise SignedURLRefused(
                "This signed URL is not valid: it was changed or cut. Use it exactly as it was "
                "given, or ask for a new one with ?signedURL=true."
            ) from None
        path = grant.get("path") if isinstance(grant, dict) else None
        if (
            path != request.path
            or request.method not in SAFE_METHODS
            or set(request.query_params) != {PARAMETER}
        ):
            raise SignedURLRefused(
                f"This signed URL serves only GET {path}, exactly as it was given: use an "
                "API key for anything else."
            )
        return self._holder(grant)

    def _holder(self, grant: dict):
        now = timezone.now()
        if "key" in grant:
            api_key = ApiKey.objects.select_related("owner").filter(pk=grant["key"]).first()
            if api_key is None or not api_key.is_usable(now):
                raise SignedURLRefused(
                    "The API key that made this signed URL was deleted, revoked or has "
                    "expired: the URL stopped working with it."
                )
            user = api_key.owner
            if not (user.is_active and user.has_perm(Privilege.USE_API_KEY.perm)):
                raise SignedURLRefused(
                    "The account whose API key made this signed URL is inactive or may no "
                    "longer use API keys: the URL stopped working with it."
                )
            return user, api_key
        user = User.objects.filter(pk=grant.get("user")).first()
        if user is None or not user.is_active or user.is_integration:
            raise SignedURLRefused(
                "The account that made this signed URL is gone or inactive: the URL stopped "
                "working with it."
            )
        return user, None


class SignedURLScheme(OpenApiAuthenticationExtension):
    """In OpenAPI: the `signature` parameter authenticates downloads, and nothing else."""

    target_class = SignedURLAuthentication
    name = "signedURL"

    def get_security_requirement(self, auto_schema):
        if getattr(auto_schema.view, "action", None) in ("download", "template"):
            return {self.name: []}
        return None

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "query",
            "name": PARAMETER,
            "description": "A download's signed URL (from `?signedURL=true`) carries its own "
            "credentials: it needs no Authorization header.",
        }
