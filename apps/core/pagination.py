"""Celigo-style lists: a JSON array, the next page in an RFC 8288 Link header.

Cursor pagination, so a page boundary stays correct while rows are inserted.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from apps.core.exceptions import ApiProblem


class LinkHeaderCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
    ordering = "-created_at"

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF's answer; a cursor the client mangled is a bad request
            raise ApiProblem(
                400,
                "Invalid cursor: use the next URL of the Link header as it is.",
                code="invalid-cursor",
            ) from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, DjangoValidationError):
            if not request.query_params.get(self.cursor_query_param):
                raise  # not the cursor's fault: a defect, to be seen as one
            # A cursor decoded, but its position is not a value of the ordering field.
            raise ApiProblem(
                400,
                "Invalid cursor: use the next URL of the Link header as it is.",
                code="invalid-cursor",
            ) from None

    def get_paginated_response(self, data):
        headers = {}
        if next_link := self.get_next_link():
            headers["Link"] = f'<{next_link}>; rel="next"'
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema


class ByIdCursorPagination(LinkHeaderCursorPagination):
    """Oldest first by id: resources, a job's errors."""

    ordering = "id"
