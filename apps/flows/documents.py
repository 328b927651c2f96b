"""Celigo-shaped documents of flows and their resources (DESIGN §3).

One table per resource says where each model field lives in the document and which JSON
type it takes. The same table turns a model into its document, checks a document's shape
(unknown fields, wrong types) and describes it in OpenAPI. What a value means is checked
by the admin's ModelForm, so the API and the admin accept exactly the same things.
"""

import copy
import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db import models

from apps.core.api import foreign_id
from apps.core.openapi import nullable
from apps.flows import forms as flow_forms
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from apps.flows.outbound.auth import SAFE_HEADERS

READ_ONLY = ("_id", "createdAt", "lastModified")
ROOT = "non_field_errors"  # the document as a whole: the problem's pointer is "#"
JSON_TYPES = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "object": (dict,),
    "array": (list,),
    "id": (str, int),
    "any": None,
}


@dataclass(frozen=True)
class Field:
    path: str  # where it is in the document: "http.paging.method"
    attr: str  # the model (and form) field
    type: str  # a key of JSON_TYPES
    nullable: bool = False
    write_only: bool = False  # secrets
    hidden_members: bool = False  # an object some of whose members are secrets, never shown
    description: str = ""
    enum: tuple[str, ...] = ()
    items: str = "any"  # an array's items: a key of JSON_TYPES

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        types = JSON_TYPES[self.type]
        if types is None:
            return True
        if isinstance(value, bool) and bool not in types:
            return False
        return isinstance(value, types)

    @property
    def expected(self) -> str:
        kind = {"id": "an id (string or integer)", "any": "any JSON value"}.get(
            self.type, f"a{'n' if self.type[0] in 'aeiou' else ''} {self.type}"
        )
        return f"{kind} or null" if self.nullable else kind


