"""The management API of the integration surface (DESIGN §3 and §5): `/api/v1/operations`
and `/api/v1/views` (Celigo-shaped CRUD, validated by the models' clean like the admin)
and `GET/PATCH /api/v1/surface` (the surface configuration).

Roles are named by their names (`"roles": ["Regular User"]`), as Execute() and Query()
name them in their 403 answers; integration accounts by their usernames.
"""

import hashlib
import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role, User
from apps.accounts.permissions import MANAGE_DEFINITIONS, READ_DEFINITIONS
from apps.core.api import (
    DocumentJSONParser,
    DocumentViewSet,
    JSONPatchParser,
    MergePatchParser,
    check_if_match,
    invalid,
    is_json_patch,
    patched,
)
from apps.core.filters import IdFilter
from apps.core.openapi import component, crud_schema, patch_request, problem_responses
from apps.flows.api.filters import OwnedFilter
from apps.flows.api.schema import STAMPS
from apps.flows.documents import Document, DocumentError, Field
from apps.surface import forms as surface_forms
from apps.surface import services
from apps.surface.models import Operation, SurfaceConfiguration, View

ROLES_HELP = "Role names: only their members may call it. Empty: any integration account."


class RoleNamesField(forms.Field):
    """Roles by name: a JSON list of the names of existing roles."""

    def clean(self, value: Any) -> list[Role]:
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            raise forms.ValidationError("Expected a list of role names.")
        names = list(dict.fromkeys(value))
        # No name holds NUL (and PostgreSQL refuses it in a query).
        known = [name for name in names if "\x00" not in name]
        found = {role.name: role for role in Role.objects.filter(name__in=known)}
        if missing := [name for name in names if name not in found]:
            raise forms.ValidationError(
                f"No role is named {', '.join(repr(name) for name in missing)}; roles are "
                "defined in the admin (Accounts, Roles)."
            )
        return [found[name] for name in names]


class OperationDocumentForm(surface_forms.OperationForm):
    roles = RoleNamesField(required=False)


class ViewDocumentForm(surface_forms.ViewForm):
    roles = RoleNamesField(required=False)


class SurfaceDocument(Document):
    """Operations and views: roles are shown by name."""

    def _value_of(self, instance, field: Field) -> Any:
        if field.attr == "roles":
            return [role.name for role in instance.roles.all()]
        return super()._value_of(instance, field)


# What a view's JSON parts hold, as far as their shape goes (what the names mean is the
# model's clean): the names are text. None: the item itself is the name.
VIEW_NAMES = {
    "fields": None,
    "filters": ("field", "op", "parameter"),
    "ordering": ("field", "direction"),
}


class ViewDocument(SurfaceDocument):
    """Views: the names in their JSON parts must be text (a list given as a field name
    is a 400 here, not a crash where the record type's fields are looked up)."""

    def read(self, document: Any, instance) -> dict[str, Any]:
        values = super().read(document, instance)
        errors: dict[str, list[str]] = {}
        for part, keys in VIEW_NAMES.items():
            items = values.get(part)
            for index, item in enumerate(items if isinstance(items, list) else ()):
                if keys is None:
                    if not isinstance(item, str):
                        errors[f"{part}.{index}"] = ["Expected a field name (text)."]
                    continue
                for key in keys if isinstance(item, dict) else ():
                    if key in item and not isinstance(item[key], str):
                        errors[f"{part}.{index}.{key}"] = ["Expected text."]
        if errors:
            raise DocumentError(errors)
        return values

    def schema(self) -> dict:
        schema = super().schema()
        for part, keys in VIEW_NAMES.items():
            schema["properties"][part]["items"] = (
                {"type": "string"}
                if keys is None
                else {"type": "object", "properties": {key: {"type": "string"} for key in keys}}
            )
        return schema


def _choices(model_choices) -> tuple[str, ...]:
    return tuple(model_choices.values)


OWNER = Field(
    "_integrationId",
    "application",
    "id",
    description="The integration (application): the first segment of the surface URL.",
)
RECORD_TYPE = Field(
    "_recordTypeId", "record_type", "id", description="A record type of the same integration."
)
ROLES = Field("roles", "roles", "array", description=ROLES_HELP, items="string")

