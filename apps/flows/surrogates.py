"""Lone surrogates: text that is not valid Unicode, which no database stores and no answer
encodes.

A request body holding one is refused (apps.core.parsers; the plain modules here may not
import it). Text that comes from elsewhere cannot be refused: a script that cuts a string
in the middle of an emoji (`'😀'.slice(0, 1)`), or an API that answers a cut-off emoji as
a JSON escape. Such text is read with `loads`, which puts U+FFFD (the replacement
character) where a lone surrogate was, so that the run is stored, shown and answered like
any other.
"""

import json
import re
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON text that may hold one: spelled as an escape (a valid pair too), or raw. Only such
# a text is walked once parsed; one search finds either.
MAY_HOLD_ONE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def replaced(text: str) -> str:
    """The text with U+FFFD for each lone surrogate."""
    return SURROGATE.sub(REPLACEMENT, text)


def without_lone_surrogates(value: Any) -> Any:
    """The value (parsed JSON) with U+FFFD for each lone surrogate in its texts and keys."""
    if isinstance(value, str):
        return replaced(value)
    if isinstance(value, dict):
        return {replaced(key): without_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    return value


def loads(raw: str | bytes, **kwargs) -> Any:
    """json.loads, with U+FFFD for each lone surrogate in the JSON text: spelled as an
    escape, or sent as raw bytes (CESU-8 or WTF-8, which Java and Node servers may send
    and json.loads lets through). A text without one (nearly all) is never walked."""
    if isinstance(raw, bytes | bytearray):  # decoded as json.loads decodes it
        raw = bytes(raw).decode(json.detect_encoding(raw), "surrogatepass")
    value = json.loads(raw, **kwargs)
    if MAY_HOLD_ONE.search(raw):
        return without_lone_surrogates(value)
    return value