class DocumentError(ValueError):
    """A document that cannot be read: field path → messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("The document is not valid.")
        self.errors = errors


@dataclass(frozen=True)
class Document:
    """How one resource looks in the management API."""

    name: str  # "flow", "export", …
    model: type[models.Model]
    form: type[forms.ModelForm]
    fields: tuple[Field, ...]
    # Fields kept as given in one JSON model field (`kept_attr`) and returned when set:
    # other systems' fields that Flowsite accepts without acting on them.
    kept: tuple[Field, ...] = ()
    kept_attr: str = ""

    # --- merge patches ------------------------------------------------------------------

    def hidden_nulls(self, patch: Any) -> Any:
        """A merge patch's nulls for what the document never shows, which the merge alone
        would drop without effect, keeping the secret (found by an outside probe): a secret
        member's null removes it, as "" does; a write-only secret's null is refused."""
        if not isinstance(patch, dict):
            return patch
        patch, errors = copy.deepcopy(patch), {}
        for field in self.fields:
            *parents, leaf = field.path.split(".")
            node = patch
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict) or leaf not in node:
                continue
            value, secret = node[leaf], field.write_only or field.hidden_members
            if value is None and secret:
                errors[field.path] = [
                    "null cannot remove stored secrets: send a new value to replace one, or "
                    '"" for each member to remove (a secret left out is kept).'
                    if field.type == "object"
                    else "null cannot remove a stored secret: send a new value to replace it "
                    "(a secret left out is kept)."
                ]
            elif secret and isinstance(value, dict):
                node[leaf] = {name: "" if item is None else item for name, item in value.items()}
        if errors:
            raise DocumentError(errors)
        return patch

    # --- model → document ---------------------------------------------------------------

    def render(self, instance: models.Model) -> dict:
        document: dict = {"_id": str(instance.pk)}
        for field in self.fields:
            if field.write_only:
                continue
            _put(document, field.path, self._value_of(instance, field))
        if self.kept:
            stored = getattr(instance, self.kept_attr) or {}
            document.update({f.path: stored[f.path] for f in self.kept if f.path in stored})
        document["lastModified"] = _iso(instance.modified_at)
        document["createdAt"] = _iso(instance.created_at)
        return document

    def _value_of(self, instance, field: Field) -> Any:
        model_field = instance._meta.get_field(field.attr)
        if model_field.is_relation:
            pk = getattr(instance, model_field.attname)
            return None if pk is None else str(pk)
        return getattr(instance, field.attr)

    # --- document → validated form --------------------------------------------------------

    def form_for(self, document: Any, instance: models.Model | None = None) -> forms.ModelForm:
        """The bound, validated form for a whole document (PUT and POST; PATCH merges
        first). Raises DocumentError for shape problems and for what the form refuses."""
        values = self.read(document, instance)
        data = {}
        for field in self.fields:
            if field.path in values:
                value = values[field.path]
            elif field.write_only:
                continue  # a secret left out is kept
            else:
                value = self.model._meta.get_field(field.attr).get_default()
            data[field.attr] = _form_value(self.form.base_fields.get(field.attr), value)
        if self.kept:  # a whole document: the kept fields it leaves out are dropped
            kept = {f.path: values[f.path] for f in self.kept if f.path in values}
            data[self.kept_attr] = json.dumps(kept)
        form = self.form(data=data, instance=instance)
        if not form.is_valid():
            paths = {field.attr: field.path for field in self.fields}
            raise DocumentError(
                {
                    paths.get(name, ROOT if name == "__all__" else name): list(messages)
                    for name, messages in form.errors.items()
                }
            )
        return form

    def read(self, document: Any, instance: models.Model | None) -> dict[str, Any]:
        """The document's values by path, after checking its shape."""
        if not isinstance(document, dict):
            raise DocumentError({ROOT: [f"The {self.name} document must be a JSON object."]})
        errors: dict[str, list[str]] = {}
        # Read-only fields pasted from a document are ignored, except an _id that names
        # another resource than the one replaced.
        if messages := foreign_id(document, instance, self.name):
            errors["_id"] = messages
        leaves = {field.path: field for field in (*self.fields, *self.kept)}
        branches = {
            ".".join(field.path.split(".")[:depth])
            for field in self.fields
            for depth in range(1, field.path.count(".") + 1)
        }
        values: dict[str, Any] = {}

        def walk(node: dict, prefix: str) -> None:
            for key, value in node.items():
                path = f"{prefix}{key}"
                if not isinstance(key, str) or (not prefix and key in READ_ONLY):
                    continue
                if path in leaves:
                    if leaves[path].accepts(value):
                        values[path] = value
                    else:
                        errors[path] = [f"Expected {leaves[path].expected}."]
                elif path in branches:
                    if isinstance(value, dict):
                        walk(value, f"{path}.")
                    elif value is not None:
                        errors[path] = ["Expected an object."]
                else:
                    known = sorted(
                        name.removeprefix(prefix)
                        for name in (*leaves, *branches)
                        if name.startswith(prefix) and "." not in name.removeprefix(prefix)
                    )
                    errors[path] = [f"Unknown field. The fields here are: {', '.join(known)}."]

        walk(document, "")
        if errors:
            raise DocumentError(errors)
        return values

    # --- OpenAPI --------------------------------------------------------------------------

    def schema(self) -> dict:
        root = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "_id": {"type": "string", "readOnly": True},
                "lastModified": {"type": "string", "format": "date-time", "readOnly": True},
                "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
            },
        }
        for field in (*self.fields, *self.kept):
            node = root
            *parents, leaf = field.path.split(".")
            for parent in parents:
                # A branch sent as null is read as absent (read()), so the schema allows it.
                node = node["properties"].setdefault(
                    parent,
                    {
                        "type": "object",
                        "nullable": True,
                        "additionalProperties": False,
                        "properties": {},
                    },
                )
            node["properties"][leaf] = _field_schema(field)
        if required := self.required():
            root["required"] = required
        return root

    def required(self) -> list[str]:
        """The top-level fields a created or replaced document must give: those the form
        requires and the model has no default for (the others take their default)."""
        return [
            field.path
            for field in self.fields
            if "." not in field.path
            and (form_field := self.form.base_fields.get(field.attr)) is not None
            and form_field.required
            and not self.model._meta.get_field(field.attr).has_default()
        ]


def _type_schema(kind: str) -> dict:
    return {
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "any": {"description": "Any JSON value."},
    }.get(kind, {"type": kind})


def _field_schema(field: Field) -> dict:
    schema = _type_schema(field.type)
    if field.type == "array":  # client generators need the items' type
        schema["items"] = _type_schema(field.items)
    if field.enum:
        schema["enum"] = list(field.enum)
    if field.nullable:
        schema = nullable(schema)
    if field.write_only:
        schema["writeOnly"] = True
    if field.description:
        schema["description"] = field.description
    return schema


