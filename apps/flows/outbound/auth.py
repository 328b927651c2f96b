"""Authentication headers for a connection, and the OAuth2 client-credentials token form."""

import base64
import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

from apps.flows.outbound.errors import OutboundError
from apps.flows.outbound.values import Auth, HttpResponse

OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"
AUTH_TYPES = frozenset({"none", "basic", "bearer", "api_key_header", OAUTH2_CLIENT_CREDENTIALS})
# Refresh a token this long before the server says it expires, so it never lapses in flight.
TOKEN_EXPIRY_MARGIN_S = 30.0
# Credentials a redirect to another host must not receive.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def static_headers(auth: Auth) -> dict[str, str]:
    """Headers for the kinds that need no token request (none for OAuth2: it fetches one)."""
    if auth.type not in AUTH_TYPES:
        raise OutboundError(f"Unknown authentication type {auth.type!r}")
    if auth.type == "basic":
        pair = f"{auth.username}:{auth.password}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}"}
    if auth.type == "bearer":
        return {"Authorization": f"Bearer {auth.token}"}
    if auth.type == "api_key_header":
        return {auth.header_name: auth.api_key}
    return {}


def credential_headers(auth: Auth) -> frozenset[str]:
    """Lower-cased names of the headers that carry credentials for this connection."""
    if auth.type == "api_key_header":
        return _CREDENTIAL_HEADERS | {auth.header_name.lower()}
    return _CREDENTIAL_HEADERS


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
