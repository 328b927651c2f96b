"""Conventions shared by the management API's resources: strict bodies, dotted error
paths, JSON merge patch and JSON Patch, ETag / If-Match."""

import hashlib
from typing import Any

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from apps.core import json_patch
from apps.core.exceptions import ApiProblem
from apps.core.pagination import ByIdCursorPagination
from apps.core.parsers import JSONParser

JSON_PATCH = "application/json-patch+json"

# Who may read definitions ("read") and who may change them ("manage") through a
# DocumentViewSet. The accounts app owns the privileges and names both classes from
# AccountsConfig.ready(), so the shared kernel does not import it.
DEFINITION_PERMISSIONS: dict[str, type[BasePermission]] = {}


def guard_definitions(*, read: type[BasePermission], manage: type[BasePermission]) -> None:
    """Set the permission classes that DocumentViewSet checks for reads and for writes."""
    DEFINITION_PERMISSIONS.update(read=read, manage=manage)


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


def check_if_match(request, instance, *, current: str | None = None, what: str = "") -> None:
    """Optional optimistic locking: If-Match with an old ETag is a lost update (412).
    `current`/`what` for a resource without a modified_at (an ETag of its document)."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return
    given = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    current = current or etag_of(instance)
    if current not in given:
        raise ApiProblem(
            412,
            f"The {what or type(instance).__name__.lower()} changed since you read it (its ETag "
            f"is now {current}): GET it again, reapply your change and send the new ETag in "
            "If-Match.",
            code="precondition-failed",
            etag=current,
        )


class Text(serializers.CharField):
    """A request body's string: a JSON string only. DRF's CharField turns a number into
    one, so `"name": 0` would pass where the schema says string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Flag(serializers.BooleanField):
    """A request body's boolean: JSON true or false only (DRF's BooleanField also takes
    1, "yes", "off" and the like)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class Id(serializers.RegexField):
    """A request body's id of a resource: digits, as a JSON string (as every answer gives
    ids) or a whole number, as the documents' `_…Id` fields also take them."""

    def __init__(self, **kwargs):
        super().__init__(r"^[0-9]{1,18}$", **kwargs)


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


def ref(instance) -> dict:
    """How a document points at another resource: its id and name."""
    return {"_id": str(instance.pk), "name": instance.name}


def foreign_id(document: Any, instance, noun: str) -> list[str]:
    """A pasted document's `_id` (Celigo's GET answers carry it) is ignored when it creates
    a resource; when it replaces one it must be that one's: else the messages naming both."""
    if instance is None or not isinstance(document, dict) or "_id" not in document:
        return []
    if str(document["_id"]) == str(instance.pk):
        return []
    return [
        f"_id {json_patch.shown(document['_id'])} is not the id of this {noun} "
        f'("{instance.pk}", the id in the URL): a PUT replaces the {noun} at its URL. '
        "Send its own _id or leave _id out."
    ]


def read_body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def json_patched(document: dict, operations: Any, *, noun: str = "document") -> Any:
    """RFC 6902: the document with the operations applied; 400 naming the operation that
    cannot be, in the words of JSON Patch and of the document (`noun`: "flow", …)."""
    try:
        return json_patch.apply(document, operations, noun=noun)
    except json_patch.PatchRefused as refused:
        extensions = {}
        if refused.index is not None:
            extensions["errors"] = [{"pointer": f"#/{refused.index}", "detail": refused.message}]
            where = f"operation {refused.index}: "
        else:
            where = ""
        raise ApiProblem(
            400,
            f"The JSON Patch was not applied (nothing changed): {where}{refused.message}.",
            code="invalid-json-patch",
            **extensions,
        ) from None


def is_json_patch(request) -> bool:
    """A JSON Patch: sent as application/json-patch+json, or as an array under
    application/json (how Celigo's users send one)."""
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type == JSON_PATCH:
        return True
    return media_type == "application/json" and json_patch.looks_like_json_patch(request.data)


def patched(current: dict, request, *, noun: str = "document", adjust=None) -> Any:
    """The document after the request's merge patch or JSON Patch (`adjust` turns the merge
    patch into what it means for the resource first)."""
    if is_json_patch(request):
        return json_patched(current, request.data, noun=noun)
    return merge_patch(current, request.data if adjust is None else adjust(request.data))


class DocumentViewSet(viewsets.GenericViewSet):
    """The house pattern of a management resource: GET list 200 / POST 201 (Location,
    ETag) / GET 200 / PUT 200 (full replace) / PATCH 200 (merge) or 204 (JSON Patch) /
    DELETE 204, If-Match → 412. A subclass says how to render a document (`render`), how
    to save a whole one (`save`, PUT semantics; raise DRF's ValidationError) and what
    stops a delete (`remove`: raise ApiProblem 409)."""

    lookup_value_regex = "[0-9]+"
    pagination_class = ByIdCursorPagination
    filter_backends = [DjangoFilterBackend]
    parser_classes = [DocumentJSONParser, JSONPatchParser, MergePatchParser]

    def get_permissions(self):
        # OPTIONS ("metadata") tells what the resource accepts, which readers may know.
        need = "read" if self.action in ("list", "retrieve", "metadata") else "manage"
        return [DEFINITION_PERMISSIONS[need]()]  # unset (no accounts app): refused with a 500

    # --- what a subclass provides -----------------------------------------------------

    def render(self, instance) -> dict:
        raise NotImplementedError

    def render_page(self, page: list) -> list[dict]:
        return [self.render(instance) for instance in page]

    def save(self, document: Any, instance=None):
        """Create (instance None) or replace a resource from a whole document."""
        raise NotImplementedError

    def remove(self, instance) -> None:
        instance.delete()

    def merge_patch_of(self, patch: Any) -> Any:
        """A merge patch as it applies to the rendered document (which may leave out
        write-only values); as given by default."""
        return patch

    @property
    def noun(self) -> str:
        """What the resource is called in messages: "flow", "record type", …"""
        return str(self.get_queryset().model._meta.verbose_name)

    # --- the HTTP methods --------------------------------------------------------------

    def respond(self, instance, status_code: int = 200, **headers) -> Response:
        return Response(
            self.render(instance),
            status=status_code,
            headers={"ETag": etag_of(instance), **headers},
        )

    def locked(self):
        """The resource, its row locked until the transaction ends (If-Match, then write)."""
        instance = self.get_object()
        return self.get_queryset().select_for_update(of=("self",)).get(pk=instance.pk)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.render_page(page))

    def retrieve(self, request, *args, **kwargs):
        return self.respond(self.get_object())

    def create(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.save(request.data)
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{instance.pk}")
        return self.respond(instance, status.HTTP_201_CREATED, Location=location)

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.locked()
            check_if_match(request, instance)
            instance = self.save(request.data, instance)
        return self.respond(instance)

    def partial_update(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.locked()
            check_if_match(request, instance)
            document = patched(
                self.render(instance), request, noun=self.noun, adjust=self.merge_patch_of
            )
            instance = self.save(document, instance)
        if is_json_patch(request):  # as Celigo: 204, the new version in the ETag
            return Response(status=status.HTTP_204_NO_CONTENT, headers={"ETag": etag_of(instance)})
        return self.respond(instance)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.locked()
            check_if_match(request, instance)
            self.remove(instance)
        return Response(status=status.HTTP_204_NO_CONTENT)