OPERATION = SurfaceDocument(
    "operation",
    Operation,
    OperationDocumentForm,
    (
        Field("name", "name", "string", description="Unique within the integration."),
        Field("description", "description", "string"),
        OWNER,
        RECORD_TYPE,
        Field("action", "action", "string", enum=_choices(Operation.Action)),
        Field(
            "restExecute",
            "rest_execute",
            "boolean",
            description="Callable through REST Execute().",
        ),
        Field(
            "_flowId",
            "flow",
            "id",
            nullable=True,
            description="A flow of the same integration, run with the record in the same "
            "transaction.",
        ),
        ROLES,
    ),
)
VIEW = ViewDocument(
    "view",
    View,
    ViewDocumentForm,
    (
        Field("name", "name", "string", description="Unique within the integration."),
        Field("description", "description", "string"),
        OWNER,
        RECORD_TYPE,
        Field("restQuery", "rest_query", "boolean", description="Readable through Query()."),
        Field("fields", "fields", "array", description="Field names; empty: all of them."),
        Field(
            "filters",
            "filters",
            "array",
            description='[{"field", "op", "value"} or {"field", "op", "parameter"}]; ops: eq, '
            "ne, lt, lte, gt, gte, contains, in, isnull.",
        ),
        Field(
            "parameters",
            "parameters",
            "array",
            items="object",
            description='URL parameters: [{"name", "type", "required", "default"}].',
        ),
        Field(
            "ordering",
            "ordering",
            "array",
            description='[{"field", "direction": "asc"|"desc"}]; empty: by RecordID.',
        ),
        ROLES,
    ),
)

OPERATION_EXAMPLE = {
    "_id": "31",
    "name": "Register Lead",
    "description": "",
    "_integrationId": "3",
    "_recordTypeId": "21",
    "action": "create",
    "restExecute": True,
    "_flowId": None,
    "roles": ["Regular User"],
    **STAMPS,
}
VIEW_EXAMPLE = {
    "_id": "32",
    "name": "All Leads",
    "description": "",
    "_integrationId": "3",
    "_recordTypeId": "21",
    "restQuery": True,
    "fields": ["Company", "Rating"],
    "filters": [{"field": "Rating", "op": "eq", "parameter": "rating"}],
    "parameters": [{"name": "rating", "type": "text", "required": False}],
    "ordering": [{"field": "Company", "direction": "asc"}],
    "roles": [],
    **STAMPS,
}


class SurfaceResourceViewSet(DocumentViewSet):
    document: SurfaceDocument

    def get_queryset(self):
        return self.document.model.objects.prefetch_related("roles")

    def render(self, instance) -> dict:
        return self.document.render(instance)

    def save(self, document: Any, instance=None):
        try:
            form = self.document.form_for(document, instance)
        except DocumentError as exc:
            raise invalid(exc.errors) from None
        saved = form.save()  # the instance and its roles, in the caller's transaction
        return self.get_queryset().get(pk=saved.pk)


class OperationFilter(OwnedFilter):
    _recordTypeId = IdFilter(field_name="record_type_id", help_text="Only this record type's.")

    class Meta:
        model = Operation
        fields = ()


class ViewFilter(OperationFilter):
    class Meta:
        model = View
        fields = ()


@crud_schema(
    name="operation",
    tag="operations",
    schema=OPERATION.schema(),
    example=OPERATION_EXAMPLE,
    merge_example={"restExecute": False},
)
class OperationViewSet(SurfaceResourceViewSet):
    """Operations: create, update or delete a record (and run a flow) through Execute()."""

    document = OPERATION
    filterset_class = OperationFilter


@crud_schema(
    name="view",
    tag="views",
    schema=VIEW.schema(),
    example=VIEW_EXAMPLE,
    merge_example={"ordering": [{"field": "Company", "direction": "desc"}]},
)
class ViewViewSet(SurfaceResourceViewSet):
    """Views: filtered, ordered records of a record type, read through Query()."""

    document = VIEW
    filterset_class = ViewFilter


# --- The surface configuration --------------------------------------------------------

SURFACE_KEYS = ("execute", "query", "integrationAccounts")
SURFACE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "execute": {"type": "boolean", "description": "Execute() answers (off by default)."},
        "query": {"type": "boolean", "description": "Query() answers (off by default)."},
        "integrationAccounts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Usernames of the integration accounts that may call the surface.",
        },
    },
}
SURFACE_EXAMPLE = {"execute": True, "query": True, "integrationAccounts": ["restuser"]}


def surface_document(configuration: SurfaceConfiguration) -> dict:
    return {
        "execute": configuration.execute,
        "query": configuration.query,
        "integrationAccounts": sorted(
            configuration.integration_accounts.values_list("username", flat=True)
        ),
    }


