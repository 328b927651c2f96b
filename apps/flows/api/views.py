"""The management API: Celigo-shaped CRUD of flows and their resources, and flow actions."""

from collections.abc import Callable
from typing import Any

from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings

from apps.accounts.permissions import READ_DEFINITIONS
from apps.accounts.signed_urls import SignedURLAuthentication, signed_url
from apps.core.api import (
    DocumentViewSet,
    Flag,
    Id,
    StrictSerializer,
    Text,
    invalid,
    read_body,
    ref,
)
from apps.core.exceptions import ApiProblem
from apps.core.pagination import LinkHeaderCursorPagination
from apps.flows import selectors, services
from apps.flows.api import filters
from apps.flows.api.schema import (
    audit_schema,
    clone_schema,
    dependencies_schema,
    download_schema,
    import_schema,
    instances_schema,
    integration_download_schema,
    integration_import_schema,
    list_instances_schema,
    replace_connection_schema,
    resource_schema,
    update_from_template_schema,
)
from apps.flows.documents import (
    CONNECTION,
    EXPORT,
    FLOW,
    IMPORT,
    INTEGRATION,
    SCRIPT,
    Document,
    DocumentError,
)
from apps.flows.models import Application, Connection, Flow

# The flow actions that save it past its runTestsOnSave guard with ?force=true.
GUARDED_ACTIONS = ("update", "partial_update", "replace_connection", "update_from_template")


def tests_failed(exc: services.FlowTestsFailed) -> ApiProblem:
    names = ", ".join(repr(test["name"]) for test in exc.failing)
    return ApiProblem(
        400,
        f"The flow was not saved: its tests fail ({names}) and its runTestsOnSave guard is on. "
        "Fix the flow or its tests, or save anyway with ?force=true.",
        code="flow-tests-failed",
        tests=exc.failing,
    )


class ResourceViewSet(DocumentViewSet):
    """A resource whose document is one of apps.flows.documents: validated by the admin's
    form, saved and deleted through the flows services."""

    document: Document

    def get_queryset(self):
        return self.document.model.objects.all()

    @property
    def noun(self) -> str:
        return self.document.name

    def render(self, instance) -> dict:
        return self.document.render(instance)

    def merge_patch_of(self, patch: Any) -> Any:
        try:
            return self.document.hidden_nulls(patch)
        except DocumentError as exc:
            raise invalid(exc.errors) from None

    def filter_queryset(self, queryset):
        # A download's parameters (signedURL, signature) are its own, not list filters.
        if self.action in ("download", "template"):
            return queryset
        # A flow's save takes ?force=true (past its runTestsOnSave guard), not a filter.
        forced = set(self.request.query_params) == {"force"} and self.noun == "flow"
        if forced and self.action in GUARDED_ACTIONS:
            return queryset
        return super().filter_queryset(queryset)

    def save(self, document: Any, instance=None):
        try:
            form = self.document.form_for(document, instance)
        except DocumentError as exc:
            raise invalid(exc.errors) from None
        try:
            return services.save_resource(form=form, user=self.request.user, force=self.forced)
        except services.FlowTestsFailed as exc:
            raise tests_failed(exc) from None

    @property
    def forced(self) -> bool:
        """?force=true: past a flow's runTestsOnSave guard."""
        return self.request.query_params.get("force") == "true"

    def remove(self, instance) -> None:
        try:
            services.delete_resource(instance=instance, user=self.request.user)
        except services.InUse as exc:
            raise ApiProblem(
                409,
                str(exc),
                code="in-use",
                flows=[ref(flow) for flow in exc.flows],
            ) from None


# A download's signed URL (…/download?signedURL=true) is served without an Authorization
# header: the signature stands for the key that asked. Last, so that a call with neither a
# key nor a signature still answers 401 with WWW-Authenticate.
SIGNED_DOWNLOADS = [*api_settings.DEFAULT_AUTHENTICATION_CLASSES, SignedURLAuthentication]


def _wants_signed_url(request) -> bool:
    value = request.query_params.get("signedURL")
    if value is None or value.lower() in ("false", "0"):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise invalid(
        {"signedURL": ["Use signedURL=true for a signed URL, or leave it out for the bundle."]}
    )


