"""Errors of outbound calls: one family the engine catches, with what it needs to report them.

Messages are shown to flow authors, so they name the URL and the reason but never a secret:
no credential is ever formatted into one.
"""


class OutboundError(Exception):
    """An outbound call failed.

    `retriable` says whether trying again later may succeed (a timeout, a 503) or not (a 400,
    a refused address); `attempts` is how many tries were made before giving up (0 when
    the call was refused before any).
    """

    def __init__(
        self,
        message: str,
        *,
        retriable: bool = False,
        status: int | None = None,
        body_excerpt: str | None = None,
        url: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retriable = retriable
        self.status = status
        self.body_excerpt = body_excerpt
        self.url = url
        self.attempts = attempts


class BlockedAddress(OutboundError):
    """The SSRF guard refused the address a host resolved to; retrying cannot change that."""


class HttpStatusError(OutboundError):
    """The final response had a status of 400 or more."""


class ResponseTooLarge(OutboundError):
    """The response body exceeded FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES; reading stopped there."""


class DeadlineExceeded(OutboundError):
    """The caller's deadline passed before a try could start or while waiting to retry."""


EXCERPT_CHARS = 500


def excerpt(body: bytes) -> str:
    """The start of a body as text, for messages: 4 bytes per character covers any UTF-8."""
    return body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
