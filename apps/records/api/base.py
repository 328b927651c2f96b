"""The house pattern of the management API for resources whose documents are not read
through `apps.flows.documents`: GET list 200 / POST 201 (Location, ETag) / GET 200 / PUT
200 (full replace) / PATCH 200 (merge) or 204 (JSON Patch) / DELETE 204, If-Match → 412.

A subclass says how to render a document (`render`), how to save one (`save`: a whole
document, PUT semantics; raise DRF's ValidationError) and what stops a delete
(`remove`: raise ApiProblem 409)."""

from typing import Any

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import status, viewsets
from rest_framework.response import Response

from apps.accounts.permissions import HasAnyPrivilege, HasPrivilege
from apps.accounts.privileges import Privilege
from apps.core.api import (
    JSON_PATCH,
    DocumentJSONParser,
    JSONPatchParser,
    MergePatchParser,
    check_if_match,
    etag_of,
    merge_patch,
)
from apps.core.pagination import ByIdCursorPagination
from apps.flows.api.views import ResourceViewSet

READ = HasAnyPrivilege.of(Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
MANAGE = HasPrivilege.of(Privilege.MANAGE_FLOWS)


def is_json_patch(request) -> bool:
    return request.content_type.split(";")[0].strip() == JSON_PATCH


def patched(current: dict, request) -> Any:
    """The document after the request's merge patch or JSON Patch."""
    if is_json_patch(request):
        return ResourceViewSet._json_patched(current, request.data)
    return merge_patch(current, request.data)


class DocumentViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[0-9]+"
    pagination_class = ByIdCursorPagination
    filter_backends = [DjangoFilterBackend]
    parser_classes = [DocumentJSONParser, JSONPatchParser, MergePatchParser]

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [READ()]
        return [MANAGE()]

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
            document = patched(self.render(instance), request)
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


def ref(instance) -> dict:
    return {"_id": str(instance.pk), "name": instance.name}
