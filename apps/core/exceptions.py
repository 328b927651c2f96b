"""API exceptions that carry extension members for their problem document.

Kept apart from problems.py: authentication and permission classes import these, and
DRF imports those while rest_framework.views is still loading.
"""

from typing import Any

from rest_framework import exceptions


class ProblemException(exceptions.APIException):
    """An APIException that adds extension members to its problem document."""

    def __init__(self, detail: str | None = None, **extensions: Any):
        super().__init__(detail)
        self.extensions = extensions


class ApiProblem(ProblemException):
    """Any problem answer: `ApiProblem(409, "…", code="flow-disabled", headers=…)`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ):
        super().__init__(detail, **extensions)
        self.status_code = status
        self.default_code = code
        self.headers = headers or {}