def downloaded(request, name: str, bundle: Callable[[], dict]) -> Response:
    """Celigo's download: the bundle as a JSON attachment, or with ?signedURL=true
    `{"signedURL": …}`, a URL that serves this download for FLOWSITE_SIGNED_URL_TTL_SECONDS
    to whoever holds it, as long as the key that asked may still download it."""
    if _wants_signed_url(request):
        return Response({"signedURL": signed_url(request)})
    filename = "".join(c if c.isalnum() else "-" for c in name).strip("-") or "bundle"
    return Response(
        bundle(), headers={"Content-Disposition": f'attachment; filename="{filename}.json"'}
    )


class IntegrationImportRequest(StrictSerializer):
    bundle = serializers.JSONField()
    connectionMap = serializers.DictField(child=Text(), required=False, default=dict)
    name = Text(required=False, max_length=100)


def _import_report(imported: services.IntegrationImported) -> dict:
    return {
        "integration": INTEGRATION.render(imported.application),
        "ids": {f"{kind}s": dict(ids) for kind, ids in imported.ids.items()}
        | {"connections": {p.old_id: str(p.connection.pk) for p in imported.connections}},
        "connections": [
            {
                "_id": str(placed.connection.pk),
                "name": placed.connection.name,
                "_sourceId": placed.old_id,
                "status": placed.how,
                "missingSecrets": list(placed.missing),
            }
            for placed in imported.connections
        ],
    }


@resource_schema(INTEGRATION, "integrations")
class IntegrationViewSet(ResourceViewSet):
    """Integrations (PhixFlow applications): the namespaces of flows; each one downloads as
    one bundle and imports again (Celigo's integration download)."""

    document = INTEGRATION
    filterset_class = filters.IntegrationFilter
    authentication_classes = SIGNED_DOWNLOADS

    def get_permissions(self):
        if self.action == "download":
            return [READ_DEFINITIONS()]
        return super().get_permissions()

    @integration_download_schema
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        application = self.get_object()
        return downloaded(
            request, application.name, lambda: services.integration_bundle_of(application)
        )

    @integration_import_schema
    @action(detail=False, methods=["post"], url_path="import")
    def install(self, request):
        body = read_body(IntegrationImportRequest, request)
        try:
            imported = services.import_integration(
                bundle=body["bundle"],
                connection_map=body["connectionMap"],
                name=body.get("name"),
                user=request.user,
            )
        except services.BundleError as exc:
            raise invalid(exc.errors) from None
        location = reverse(
            "integration-detail", kwargs={"pk": imported.application.pk}, request=request
        )
        return Response(
            _import_report(imported), status=status.HTTP_201_CREATED, headers={"Location": location}
        )


@resource_schema(CONNECTION, "connections")
class ConnectionViewSet(ResourceViewSet):
    """Connections: secrets (password, token, apiKey, clientSecret) are write-only."""

    document = CONNECTION
    filterset_class = filters.ConnectionFilter


@resource_schema(EXPORT, "exports")
class ExportViewSet(ResourceViewSet):
    document = EXPORT
    filterset_class = filters.ExportFilter


@resource_schema(IMPORT, "imports")
class ImportViewSet(ResourceViewSet):
    document = IMPORT
    filterset_class = filters.ImportFilter


@resource_schema(SCRIPT, "scripts")
class ScriptViewSet(ResourceViewSet):
    document = SCRIPT
    filterset_class = filters.ScriptFilter


# --- Flows and their actions --------------------------------------------------------------


