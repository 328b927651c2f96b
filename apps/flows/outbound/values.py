"""What the engine hands the outbound client and gets back.

Secrets (passwords, tokens, keys, default headers) are left out of every repr: these
objects end up in logs, tracebacks and error reports.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.flows import surrogates
from apps.flows.outbound.errors import OutboundError, excerpt


@dataclass(frozen=True)
class Auth:
    """How a connection authenticates; `type` picks which of the other fields matter."""

    type: str = "none"  # none | basic | bearer | api_key_header | oauth2_client_credentials
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    header_name: str = "X-API-Key"
    api_key: str = field(default="", repr=False)
    token_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = ""


@dataclass(frozen=True)
class ConnectionConfig:
    """One configured external API.

    `key` identifies it for pooling and token caching; it must change whenever the
    configuration does (e.g. id + last modified), since cached pools and tokens follow it.
    """

    key: str
    base_uri: str
    # Default headers often carry API keys, so they stay out of the repr.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    auth: Auth = Auth()
    allowed_private_hosts: tuple[str, ...] = ()
    timeout_ms: int | None = None
    # Calls a step may make at once on this connection (Celigo's http.concurrencyLevel);
    # the client keeps at least this many keep-alive connections to its host.
    concurrency: int = 1


@dataclass
class HttpRequest:
    """One logical request; `url` is relative to the connection's base URI or absolute."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    query: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    body: bytes | None = None


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return "utf-8"


@dataclass
class HttpResponse:
    """A response read in full (within the size limit); header names are lower-cased."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    elapsed_ms: float
    # The connection's secrets, so that an error quoting this body (json()) leaves them out.
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def json(self) -> Any:
        """The body parsed as JSON; None for an empty body, as a 204 No Content has.

        Parsing is tried whatever the Content-Type says, since many APIs label JSON as
        text/plain; the error names the type for when it really was something else.
        """
        if not self.body.strip():
            return None
        try:
            return surrogates.loads(self.body)
        except ValueError as exc:
            content_type = self.headers.get("content-type") or "no content type"
            text = excerpt(self.body, self.secrets)
            raise OutboundError(
                f"Expected a JSON response from {self.url} but got {content_type}: {text}",
                retriable=False,
                status=self.status,
                body_excerpt=text,
                url=self.url,
            ) from exc

    @property
    def text(self) -> str:
        """The body decoded with its declared charset (UTF-8 by default), never failing."""
        try:
            return self.body.decode(_charset(self.headers.get("content-type", "")), "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")
