"""Parsers whose errors say where the body is unusable, before anything stores it.

Refused at parse time, with a 400 problem:
- JSON that does not parse (line, column and character);
- numbers that are not finite: NaN and Infinity (not JSON at all) and numbers beyond a
  64-bit float such as 1e400, which Python reads as infinity and no database stores
  (SQLite's JSON_VALID and PostgreSQL's jsonb both refuse it);
- text that is not valid Unicode: a lone surrogate such as "\\ud800", escaped in JSON or
  made by a charset such as unicode_escape, which cannot be encoded as UTF-8 and which
  PostgreSQL refuses in jsonb.
Both name where, as JSON pointers in `errors` (the form of a validation problem).

The body size is enforced by ApiProblemMiddleware from Content-Length (bodies without
one are refused there), so the parser reads what Django's LimitedStream allows.
"""

import json
import math
import re
from typing import Any

from rest_framework import parsers

from apps.core.exceptions import ProblemException

# Where a JSON text may spell a surrogate (a valid pair too): only then is it searched.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_LISTED = 20  # errors named in one problem; a body can hold millions
# Objects and arrays nested deeper than this are refused: what reads a document walks it
# recursively (Python's limit, ~1,000 frames, was reached from ~500 levels: a 500).
MAX_DEPTH = 100


class MalformedJSON(ProblemException):
    status_code = 400
    default_detail = "The request body is not valid JSON."
    default_code = "malformed_json"


class InvalidUnicode(ProblemException):
    status_code = 400
    default_detail = "The request body holds text that is not valid Unicode."
    default_code = "invalid_unicode"


class _NotFinite(str):
    """Stands in, while parsing, for a number no database stores; never returned."""


def printable(text: str) -> str:
    """Text with its surrogates spelled as JSON escapes, so a problem can quote it."""
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _pointer(parts: tuple) -> str:
    """A JSON pointer (RFC 6901) in the `#/a/b` form validation problems use."""
    escaped = (printable(str(part)).replace("~", "~0").replace("/", "~1") for part in parts)
    return "#" + "".join("/" + part for part in escaped)


def _not_finite_message(literal: str) -> str:
    if literal in ("NaN", "Infinity", "-Infinity"):
        return f"{literal} is not valid JSON (JavaScript's NaN/Infinity are not numbers in JSON)."
    shown = literal if len(literal) <= 24 else literal[:20] + "…"
    return (
        f"The number {shown} is beyond what a 64-bit float holds (about ±1.8e308), so it "
        "cannot be stored. Send a finite number, or the value as text."
    )


class FiniteJSONDecoder(json.JSONDecoder):
    """json's decoder as Flowsite reads JSON outside the API's parser (the admin's JSON
    fields): a number that is not finite (NaN, Infinity, 1e400) is a ValueError saying so,
    as the parser's problem says it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "parse_constant": _refused, "parse_float": _finite})


def _refused(literal: str):
    raise ValueError(_not_finite_message(literal))


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(_not_finite_message(literal))
    return value


SURROGATE_MESSAGE = (
    "Not valid Unicode: the text holds a lone surrogate (\\ud800-\\udfff), which cannot "
    "be stored. Send each surrogate with its pair, or the character itself."
)


def unusable_values(document: Any) -> tuple[list[dict], list[dict]]:
    """Errors ({pointer, detail}) for the numbers that are not finite and for the texts
    (keys included) with a lone surrogate. Iterative: a body nests as deep as json allows."""
    numbers: list[dict] = []
    texts: list[dict] = []
    stack: list[tuple[Any, tuple]] = [(document, ())]
    while stack and len(numbers) + len(texts) < MAX_LISTED:
        value, path = stack.pop()
        if isinstance(value, _NotFinite):
            numbers.append({"pointer": _pointer(path), "detail": _not_finite_message(value)})
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                texts.append({"pointer": _pointer(path), "detail": SURROGATE_MESSAGE})
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if _SURROGATE.search(key):  # the key itself: nothing under it is looked at
                    texts.append({"pointer": _pointer((*path, key)), "detail": SURROGATE_MESSAGE})
                else:
                    stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in reversed(list(enumerate(value))))
    return numbers, texts


def refuse_unusable(document: Any) -> None:
    """400 naming where a parsed body holds a number that is not finite (malformed-json) or
    text that is not valid Unicode (invalid-unicode)."""
    numbers, texts = unusable_values(document)
    errors = numbers + texts
    if not errors:
        return
    where = ", ".join(error["pointer"] for error in errors)
    if numbers:
        raise MalformedJSON(
            f"The request body holds numbers that are not finite at {where}: JSON numbers "
            "must be finite here.",
            errors=errors,
        )
    raise InvalidUnicode(
        f"The request body holds text that is not valid Unicode (a lone surrogate) at {where}.",
        errors=errors,
    )


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(
                f"The request body is not UTF-8: invalid byte at position {exc.start}.",
                position=exc.start,
            ) from None
        not_finite = []

        def constant(literal: str) -> _NotFinite:
            not_finite.append(literal)
            return _NotFinite(literal)

        def number(literal: str) -> float | _NotFinite:
            value = float(literal)
            if math.isfinite(value):
                return value
            not_finite.append(literal)
            return _NotFinite(literal)

        try:
            document = json.loads(text, parse_constant=constant, parse_float=number)
        except (ValueError, RecursionError) as exc:
            if not isinstance(exc, json.JSONDecodeError):
                raise MalformedJSON(f"The request body is not usable JSON: {exc}.") from None
            raise MalformedJSON(
                f"Malformed JSON at line {exc.lineno}, column {exc.colno} "
                f"(character {exc.pos}): {exc.msg}.",
                line=exc.lineno,
                column=exc.colno,
                position=exc.pos,
            ) from None
        # Walk the document only when it may hold what is refused: most bodies do not.
        if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(document):
            raise MalformedJSON(
                f"The request body nests objects and arrays more than {MAX_DEPTH} levels "
                "deep; flatten it."
            )
        if not_finite or _SURROGATE_ESCAPE.search(text):
            refuse_unusable(document)
        return document


def too_deep(document: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays nest in `document` more than `limit` levels deep (walked
    with a stack of its own, so any depth can be measured)."""
    stack = [(document, 1)] if isinstance(document, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        items = value.values() if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return False


class TextParser(parsers.BaseParser):
    """Text bodies (text/plain, text/csv, XML) reach flows as a string."""

    media_type = "text/*"

    def parse(self, stream, media_type=None, parser_context=None):
        charset = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = stream.read().decode(charset)
        except (UnicodeDecodeError, LookupError):
            raise MalformedJSON(f"The request body is not valid {charset} text.") from None
        # A charset such as unicode_escape or raw_unicode_escape can make lone surrogates.
        if match := _SURROGATE.search(text):
            raise InvalidUnicode(
                f"The request body ({charset}) decodes to text that is not valid Unicode: a "
                f"lone surrogate at character {match.start()}. Send UTF-8 text.",
                position=match.start(),
            )
        return text


class XMLTextParser(TextParser):
    media_type = "application/xml"
