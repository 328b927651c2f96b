"""Secrets never reach the execution tables: Authorization, cookies and secret-looking
headers and fields are replaced before anything is stored."""

import re
from typing import Any

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
SECRET_NAME = re.compile(
    r"pass(word|wd)?$|secret|token|api[-_]?key|authorization|credential|private[-_]?key|"
    r"session[-_]?id|^cookie$",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return name.lower() in SECRET_HEADERS or bool(SECRET_NAME.search(name))


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_name(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
