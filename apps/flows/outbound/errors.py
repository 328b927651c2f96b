"""Errors of outbound calls: one family the engine catches, with what it needs to report them.

Messages are shown to flow authors, so they name the URL and the reason but never a secret:
no credential is ever formatted into one. What a server sends back may quote one (an echo of
the request's headers, a token endpoint repeating its form), so body excerpts are built with
the connection's secrets replaced (`excerpt(body, secrets)`).
"""

import contextlib
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"


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


# A value shorter than this is no credential ("4.0", a tenant number in a header off the
# safe list): replaced wherever it appears, it would mangle ordinary text and ids.
MIN_QUOTED_SECRET = 8


def quoted_secret_forms(secrets: Iterable[str]) -> list[str]:
    """The forms (secret_forms) of the secrets long enough to be credentials: what is left
    out of the records and answers of a run that an API may have quoted them in."""
    return secret_forms(secret for secret in secrets if len(secret) >= MIN_QUOTED_SECRET)


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as a server may send it back, longest first (a secret inside a longer one).

    As sent, JSON-escaped (with and without escaped slashes and non-ASCII, and HTML-safe),
    percent-encoded (in a query or a form), and as Python quotes it as text or as bytes
    (http.client's "Invalid header value b'…'"). Empty values are no secret.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        in_json = json.dumps(secret)[1:-1]
        forms |= {
            secret,
            in_json,
            in_json.replace("/", "\\/"),
            # HTML-safe JSON, as Go's encoding/json writes it by default (an outside probe)
            in_json.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"),
            json.dumps(secret, ensure_ascii=False)[1:-1],
            quote(secret, safe=""),
            quote_plus(secret),
            repr(secret)[1:-1],
        }
        for encoding in ("latin-1", "utf-8"):
            with contextlib.suppress(UnicodeEncodeError):
                forms.add(repr(secret.encode(encoding))[2:-1])
    return sorted(forms, key=len, reverse=True)


def redact_secrets(text: str, forms: list[str]) -> str:
    """`text` with every one of `forms` (from secret_forms) replaced by [redacted]."""
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


def excerpt(body: bytes, secrets: Iterable[str] = (), chars: int = EXCERPT_CHARS) -> str:
    """The first `chars` characters of a body as text, for messages, with `secrets` replaced
    by [redacted].

    4 bytes per character covers any UTF-8. Secrets are replaced before the text is cut, and
    the text read is longer than the excerpt by the longest secret, so that no secret that
    starts inside the excerpt is left half-shown at its end.
    """
    forms = secret_forms(secrets)
    window = chars + (len(forms[0]) if forms else 0)
    text = body[: window * 4].decode("utf-8", "replace")[:window]
    return redact_secrets(text, forms)[:chars]
