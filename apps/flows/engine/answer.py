"""A flow's own answer: DESIGN §4's `{statusCode, headers?, body | result, contentType?}`.

The engine checks it when the run ends, so that a run whose answer cannot be sent as the
flow set it fails, saying why, instead of being recorded a success while its caller gets
a 500 or a different answer. The web layer then sends it with these same rules.
"""

import re
from typing import Any

# RFC 9110: a header name is a token.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Never sent from a flow's answer, which is the flow's content on Flowsite's own origin:
# framing and connection headers (the server's), cookies, and headers that act on the
# whole origin or domain (sign the admin out, pin HSTS, open CORS, allow framing).
DROPPED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
        "set-cookie",
        "set-cookie2",
        "clear-site-data",
        "strict-transport-security",
        "x-frame-options",
        "refresh",
        # policies a browser keeps for the whole origin, for up to a year
        "nel",
        "report-to",
        "reporting-endpoints",
        "alt-svc",
        "accept-ch",
        "critical-ch",
        "service-worker-allowed",
    }
)
DROPPED_PREFIXES = ("access-control-",)


def is_status(value: Any) -> bool:
    """A number in `statusCode` makes the object an answer (a bool is not a number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_dropped(name: str) -> bool:
    lowered = name.lower()
    return lowered in DROPPED_HEADERS or lowered.startswith(DROPPED_PREFIXES)


def header_text(value: str | int | float | bool) -> str:
    """A header value as sent: text as it is, a number or a boolean as JSON writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def answer_problem(answer: dict) -> str | None:
    """Why the answer cannot be sent as the flow set it; None when it can."""
    status = answer["statusCode"]
    if status != int(status) or not 100 <= status <= 599:
        return (
            f"The flow answered statusCode {status}, which is not an HTTP status: answer "
            "with 200-599."
        )
    if status < 200:
        return (
            f"The flow answered {int(status)}: a 1xx status is not a final answer; answer "
            "with 200-599."
        )
    headers = answer.get("headers")
    if headers is None:
        return None
    if not isinstance(headers, dict):
        return (
            "The flow's answer has headers that are not an object of names and values "
            '(e.g. {"X-Id": "42"}).'
        )
    for name, value in headers.items():
        if value is None:  # not sent (JavaScript's "no value")
            continue
        if not HEADER_NAME.fullmatch(name):
            return f"The flow's answer has a header named {name!r}, which is not a header name."
        if not isinstance(value, str | int | float):
            return f"The flow's answer has header {name} whose value is not text or a number."
        text = header_text(value)
        if "\r" in text or "\n" in text or "\0" in text:
            return f"The flow's answer has header {name} with a line break or NUL in its value."
        if not text.isascii():
            return (
                f"The flow's answer has header {name} with non-ASCII text, which a header "
                "cannot carry: percent-encode it (or use RFC 8187's encoding)."
            )
    return None
