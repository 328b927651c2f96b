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

    def get_page_size(self, request):
        """`limit` from 1 to max_page_size; anything else is a 400 saying so (DRF quietly
        used the default for `limit=abc` or `limit=0`, and the maximum for more)."""
        text = request.query_params.get(self.page_size_query_param)
        if text is None or text == "":
            return self.page_size
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= self.max_page_size):
            raise ApiProblem(
                400,
                f"limit must be a whole number from 1 to {self.max_page_size}, not {text[:40]!r}.",
                code="invalid-limit",
            )
        return int(text)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Rows per page, 1 to {self.max_page_size} ({self.page_size})."
                )
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size}
        return parameters

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
