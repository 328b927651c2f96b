"""A JSON parser whose errors say where the JSON broke.

The body size is enforced by ApiProblemMiddleware from Content-Length (bodies without
one are refused there), so the parser reads what Django's LimitedStream allows.
"""

import json

from rest_framework import parsers

from apps.core.exceptions import ProblemException


class MalformedJSON(ProblemException):
    status_code = 400
    default_detail = "The request body is not valid JSON."
    default_code = "malformed_json"


def _no_constants(name: str):
    raise ValueError(
        f"{name} is not valid JSON (JavaScript's NaN/Infinity are not numbers in JSON)"
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
        try:
            return json.loads(text, parse_constant=_no_constants)
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


class TextParser(parsers.BaseParser):
    """Text bodies (text/plain, text/csv, XML) reach flows as a string."""

    media_type = "text/*"

    def parse(self, stream, media_type=None, parser_context=None):
        charset = (parser_context or {}).get("encoding") or "utf-8"
        try:
            return stream.read().decode(charset)
        except (UnicodeDecodeError, LookupError):
            raise MalformedJSON(f"The request body is not valid {charset} text.") from None


class XMLTextParser(TextParser):
    media_type = "application/xml"