def _put(document: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for parent in parents:
        document = document.setdefault(parent, {})
    document[leaf] = value


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _form_value(form_field, value: Any) -> Any:
    if isinstance(form_field, forms.JSONField):
        return json.dumps(value)
    if isinstance(form_field, forms.ModelChoiceField):
        return "" if value is None else str(value)
    return "" if value is None else value


def _choices(model_choices) -> tuple[str, ...]:
    return tuple(model_choices.values)


INTEGRATION = Document(
    "integration",
    Application,
    forms.modelform_factory(Application, fields=("name", "description", "error_flow")),
    (
        Field("name", "name", "string"),
        Field("description", "description", "string"),
        Field(
            "_errorFlowId",
            "error_flow",
            "id",
            nullable=True,
            description="The flow run when a run of its flows fails (error handler).",
        ),
    ),
)
OWNER = Field(
    "_integrationId",
    "application",
    "id",
    nullable=True,
    description="The integration (application) it belongs to; null: shared by all.",
)
RELATIVE_URI = (
    "Joined to the connection's base URI; templates allowed. An absolute URL must stay on the "
    "base URI's scheme, host and port, where the connection's credentials go."
)
CONNECTION = Document(
    "connection",
    Connection,
    flow_forms.ConnectionForm,
    (
        Field("name", "name", "string"),
        Field("type", "type", "string", enum=_choices(Connection.Type)),
        Field("http.baseURI", "base_uri", "string"),
        Field(
            "http.headers",
            "headers",
            "object",
            hidden_members=True,
            description="Sent with every request. Only the safe ones ("
            + ", ".join(SAFE_HEADERS)
            + ') are returned; any other is encrypted and write-only: left out it is kept, "" '
            "removes it.",
        ),
        Field("http.auth.type", "auth_type", "string", enum=_choices(Connection.AuthType)),
        Field("http.auth.username", "username", "string"),
        Field("http.auth.password", "password", "string", write_only=True),
        Field("http.auth.token", "token", "string", write_only=True),
        Field("http.auth.headerName", "header_name", "string"),
        Field("http.auth.apiKey", "api_key", "string", write_only=True),
        Field("http.auth.tokenURL", "token_url", "string"),
        Field("http.auth.clientId", "client_id", "string"),
        Field("http.auth.clientSecret", "client_secret", "string", write_only=True),
        Field("http.auth.scope", "scope", "string"),
        Field("http.allowedPrivateHosts", "allowed_private_hosts", "array", items="string"),
        Field("http.timeout", "timeout_ms", "integer", nullable=True, description="ms"),
        Field(
            "http.concurrencyLevel",
            "concurrency",
            "integer",
            description=f"1 to {Connection.MAX_CONCURRENCY} (default 1): how many calls a "
            "lookup makes at once on this connection, within a page, keeping the records' "
            "order.",
        ),
    ),
)
EXPORT = Document(
    "export",
    Export,
    flow_forms.ExportForm,
    (
        Field("name", "name", "string"),
        OWNER,
        Field("_connectionId", "connection", "id"),
        Field("http.method", "method", "string", enum=("GET", "POST", "PUT", "PATCH", "DELETE")),
        Field("http.relativeURI", "relative_uri", "string", description=RELATIVE_URI),
        Field("http.query", "query", "object"),
        Field("http.headers", "headers", "object"),
        Field("http.body", "body", "any", nullable=True),
        Field("http.response.resourcePath", "resource_path", "string"),
        Field("http.paging.method", "paging", "string", enum=_choices(Export.Paging)),
        Field("http.paging.pageSize", "page_size", "integer", nullable=True),
        Field("http.paging.pageSizeParam", "page_size_param", "string"),
        Field("http.paging.pageParam", "page_param", "string"),
        Field("http.paging.path", "next_path", "string"),
        Field("http.paging.cursorParam", "cursor_param", "string"),
        Field("http.paging.maxPages", "max_pages", "integer"),
        Field(
            "records",
            "records",
            "object",
            description='A data tables connection\'s query: {"_recordTypeId", "filters": '
            '[{"field", "op", "value"}], "ordering": [{"field", "direction"}]}.',
        ),
    ),
)
IMPORT = Document(
    "import",
    Import,
    flow_forms.ImportForm,
    (
        Field("name", "name", "string"),
        OWNER,
        Field("_connectionId", "connection", "id"),
        Field("http.method", "method", "string", enum=("GET", "POST", "PUT", "PATCH", "DELETE")),
        Field("http.relativeURI", "relative_uri", "string", description=RELATIVE_URI),
        Field("http.headers", "headers", "object"),
        Field("http.body", "body", "any", nullable=True),
        Field("http.batchSize", "batch_size", "integer"),
        Field(
            "records",
            "records",
            "object",
            description='A data tables connection\'s write: {"_recordTypeId", "action": '
            'create|update|upsert|delete, "keyField"}.',
        ),
    ),
)
SCRIPT = Document(
    "script",
    Script,
    flow_forms.ScriptForm,
    (
        Field("name", "name", "string"),
        OWNER,
        Field("language", "language", "string", enum=_choices(Script.Language)),
        Field("content", "content", "string"),
    ),
)


class FlowDocument(Document):
    """Celigo's simple flows (one export, one import) also show `_exportId`/`_importId`,
    and a document may give those two instead of pageGenerators/pageProcessors."""

    SIMPLE = ("_exportId", "_importId")
    # An instance's link to its template and its connection map: set by
    # POST …/<template>/instances, shown, and accepted back unchanged.
    INSTANCE = (("_templateFlowId", "template_flow_id"), ("connectionMap", "connection_map"))

    def render(self, instance: models.Model) -> dict:
        document = super().render(instance)
        template = instance.template_flow_id
        document["_templateFlowId"] = None if template is None else str(template)
        document["connectionMap"] = dict(instance.connection_map or {})
        generators, processors = instance.page_generators, instance.page_processors
        if (
            len(generators) == 1
            and len(processors) == 1
            and processors[0].get("type") == "import"
            and set(processors[0]) <= {"type", "_importId"}
        ):
            document["_exportId"] = str(generators[0].get("_exportId"))
            document["_importId"] = str(processors[0].get("_importId"))
        return document

    def read(self, document: Any, instance: models.Model | None) -> dict[str, Any]:
        if isinstance(document, dict) and any(key in document for key, _ in self.INSTANCE):
            document = self._without_instance_fields(document, instance)
        if not (isinstance(document, dict) and any(key in document for key in self.SIMPLE)):
            return super().read(document, instance)
        document = dict(document)
        export_id, import_id = document.pop("_exportId", None), document.pop("_importId", None)
        values = super().read(document, instance)
        errors = {}
        for key, value in (("_exportId", export_id), ("_importId", import_id)):
            if value is None or isinstance(value, bool) or not isinstance(value, str | int):
                errors[key] = ["A simple flow needs both _exportId and _importId (ids)."]
        if errors:
            raise DocumentError(errors)
        simple = (
            [{"_exportId": export_id}],
            [{"type": "import", "_importId": import_id}],
        )
        for path, shorthand in zip(("pageGenerators", "pageProcessors"), simple, strict=True):
            given = values.get(path)
            if given is None:
                values[path] = shorthand
            elif self._ids(given) != self._ids(shorthand):
                errors[path] = [
                    f"{path} disagrees with _exportId/_importId: change one, or leave "
                    "_exportId and _importId out."
                ]
        if errors:
            raise DocumentError(errors)
        return values

    def _without_instance_fields(self, document: dict, instance) -> dict:
        """The document minus the read-only instance fields, which must be left out or
        sent as they are (null and {} on a flow that is no instance)."""
        errors = {}
        for key, attr in self.INSTANCE:
            if key not in document:
                continue
            current = getattr(instance, attr) if instance is not None else None
            sent = document[key]
            if key == "_templateFlowId":
                same = (sent is None and current is None) or (
                    current is not None and str(sent) == str(current)
                )
            else:
                same = (sent or {}) == (current or {})
            if not same:
                errors[key] = [
                    f"{key} is read-only: POST /api/v1/flows/<template id>/instances creates "
                    "an instance with its connection map."
                ]
        if errors:
            raise DocumentError(errors)
        return {k: v for k, v in document.items() if k not in dict(self.INSTANCE)}

    @staticmethod
    def _ids(steps: list) -> list:
        keys = ("_exportId", "_importId")
        return [
            {key: str(step[key]) for key in keys if key in step}
            for step in steps
            if isinstance(step, dict)
        ]

    def schema(self) -> dict:
        schema = super().schema()
        schema["properties"]["_templateFlowId"] = {
            "type": "string",
            "nullable": True,
            "readOnly": True,
            "description": "The template this flow is an instance of (Axway's formula "
            "instance); null for other flows.",
        }
        schema["properties"]["connectionMap"] = {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "readOnly": True,
            "description": "An instance's connections: {template's connection id: this "
            "instance's connection id}.",
        }
        for key in self.SIMPLE:
            schema["properties"][key] = {
                "oneOf": [{"type": "string"}, {"type": "integer"}],
                "description": "A simple flow's one export or import (Celigo's shorthand).",
            }
        return schema


# Celigo's flow fields that Flowsite accepts and keeps as given (DESIGN §8), so a flow pasted
# from integrator.io comes back whole. None of them changes how the flow runs; a clone sets
# _sourceId (the flow it copies) and _flowGroupingId (when its request names one).
KEPT = "Celigo's; kept as given, Flowsite does not act on it."
CELIGO_FLOW_FIELDS = tuple(
    Field(path, "celigo_fields", kind, nullable=kind == "id", description=description)
    for path, kind, description in (
        ("free", "boolean", KEPT),
        ("_templateId", "id", "The Celigo template the flow came from. " + KEPT),
        ("_sourceId", "id", "The flow this one is a clone of (set by clone), else as given."),
        ("autoResolveMatchingTraceKeys", "boolean", KEPT),
        (
            "runPageGeneratorsInParallel",
            "boolean",
            KEPT + " Page generators are read one after another.",
        ),
        ("aliases", "array", KEPT),
        ("_flowGroupingId", "id", "The flow grouping (set by clone when asked). " + KEPT),
    )
)
FLOW_FORM = forms.modelform_factory(
    Flow, form=flow_forms.FlowForm, fields=(*flow_forms.FlowForm.Meta.fields, "celigo_fields")
)
FLOW = FlowDocument(
    "flow",
    Flow,
    FLOW_FORM,
    (
        Field("name", "name", "string"),
        Field("description", "description", "string"),
        Field("disabled", "disabled", "boolean"),
        Field("_integrationId", "application", "id"),
        Field("schedule", "schedule", "string", description="5-field cron or Quartz."),
        Field("timezone", "timezone", "string", description="IANA name, e.g. Europe/Paris."),
        Field("skipRetries", "skip_retries", "boolean"),
        Field(
            "captureForTests",
            "capture_for_tests",
            "boolean",
            description="Record every run so that it can be saved as a flow test "
            "(Test runs always record).",
        ),
        Field(
            "runTestsOnSave",
            "run_tests_on_save",
            "boolean",
            description="Replay the flow's tests on every save; a save whose tests fail is "
            "refused (400 listing them) unless ?force=true.",
        ),
        Field("pageGenerators", "page_generators", "array", items="object"),
        Field("pageProcessors", "page_processors", "array", items="object"),
        Field("api", "api", "object"),
        Field("variables", "variables", "object"),
        Field(
            "secretVariables",
            "secret_variables",
            "object",
            write_only=True,
            description='Write-only, encrypted: {name: value}; "" removes one.',
        ),
        Field(
            "_errorFlowId",
            "error_flow",
            "id",
            nullable=True,
            description="The flow run when a run of this one fails (error handler).",
        ),
        Field("maxConcurrency", "max_concurrency", "integer", description="0: unlimited."),
        Field(
            "concurrencyPolicy",
            "concurrency_policy",
            "string",
            enum=_choices(Flow.ConcurrencyPolicy),
        ),
        Field("runTimeout", "timeout_ms", "integer", description="ms, for runs no call waits for."),
        Field(
            "isTemplate",
            "is_template",
            "boolean",
            description="A template (Axway's formula) never answers calls: its instances "
            "(POST /api/v1/flows/<id>/instances) answer its API path.",
        ),
    ),
    kept=CELIGO_FLOW_FIELDS,
    kept_attr="celigo_fields",
)
DOCUMENTS = {
    document.name: document for document in (INTEGRATION, CONNECTION, EXPORT, IMPORT, SCRIPT, FLOW)
}