class CloneRequest(StrictSerializer):
    connectionMap = serializers.DictField(child=Id(), required=False, default=dict)
    name = Text(required=False, max_length=100)
    _integrationId = Id(required=False)
    _flowGroupingId = Text(required=False, max_length=100)
    sandbox = Flag(required=False, default=False)

    def validate_sandbox(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError(
                "Flowsite has no sandbox environment: every flow is in the one environment "
                "there is. Leave sandbox out or send false; to try a copy safely, map its "
                "connections to test ones in connectionMap (a clone starts disabled)."
            )
        return value


class ImportRequest(StrictSerializer):
    bundle = serializers.JSONField()
    connectionMap = serializers.DictField(child=Id(), required=False, default=dict)
    _integrationId = Id()
    name = Text(required=False, max_length=100)


class InstanceRequest(StrictSerializer):
    name = Text(max_length=100)
    variables = serializers.DictField(required=False, default=dict)
    connectionMap = serializers.DictField(child=Id(), required=False, default=dict)


class NoFields(StrictSerializer):
    """An action that takes no body: none, or an empty JSON object."""


class ReplaceConnectionRequest(StrictSerializer):
    _connectionId = Id()
    _newConnectionId = Id()


def _integration(pk: str | None, default: Application) -> Application:
    if pk is None:
        return default
    found = Application.objects.filter(pk=pk).first()
    if found is None:
        raise invalid({"_integrationId": [f"Integration {pk} does not exist."]})
    return found


class AuditPagination(LinkHeaderCursorPagination):
    ordering = "-history_id"


@resource_schema(FLOW, "flows")
class FlowViewSet(ResourceViewSet):
    """Flows (Celigo's Flow API): CRUD and actions."""

    document = FLOW
    filterset_class = filters.FlowFilter
    authentication_classes = SIGNED_DOWNLOADS

    def get_permissions(self):
        if self.action in ("dependencies", "audit", "download", "template"):
            return [READ_DEFINITIONS()]
        return super().get_permissions()

    def _bundle_installed(self, install) -> Flow:
        try:
            return install()
        except services.BundleError as exc:
            raise invalid(exc.errors) from None

    @clone_schema
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        flow = self.get_object()
        body = read_body(CloneRequest, request)
        clone = self._bundle_installed(
            lambda: services.clone_with_resources(
                flow=flow,
                connection_map=body["connectionMap"],
                name=body.get("name"),
                application=_integration(body.get("_integrationId"), flow.application),
                user=request.user,
                flow_grouping_id=body.get("_flowGroupingId"),
            )
        )
        return self.respond(clone, status.HTTP_201_CREATED)

    @import_schema
    @action(detail=False, methods=["post"], url_path="import")
    def install(self, request):
        body = read_body(ImportRequest, request)
        flow = self._bundle_installed(
            lambda: services.install_bundle(
                bundle=body["bundle"],
                connection_map=body["connectionMap"],
                application=_integration(body["_integrationId"], None),
                user=request.user,
                name=body.get("name"),
            )
        )
        return self.respond(flow, status.HTTP_201_CREATED)

    @download_schema
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        flow = self.get_object()
        return downloaded(request, flow.name, lambda: services.bundle_of(flow))

    @download_schema
    @action(detail=True, methods=["get", "post"])
    def template(self, request, pk=None):
        """As download; POST as Celigo's documentation prints it (it was a 405)."""
        return self.download(request, pk)

    @replace_connection_schema
    @action(detail=True, methods=["put"], url_path="replaceConnection")
    def replace_connection(self, request, pk=None):
        flow = self.get_object()
        body = read_body(ReplaceConnectionRequest, request)
        found = Connection.objects.in_bulk([body["_connectionId"], body["_newConnectionId"]])
        errors = {
            name: [f"Connection {body[name]} does not exist."]
            for name in ("_connectionId", "_newConnectionId")
            if int(body[name]) not in found
        }
        if errors:
            raise invalid(errors)
        try:
            changed = services.replace_connection(
                flow=flow,
                old=found[int(body["_connectionId"])],
                new=found[int(body["_newConnectionId"])],
                user=request.user,
                force=self.forced,
            )
        except ValueError as exc:
            raise invalid({"_newConnectionId": [str(exc)]}) from None
        except services.FlowTestsFailed as exc:
            raise tests_failed(exc) from None
        if not changed["exports"] and not changed["imports"]:
            raise invalid(
                {"_connectionId": [f"Flow {flow.pk} uses no export or import of this connection."]}
            )
        return Response(
            {
                "_flowId": str(flow.pk),
                "_connectionId": body["_connectionId"],
                "_newConnectionId": body["_newConnectionId"],
                "exports": [str(pk) for pk in changed["exports"]],
                "imports": [str(pk) for pk in changed["imports"]],
            }
        )

    @list_instances_schema
    @instances_schema
    @action(detail=True, methods=["get", "post"])
    def instances(self, request, pk=None):
        """A template's instances (GET), or a new one (POST)."""
        template = self.get_object()
        if request.method == "GET":
            return Response([self.render(flow) for flow in selectors.instances_of(template)])
        body = read_body(InstanceRequest, request)
        try:
            instance = services.create_instance(
                template=template,
                name=body["name"],
                variables=body["variables"],
                connection_map=body["connectionMap"],
                user=request.user,
            )
        except DocumentError as exc:
            raise invalid(exc.errors) from None
        except services.NotTemplated as exc:
            raise ApiProblem(409, str(exc), code=exc.code) from None
        return self.respond(instance, status.HTTP_201_CREATED)

    @update_from_template_schema
    @action(detail=True, methods=["post"], url_path="updateFromTemplate")
    def update_from_template(self, request, pk=None):
        read_body(NoFields, request)  # it takes no body: a wrong one is a 400, not ignored
        try:
            instance = services.update_from_template(
                instance=self.get_object(), user=request.user, force=self.forced
            )
        except DocumentError as exc:
            raise invalid(exc.errors) from None
        except services.NotTemplated as exc:
            raise ApiProblem(409, str(exc), code=exc.code) from None
        except services.FlowTestsFailed as exc:
            raise tests_failed(exc) from None
        return self.respond(instance)

    @audit_schema
    @action(detail=True, methods=["get"])
    def audit(self, request, pk=None):
        flow = self.get_object()
        paginator = AuditPagination()
        records = flow.history.select_related("history_user")
        page = paginator.paginate_queryset(records, request, view=self)
        before = None
        if page:  # the version before the page's oldest: what its change started from
            before = (
                Flow.history.filter(id=flow.pk, history_id__lt=page[-1].history_id)
                .order_by("-history_id")
                .first()
            )
        return paginator.get_paginated_response(
            [
                _audit_entry(record, previous)
                for record, previous in zip(page, [*page[1:], before], strict=True)
            ]
        )

    @dependencies_schema
    @action(detail=True, methods=["get"])
    def dependencies(self, request, pk=None):
        flow = self.get_object()
        found = selectors.dependencies(flow)
        return Response(
            {
                "uses": {
                    "integrations": [ref(flow.application)],
                    "connections": [ref(c) for c in found.connections],
                    "exports": [ref(e) for e in found.exports],
                    "imports": [ref(i) for i in found.imports],
                    "scripts": [ref(s) for s in found.scripts],
                    "flows": [ref(f) for f in found.flows],
                },
                "usedBy": {"flows": [ref(f) for f in found.used_by]},
            }
        )

    def get_queryset(self):
        return Flow.objects.select_related("application")


ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
DOCUMENT_PATHS = {field.attr: field.path for field in FLOW.fields}


def _audit_entry(record, previous) -> dict:
    changes = []
    if record.history_type == "~" and previous is not None:
        delta = record.diff_against(previous)
        changes = [
            {"field": DOCUMENT_PATHS[c.field], "oldValue": c.old, "newValue": c.new}
            for c in delta.changes
            if c.field in DOCUMENT_PATHS
        ] + [  # the kept Celigo fields, one change per field
            {"field": key, "oldValue": old.get(key), "newValue": new.get(key)}
            for c in delta.changes
            if c.field == FLOW.kept_attr
            for old, new in [(c.old or {}, c.new or {})]
            for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)
        ]
    reason = record.history_change_reason or None
    if replaced := services.CONNECTION_REPLACED.match(reason or ""):
        old, new = replaced.groups()
        changes.append({"field": "_connectionId", "oldValue": old, "newValue": new})
    user = record.history_user
    return {
        "_id": str(record.history_id),
        "time": record.history_date.isoformat().replace("+00:00", "Z"),
        "action": ACTIONS.get(record.history_type, record.history_type),
        "user": user.get_username() if user else None,
        "changes": changes,
        "reason": reason,
    }
