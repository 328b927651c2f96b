"""Flowsite's shared outbound HTTP client: the one way flows call external APIs.

    response = get_client().send(connection, HttpRequest("GET", "contacts", query={"page": 2}))

See `client.OutboundClient.send` for timeouts, retries and redirects, and `guard` for the
SSRF guard that keeps calls off private networks.

`values`, `errors` and `retry` are plain Python: the flow engine imports those modules, not
this package, which also loads `client` and `guard` (they read Django's settings).
"""

from apps.flows.outbound.client import OutboundClient, get_client
from apps.flows.outbound.errors import (
    BlockedAddress,
    DeadlineExceeded,
    HttpStatusError,
    OutboundError,
    ResponseTooLarge,
)
from apps.flows.outbound.retry import RetryPolicy
from apps.flows.outbound.values import Auth, ConnectionConfig, HttpRequest, HttpResponse

__all__ = [
    "Auth",
    "BlockedAddress",
    "ConnectionConfig",
    "DeadlineExceeded",
    "HttpRequest",
    "HttpResponse",
    "HttpStatusError",
    "OutboundClient",
    "OutboundError",
    "ResponseTooLarge",
    "RetryPolicy",
    "get_client",
]