def surface_etag(document: dict) -> str:
    text = json.dumps(document, sort_keys=True)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'


def _surface_values(document: Any) -> dict:
    """The whole configuration a patched document asks for (left out: the defaults),
    every problem reported at once."""
    if not isinstance(document, dict):
        raise invalid({"non_field_errors": ["The surface document must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    for key in document:
        if key not in SURFACE_KEYS:
            errors[str(key)] = [f"Unknown field. The fields are: {', '.join(SURFACE_KEYS)}."]
    for key in ("execute", "query"):
        if not isinstance(document.get(key, False), bool):
            errors[key] = ["Expected true or false."]
    names = document.get("integrationAccounts", [])
    accounts: list[User] = []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        errors["integrationAccounts"] = ["Expected a list of usernames."]
    else:
        names = list(dict.fromkeys(names))
        # No username holds NUL (and PostgreSQL refuses it in a query).
        known = [name for name in names if "\x00" not in name]
        found = {user.username: user for user in User.objects.filter(username__in=known)}
        messages = []
        if unknown := [name for name in names if name not in found]:
            messages.append(f"No account is named {', '.join(map(repr, unknown))}.")
        accounts = [found[name] for name in names if name in found]
        if regular := services.not_integration_accounts(accounts):
            messages.append(
                "Only integration accounts can call the surface; these are regular accounts: "
                f"{', '.join(regular)}."
            )
        if messages:
            errors["integrationAccounts"] = messages
    if errors:
        raise invalid(errors)
    return {
        "execute": document.get("execute", False),
        "query": document.get("query", False),
        "integration_accounts": accounts,
    }


SURFACE_RESPONSE = OpenApiResponse(
    component("SurfaceConfiguration", SURFACE_SCHEMA),
    description="The surface configuration; its version in the ETag.",
    examples=[OpenApiExample("Surface", value=SURFACE_EXAMPLE, response_only=True)],
)


class SurfaceConfigurationView(APIView):
    """GET and PATCH /api/v1/surface: Execute() and Query() switched on or off, and the
    integration accounts that may call them."""

    parser_classes = [DocumentJSONParser, JSONPatchParser, MergePatchParser]

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [READ_DEFINITIONS()]
        return [MANAGE_DEFINITIONS()]

    @extend_schema(
        operation_id="surface_configuration_retrieve",
        tags=["surface"],
        summary="Get the surface configuration",
        responses={(200, "application/json"): SURFACE_RESPONSE, **problem_responses(401, 403, 429)},
    )
    def get(self, request):
        document = surface_document(SurfaceConfiguration.load())
        return Response(document, headers={"ETag": surface_etag(document)})

    @extend_schema(
        operation_id="surface_configuration_partial_update",
        tags=["surface"],
        summary="Change the surface configuration: JSON merge patch (200) or JSON Patch (204)",
        description="Only integration accounts can be chosen (400 names the others). "
        "A member set to null takes its default (off, no accounts).",
        parameters=[
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                description="Optional: the ETag you read. A changed configuration answers 412.",
            )
        ],
        request=patch_request(component("SurfaceConfiguration", SURFACE_SCHEMA)),
        responses={
            (200, "application/json"): SURFACE_RESPONSE,
            204: OpenApiResponse(description="JSON Patch applied; see the ETag."),
            **problem_responses(400, 401, 403, 412, 413, 415, 429),
        },
        examples=[
            OpenApiExample(
                "Switch Query() on",
                value={"query": True},
                request_only=True,
                media_type="application/json",
            ),
            OpenApiExample(
                "Allow one more account",
                value=[{"op": "add", "path": "/integrationAccounts/-", "value": "erp-sync"}],
                request_only=True,
                media_type="application/json-patch+json",
            ),
        ],
    )
    def patch(self, request):
        with transaction.atomic():
            SurfaceConfiguration.load()
            configuration = SurfaceConfiguration.objects.select_for_update().get(
                pk=SurfaceConfiguration.SINGLETON_PK
            )
            current = surface_document(configuration)
            check_if_match(
                request, None, current=surface_etag(current), what="surface configuration"
            )
            values = _surface_values(patched(current, request))
            try:
                configuration = services.configure_surface(**values)
            except DjangoValidationError as exc:  # an account changed type meanwhile
                raise invalid({"integrationAccounts": exc.messages}) from None
        document = surface_document(configuration)
        headers = {"ETag": surface_etag(document)}
        if is_json_patch(request):
            return Response(status=status.HTTP_204_NO_CONTENT, headers=headers)
        return Response(document, headers=headers)
