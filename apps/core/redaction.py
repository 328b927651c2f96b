"""Secrets never reach the execution tables: Authorization, cookies and secret-looking
headers and fields are replaced before anything is stored."""

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?$|secret|token|api[-_]?key|authorization|credential|"
    r"private[-_]?key|access[-_]?key|subscription[-_]?key|signature|session[-_]?id|"
    r"^cookie$|^key$|^sig$|^pin$",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return name.lower() in SECRET_HEADERS or bool(SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """A URL whose secret-looking query parameters (?token=, ?api_key=, …) are replaced."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, REDACTED if is_secret_name(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]")))


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking key's value replaced (and the
    secret query parameters of a `url`)."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and is_secret_name(key)
            else redact_url(item)
            if key == "url" and isinstance(item, str)
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words


def secret_values(value: Any) -> set[str]:
    """The string values held under secret-looking names anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key):
                found |= _strings(item)
            else:
                found |= secret_values(item)
    elif isinstance(value, list):
        for item in value:
            found |= secret_values(item)
    return found


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value} if len(value) >= MIN_SECRET_LENGTH else set()
    if isinstance(value, dict):
        return {text for item in value.values() for text in _strings(item)}
    if isinstance(value, list):
        return {text for item in value for text in _strings(item)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _strings(str(value))
    return set()


def scrub(value: Any, secrets: frozenset[str] | set[str]) -> Any:
    """A copy of a JSON value with secret-looking keys redacted and every known secret
    value replaced wherever it appears in a string (debug lines, error excerpts)."""
    return without_secrets(redact(value), secrets)


def without_secrets(value: Any, secrets: frozenset[str] | set[str]) -> Any:
    """A copy of a JSON value with every known secret value replaced wherever it appears in
    a string, and nothing else changed (no key is judged by its name)."""
    if not secrets:
        return value
    return _replace(value, sorted(secrets, key=len, reverse=True))  # a secret in a longer one


def _replace(value: Any, ordered: list[str]) -> Any:
    if isinstance(value, str):
        for secret in ordered:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: _replace(item, ordered) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, ordered) for item in value]
    return value


def redacted_pointers(value: Any, pointer: str = "") -> list[str]:
    """JSON pointers (RFC 6901) of the values that redaction replaced (what a re-run
    lacks)."""
    if value == REDACTED:
        return [pointer]
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in redacted_pointers(
                item, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            )
        ]
    if isinstance(value, list):
        return [
            found
            for index, item in enumerate(value)
            for found in redacted_pointers(item, f"{pointer}/{index}")
        ]
    return []
