from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors
from apps.accounts.api.serializers import MeSerializer, me_document
from apps.accounts.models import ApiKey
from apps.core.openapi import problem_responses


class MeView(APIView):
    """The caller: who the API thinks you are and what you may do."""

    @extend_schema(
        operation_id="me",
        tags=["identity"],
        summary="Who am I",
        responses={(200, "application/json"): MeSerializer, **problem_responses(401, 403, 429)},
        examples=[
            OpenApiExample(
                "Integration account with a key",
                value={
                    "id": 7,
                    "username": "erp-sync",
                    "accountType": "integration",
                    "isSuperuser": False,
                    "roles": ["Integration callers"],
                    "privileges": ["use_api_key", "run_flows"],
                    "authentication": "apiKey",
                    "apiKey": {"prefix": "fs_Q2x9fT3a", "label": "ERP", "expiresAt": None},
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        user = request.user
        return Response(
            me_document(
                user,
                api_key=request.auth if isinstance(request.auth, ApiKey) else None,
                roles=selectors.role_names(user),
                privileges=selectors.effective_privileges(user),
            )
        )
