"""Conventions shared by the management API's resources: strict bodies, dotted error
paths, JSON merge patch and JSON Patch, ETag / If-Match."""

import hashlib
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.core.exceptions import ApiProblem
from apps.core.parsers import JSONParser

JSON_PATCH = "application/json-patch+json"


def nul_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Where a document holds text with NUL characters (keys included)."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                found.append((*path, key.replace("\x00", "\\u0000")))
            else:
                found += nul_paths(item, (*path, str(key)))
        return found
    if isinstance(value, list):
        return [
            found
            for index, item in enumerate(value)
            for found in nul_paths(item, (*path, str(index)))
        ]
    return []


def refuse_nul(document: Any) -> Any:
    """No database stores text with NUL characters (PostgreSQL refuses them): a 400 naming
    where they are, rather than a failed write."""
    paths = nul_paths(document)
    if not paths:
        return document
    errors: dict = {}
    for path in paths:
        node = errors
        *parents, leaf = path or ("non_field_errors",)
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = ["Text cannot contain NUL (\\u0000) characters."]
    raise ValidationError(errors)


class DocumentJSONParser(JSONParser):
    """JSON documents to store: text with NUL characters is refused where it is."""

    def parse(self, stream, media_type=None, parser_context=None):
        return refuse_nul(super().parse(stream, media_type, parser_context))


class JSONPatchParser(DocumentJSONParser):
    media_type = JSON_PATCH


class MergePatchParser(DocumentJSONParser):
    media_type = "application/merge-patch+json"


def invalid(errors: dict[str, list[str]]) -> ValidationError:
    """Dotted document paths as nested errors, so problem pointers read #/http/paging/path."""
    nested: dict = {}
    for path, messages in errors.items():
        node = nested
        *parents, leaf = path.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):  # a message already sits at the parent
                break
        else:
            node[leaf] = messages
    return ValidationError(nested)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def etag_of(instance) -> str:
    version = f"{type(instance).__name__}:{instance.pk}:{instance.modified_at.isoformat()}"
    return '"' + hashlib.sha256(version.encode()).hexdigest()[:20] + '"'


def check_if_match(request, instance) -> None:
    """Optional optimistic locking: If-Match with an old ETag is a lost update (412)."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return
    given = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    current = etag_of(instance)
    if current not in given:
        raise ApiProblem(
            412,
            f"The {type(instance).__name__.lower()} changed since you read it (its ETag is now "
            f"{current}): GET it again, reapply your change and send the new ETag in If-Match.",
            code="precondition-failed",
            etag=current,
        )


class StrictSerializer(serializers.Serializer):
    """An action's request body: a JSON object with only the fields it names."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        if unknown := sorted(set(data) - set(self.fields)):
            known = ", ".join(self.fields)
            raise ValidationError(
                {name: [f"Unknown field. The fields are: {known}."] for name in unknown}
            )
        return super().to_internal_value(data)


def read_body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
