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

# Where a JSON text may spell a surrogate (a valid pair too): only then is it searched.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
SURROGATE = re.compile("[\ud800-\udfff]")
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
    """json.loads, with U+FFFD for each lone surrogate the JSON text spells as an escape.
    A text without a surrogate escape (nearly all) is parsed only once and never walked."""
    value = json.loads(raw, **kwargs)
    pattern = SURROGATE_ESCAPE_BYTES if isinstance(raw, bytes | bytearray) else SURROGATE_ESCAPE
    if pattern.search(raw):
        return without_lone_surrogates(value)
    return value
