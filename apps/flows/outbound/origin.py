"""Where a connection's credentials may go: the origin (scheme, host, port) of its base URI.

A relative URI is joined to the base URI, but it may also be absolute, or become absolute
once its templates are filled in. The client calls only URLs of the connection's own
origin (and drops the credentials when a redirect leaves it); saving an export or import
refuses a relative URI whose literal part already names another origin.

Origins are read with urllib3's parser, and the client connects and sends by the same
reading (`locate`), so the check and the call cannot disagree: `urllib.parse` disagrees
with it on some URLs (a backslash ends urllib3's host).
"""

import re
from typing import NamedTuple
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

Origin = tuple[str, str, int]

DEFAULT_PORTS = {"http": 80, "https": 443}
# "scheme://": a URL that does not go through the base URI.
_ABSOLUTE = re.compile(r"^\s*([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


class Destination(NamedTuple):
    """An absolute http(s) URL as urllib3's parser reads it: where it goes (its origin) and
    what it asks there (its request target: path and query, without the fragment)."""

    url: str
    origin: Origin
    target: str


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL, the port filled in; else None."""
    destination = locate(url)
    return destination.origin if destination is not None else None


def locate(url: str) -> Destination | None:
    """The destination of an absolute http(s) URL; None for any other URL."""
    try:
        parts = parse_url(url.strip())
    except LocationParseError:
        return None
    scheme = (parts.scheme or "").lower()
    if scheme not in DEFAULT_PORTS or not parts.host:
        return None
    origin = scheme, parts.host.lower(), parts.port or DEFAULT_PORTS[scheme]
    return Destination(url, origin, parts.request_uri)


# The URL is never repeated with it: its user info may be a password.
CREDENTIALS_IN_URL = (
    "URLs must not contain credentials (user:password@host); "
    "use the connection's authentication instead"
)


def has_user_info(url: str) -> bool:
    """Whether a URL carries user info (user:password@host), by either parser's reading."""
    try:
        if parse_url(url.strip()).auth is not None:
            return True
    except LocationParseError:
        pass
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def shown(origin: Origin | None) -> str:
    if origin is None:
        return "no http(s) origin"
    scheme, host, port = origin
    return f"{scheme}://{host}" + ("" if DEFAULT_PORTS[scheme] == port else f":{port}")


def literal_origin_problem(relative_uri: str, base_uri: str) -> str | None:
    """Why a relative URI cannot be saved for this base URI, judging only its literal part.

    Text before the first `{{` is literal. When it is a whole "scheme://authority" (ended by
    "/", "?" or "#", or by the end of the URI) the full origin is compared; when a template
    starts inside the authority ("https://{{tenant}}.example.com") only the scheme is, and
    the client checks the rest when the URL is known.
    """
    literal, templated, _ = relative_uri.partition("{{")
    absolute = _ABSOLUTE.match(literal)
    if absolute is None:
        return None  # a path (joined to the base URI), or a template in front
    home = origin_of(base_uri)
    authority_end = re.search(r"[/?#]", literal[absolute.end() :])
    if authority_end is not None or not templated:
        end = absolute.end() + (authority_end.start() if authority_end else len(literal))
        there = origin_of(literal[:end])
        if there is not None and there == home:
            return None
        target = shown(there) if there else f"{literal[:end].strip()!r}"
    else:
        scheme = absolute.group(1).lower()
        if home is not None and scheme == home[0]:
            return None
        target = f"an {scheme} URL"
    return (
        f"This URI leads to {target}, not to the connection's {shown(home)}: the connection's "
        "credentials go only to its own host. Use a path (joined to the base URI), or a "
        "connection for that host."
    )
