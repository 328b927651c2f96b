"""A JSON parser with a size limit and error messages that say where the JSON broke."""

import json

from django.conf import settings
from rest_framework import parsers

from apps.core.exceptions import PayloadTooLarge, ProblemException


class MalformedJSON(ProblemException):
    status_code = 400
    default_detail = "The request body is not valid JSON."
    default_code = "malformed_json"


def read_limited(stream) -> bytes:
    """Read the whole body, refusing more than FLOWSITE_MAX_BODY_BYTES.

    The middleware already refuses a too-large Content-Length; this covers chunked bodies.
    """
    limit = settings.FLOWSITE_MAX_BODY_BYTES
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(
            f"The request body exceeds the limit of {limit} bytes (FLOWSITE_MAX_BODY_BYTES).",
            limit=limit,
        )
    return body


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = read_limited(stream)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(
                f"The request body is not UTF-8: invalid byte at position {exc.start}.",
                position=exc.start,
            ) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedJSON(
                f"Malformed JSON at line {exc.lineno}, column {exc.colno} "
                f"(character {exc.pos}): {exc.msg}.",
                line=exc.lineno,
                column=exc.colno,
                position=exc.pos,
            ) from None
