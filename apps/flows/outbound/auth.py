"""Authentication headers for a connection, the OAuth2 client-credentials token form, and
which headers are secrets."""

import base64
import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

from apps.flows.outbound.errors import OutboundError
from apps.flows.outbound.values import Auth, ConnectionConfig, HttpResponse

OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"
AUTH_TYPES = frozenset({"none", "basic", "bearer", "api_key_header", OAUTH2_CLIENT_CREDENTIALS})
# Refresh a token this long before the server says it expires, so it never lapses in flight.
TOKEN_EXPIRY_MARGIN_S = 30.0
# Headers that negotiate content or trace a call and never carry a credential. A connection's
# default headers with these names are stored in plain text and shown back; any other is a
# secret (encrypted, write-only). They are also the only headers a redirect to another
# origin keeps. Short on purpose: an API key hides behind any name (Ocp-Apim-Subscription-Key).
SAFE_HEADERS = (
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Cache-Control",
    "Content-Language",
    "Content-Type",
    "Prefer",
    "User-Agent",
    "X-Correlation-Id",
    "X-Request-Id",
)
_SAFE_NAMES = frozenset(name.lower() for name in SAFE_HEADERS)


def is_safe_header(name: str) -> bool:
    return name.strip().lower() in _SAFE_NAMES


def static_headers(auth: Auth) -> dict[str, str]:
    """Headers for the kinds that need no token request (none for OAuth2: it fetches one)."""
    if auth.type not in AUTH_TYPES:
        raise OutboundError(f"Unknown authentication type {auth.type!r}")
    if auth.type == "basic":
        return {"Authorization": f"Basic {_basic_credentials(auth)}"}
    if auth.type == "bearer":
        return {"Authorization": f"Bearer {auth.token}"}
    if auth.type == "api_key_header":
        return {auth.header_name: auth.api_key}
    return {}


def _basic_credentials(auth: Auth) -> str:
    return base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode("ascii")


def connection_secrets(connection: ConnectionConfig, token: str = "") -> tuple[str, ...]:
    """Every secret of a connection that a response might quote back: its password, token,
    API key and client secret, the Basic credentials as sent (base64 of user:password), the
    values of its secret headers and the OAuth2 access token in use."""
    auth = connection.auth
    values = [auth.password, auth.token, auth.api_key, auth.client_secret, token]
    if auth.password:
        values.append(_basic_credentials(auth))
    values.extend(value for name, value in connection.headers.items() if not is_safe_header(name))
    return tuple(value for value in values if value)


def token_form(auth: Auth) -> bytes:
    form = {
        "grant_type": "client_credentials",
        "client_id": auth.client_id,
        "client_secret": auth.client_secret,
    }
    if auth.scope:
        form["scope"] = auth.scope
    return urlencode(form).encode("ascii")


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float = math.inf  # a clock() value; no expires_in -> kept until a 401


def parse_token_response(response: HttpResponse, now: float) -> Token:
    """The access token of a successful token response, expiring TOKEN_EXPIRY_MARGIN_S early.

    Errors name the token URL only: a token response body is never quoted, it may hold
    the token itself.
    """
    try:
        payload = response.json()
    except OutboundError:
        payload = None
    value = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise OutboundError(
            f"Token response from {response.url} is not JSON with an access_token",
            status=response.status,
            url=response.url,
        )
    try:
        lifetime = float(payload["expires_in"])
    except (KeyError, TypeError, ValueError):
        return Token(value=value)
    return Token(value=value, expires_at=now + lifetime - TOKEN_EXPIRY_MARGIN_S)
