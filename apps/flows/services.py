"""Writes for flows and their resources: save, delete, clone, bundles, connections; and a
script tried on sample records, a connection tried with one GET and an export's first
page previewed, an import's request shown without sending it (nothing stored)."""

import dataclasses
import re
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from apps.core.redaction import without_secrets
from apps.flows import flow_tests, selectors, spec_cache
from apps.flows.documents import (
    CONNECTION,
    EXPORT,
    FLOW,
    IMPORT,
    INTEGRATION,
    ROOT,
    SCRIPT,
    DocumentError,
)
from apps.flows.engine.context import RecordsError, RunContext
from apps.flows.engine.steps import export_pages, import_request
from apps.flows.forms import ConnectionForm, ConnectionWithoutSecretsForm
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from apps.flows.outbound import HttpRequest, OutboundError, get_client
from apps.flows.outbound.client import build_url
from apps.flows.outbound.errors import excerpt, quoted_secret_forms
from apps.flows.pipeline import as_id, connection_config, export_spec, import_spec
from apps.flows.sandbox import get_pool
from apps.flows.sandbox.results import ScriptAbort, ScriptError
from apps.flows.schedules import sync_flow_schedule

BUNDLE_VERSION = 1


class InUse(Exception):
    """A resource that flows still use cannot be deleted."""

    def __init__(self, message: str, flows: list[Flow]):
        super().__init__(message)
        self.flows = flows


class BundleError(ValueError):
    """A bundle or connection map that cannot be installed: path → messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("The bundle cannot be installed.")
        self.errors = errors


def _free_name(application: Application, base: str) -> str:
    return _free_name_in(Flow.objects.filter(application=application), base)


def _free_name_in(queryset: models.QuerySet, base: str) -> str:
    """`base`, or `base (2)`, `base (3)`… : the first name no row of `queryset` has."""
    names = set(queryset.values_list("name", flat=True))
    name, number = base, 2
    while name in names:
        name, number = f"{base} ({number})", number + 1
    return name


def _without_taken_route(api: Any, *, exclude_pk: int | None = None) -> Any:
    """A copy's API settings: switched off when another flow already answers its route."""
    if not (isinstance(api, dict) and api.get("enabled") and api.get("path")):
        return api
    taken = Flow.objects.filter(
        api_enabled=True, api_method=str(api.get("method") or "GET").upper(), api_path=api["path"]
    ).exclude(pk=exclude_pk)
    return {**api, "enabled": False} if taken.exists() else api


@transaction.atomic
def clone_flow(*, flow: Flow, name: str | None = None, user=None) -> Flow:
    """A disabled copy of the flow in the same application, using the same resources
    (the admin's Clone; the API's clone copies the resources too, see install_bundle)."""
    clone = Flow.objects.get(pk=flow.pk)
    clone.pk = None
    clone.name = _free_name(flow.application, name or f"{flow.name} (copy)")
    clone.disabled = True
    clone.api = _without_taken_route(clone.api)
    clone.celigo_fields = {**clone.celigo_fields, "_sourceId": str(flow.pk)}  # as the API's
    clone.full_clean()
    return save_flow(flow=clone, user=user)


@transaction.atomic
def save_flow(*, flow: Flow, user=None) -> Flow:
    """Save a validated flow and keep its schedule's PeriodicTask in step."""
    flow._history_user = user
    flow.save()
    sync_flow_schedule(flow)
    return flow


class FlowTestsFailed(Exception):
    """A flow whose guard is on (runTestsOnSave) was not saved: some of its tests fail."""

    def __init__(self, failing: list[dict]):
        super().__init__(f"{len(failing)} flow test(s) fail.")
        self.failing = failing


@transaction.atomic
def save_resource(*, form, user, force: bool = False) -> models.Model:
    """Save a validated form of the admin or the management API. A flow whose guard is on
    is replayed against its tests first, as it is about to be saved; FlowTestsFailed when
    some fail, unless `force`."""
    instance = form.save(commit=False)
    if isinstance(instance, Flow):
        if not force and flow_tests.guarded(instance) and (failing := flow_tests.failing(instance)):
            raise FlowTestsFailed(failing)
        return save_flow(flow=instance, user=user)
    instance.save()
    return instance


@transaction.atomic
def set_flows_disabled(*, queryset, disabled: bool, user=None) -> int:
    flows = list(queryset.exclude(disabled=disabled))
    for flow in flows:
        flow.disabled = disabled
        save_flow(flow=flow, user=user)
    return len(flows)


@transaction.atomic
def delete_resource(*, instance: models.Model, user=None) -> None:
    """Delete a resource nothing uses; raise InUse naming the flows that still do."""
    if usage := selectors.usage_of(instance):
        raise InUse(usage.message, usage.flows)
    instance._history_user = user
    try:
        instance.delete()
    except models.ProtectedError as exc:  # e.g. a surface operation runs this flow
        kept = sorted({f"{type(o)._meta.verbose_name} {o}" for o in exc.protected_objects})
        raise InUse(f"Still in use by {', '.join(kept[:20])}.", []) from None


# How replaceConnection is told in the flow's history (its audit): the change reason of the
# version it saves, read back by CONNECTION_REPLACED. A change reason holds 100 characters.
CONNECTION_REPLACED = re.compile(r"replaceConnection: connection (\d+) → (\d+)")


def _connection_replaced(old: Connection, new: Connection, changed: dict[str, list[int]]) -> str:
    which = "; ".join(f"{key} {', '.join(map(str, ids))}" for key, ids in changed.items() if ids)
    reason = f"replaceConnection: connection {old.pk} → {new.pk} ({which})"
    return reason if len(reason) <= 100 else reason[:99] + "…"


@transaction.atomic
def replace_connection(
    *, flow: Flow, old: Connection, new: Connection, user=None, force: bool = False
) -> dict[str, list[int]]:
    """Point the flow's exports and imports at another connection, and say so in the flow's
    history (its audit), by `user`. Runs already going keep the connection they started
    with: a run reads its whole configuration when it starts. A flow whose guard is on is
    replayed against its tests with the new connection first; FlowTestsFailed (nothing
    changed) when some fail, unless `force` (it skipped the guard; an outside probe)."""
    if old.type != new.type:
        raise ValueError(
            f"Connection {new.pk} is of type {new.type}, connection {old.pk} of type "
            f"{old.type}: exports and imports cannot move between kinds."
        )
    found = selectors.uses(flow.page_generators, flow.page_processors)
    changed = {}
    now = timezone.now()
    for key, model, ids in (("exports", Export, found.export), ("imports", Import, found.import_)):
        rows = model.objects.filter(pk__in=ids, connection=old)
        changed[key] = sorted(rows.values_list("pk", flat=True))
        rows.update(connection=new, modified_at=now)
    if changed["exports"] or changed["imports"]:
        locked = Flow.objects.select_for_update().get(pk=flow.pk)
        spec_cache.clear()  # the rows changed by update(), which sends no signal
        if locked.run_tests_on_save and not force and (failing := flow_tests.failing(locked)):
            spec_cache.clear()  # the replay's spec has the connection about to be undone
            raise FlowTestsFailed(failing)  # rolls the rows back
        locked._change_reason = _connection_replaced(old, new, changed)
        save_flow(flow=locked, user=user)
    return changed


# --- Templates and their instances (Axway's formulas and formula instances) ---------------

# What an instance takes from its template, at creation and on each update. Its own: the
# name, `disabled`, variables (the template's new ones are added), secret variables, the
# connection map, and who may call it (api.allowAnonymous and api.roles).
FROM_TEMPLATE = (
    "description",
    "page_generators",
    "page_processors",
    "api",
    "schedule",
    "timezone",
    "skip_retries",
    "timeout_ms",
    "max_concurrency",
    "concurrency_policy",
    "error_flow_id",
)
# What an instance takes from its template when it is created only: its schedule is its
# own to change (an update from the template overwrote it).
OWN_ON_UPDATE = ("schedule", "timezone")
OWN_API_KEYS = ("allowAnonymous", "roles")


class NotTemplated(ValueError):
    """Instances are made of templates, and only instances are updated from one."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


DOCUMENT_PATHS = {field.attr: field.path for field in FLOW.fields}


def _checked_connection_map(template: Flow, connection_map: Any) -> dict[str, str]:
    """{template's connection id: instance's connection id}, both existing, of one type."""
    if not isinstance(connection_map, dict):
        raise DocumentError({"connectionMap": ["An object of template → instance ids."]})
    used = {str(c.pk): c for c in selectors.dependencies(template).connections}
    wanted = {str(old): str(new) for old, new in connection_map.items()}
    targets = Connection.objects.in_bulk(
        [int(new) for new in wanted.values() if new.isdigit()], field_name="pk"
    )
    errors = {}
    for old, new in wanted.items():
        where = f"connectionMap.{old}"
        if old not in used:
            names = ", ".join(f"{pk} ({c.name})" for pk, c in used.items()) or "none"
            errors[where] = [f"The template uses no connection {old}. It uses: {names}."]
        elif not new.isdigit() or int(new) not in targets:
            errors[where] = [f"Connection {new} does not exist."]
        elif targets[int(new)].type != used[old].type:
            errors[where] = [
                f"Connection {new} is of type {targets[int(new)].type}, the template's "
                f"connection {old} of type {used[old].type}: pick one of the same type."
            ]
    if errors:
        raise DocumentError(errors)
    return {old: new for old, new in wanted.items() if old != new}


def _copy_template(instance: Flow, template: Flow) -> None:
    own = instance.api if isinstance(instance.api, dict) else {}
    for attr in FROM_TEMPLATE:
        if instance.pk and attr in OWN_ON_UPDATE:  # an update: when it runs stays its own
            continue
        setattr(instance, attr, getattr(template, attr))
    api = dict(template.api) if isinstance(template.api, dict) else {}
    if instance.pk:  # an update: who may call it stays the instance's choice
        for key in OWN_API_KEYS:
            api.pop(key, None)
            if key in own:
                api[key] = own[key]
    instance.api = api


def _save_instance(instance: Flow, user) -> Flow:
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise DocumentError(
            {
                DOCUMENT_PATHS.get(k, ROOT if k == "__all__" else k): v
                for k, v in exc.message_dict.items()
            }
        ) from None
    if taken := instance.route_conflict(instance.api_method, instance.api_path):
        raise DocumentError(
            {
                "api": [
                    f"{instance.api_method} {instance.api_path} is already the API of flow {taken}."
                ]
            }
        )
    return save_flow(flow=instance, user=user)


@transaction.atomic
def create_instance(
    *,
    template: Flow,
    name: str,
    variables: dict | None = None,
    connection_map: dict | None = None,
    user=None,
) -> Flow:
    """A new instance of the template in its application: the template's steps and API,
    enabled, with its own name, variables (over the template's) and connections."""
    if not template.is_template:
        raise NotTemplated(
            f"Flow {template.pk} is not a template: set isTemplate: true on it first "
            "(an instance cannot be a template).",
            "not-a-template",
        )
    instance = Flow(application=template.application, name=name, template_flow=template)
    _copy_template(instance, template)
    instance.variables = {**(template.variables or {}), **(variables or {})}
    instance.connection_map = _checked_connection_map(template, connection_map or {})
    instance.secret_variables_encrypted = template.secret_variables_encrypted
    return _save_instance(instance, user)


@transaction.atomic
def update_from_template(*, instance: Flow, user=None, force: bool = False) -> Flow:
    """Copy the template's steps and API again, keeping the instance's own values: its
    name, schedule and time zone, variables (the template's new ones are added), secret
    variables, connection map, allowAnonymous and roles. An instance whose guard is on is
    replayed against its tests as updated first; FlowTestsFailed (nothing changed) when
    some fail, unless `force`."""
    template = instance.template_flow
    if template is None:
        raise NotTemplated(
            f"Flow {instance.pk} is not an instance of a template: there is nothing to "
            "update it from.",
            "not-an-instance",
        )
    instance = Flow.objects.select_for_update().get(pk=instance.pk)
    _copy_template(instance, template)
    instance.variables = {**(template.variables or {}), **(instance.variables or {})}
    try:
        secrets = {**template.secret_variables(), **instance.secret_variables()}
        instance.set_secret_variables(secrets)
    except ValueError:  # FLOWSITE_ENCRYPTION_KEY changed: the instance's stay as they are
        pass
    if not force and flow_tests.guarded(instance) and (failing := flow_tests.failing(instance)):
        raise FlowTestsFailed(failing)
    return _save_instance(instance, user)


# --- Bundles: download, clone and import --------------------------------------------------


def _flows_called(flow: Flow, *, error_flows: bool) -> set[int]:
    called = selectors.uses(flow.page_generators, flow.page_processors).flow
    if error_flows and flow.error_flow_id:
        called.add(flow.error_flow_id)
    return called


def _subflows(*flows: Flow, error_flows: bool = False) -> list[Flow]:
    """The flows and every flow they call, directly or not (sub-flows have no cycles); with
    `error_flows`, their error handlers too."""
    found: dict[int, Flow] = {flow.pk: flow for flow in flows}
    frontier = set().union(*(_flows_called(flow, error_flows=error_flows) for flow in flows))
    while frontier - set(found):
        called = Flow.objects.filter(pk__in=frontier - set(found))
        frontier = set()
        for child in called:
            found[child.pk] = child
            frontier |= _flows_called(child, error_flows=error_flows)
    return list(found.values())


def _bundle_contents(
    flows: list[Flow], *, owner: Application | None = None, connection_stub=None
) -> dict[str, list[dict]]:
    """The flows' documents with those of the exports, imports and scripts they use (and,
    given an `owner`, every one it owns), and of their connections without secrets
    (stubs with `connection_stub`)."""
    found = selectors.Uses()
    maps: dict[tuple[str, int], set] = {}  # (kind, id) → the connection maps of its flows
    for each in flows:
        used = selectors.uses(each.page_generators, each.page_processors)
        found.export |= used.export
        found.import_ |= used.import_
        found.script |= used.script
        mapped = frozenset((each.connection_map or {}).items())
        for kind in ("export", "import"):
            for resource_id in used.of(kind):
                maps.setdefault((kind, resource_id), set()).add(mapped)

    def wanted(model, ids: set[int]) -> models.QuerySet:
        query = models.Q(pk__in=ids)
        if owner is not None:
            query |= models.Q(application=owner)
        return model.objects.filter(query).order_by("pk")

    exports = wanted(Export, found.export).select_related("connection")
    imports = wanted(Import, found.import_).select_related("connection")
    scripts = wanted(Script, found.script)
    # A template's instance calls its connection map's connections: its exports and imports
    # travel with those (they travelled with the template's, so the installed copy called
    # another server; an outside probe). A resource flows with different maps share keeps
    # its own connection.
    moved: dict[tuple[str, int], int] = {}
    for kind, resources in (("export", exports), ("import", imports)):
        for resource in resources:
            if len(found_maps := maps.get((kind, resource.pk), set())) == 1:
                new = dict(next(iter(found_maps))).get(str(resource.connection_id))
                if new is not None:
                    moved[kind, resource.pk] = int(new)
    known = {r.connection_id: r.connection for r in (*exports, *imports)}
    needed = {
        moved.get((kind, r.pk), r.connection_id)
        for kind, resources in (("export", exports), ("import", imports))
        for r in resources
    }
    known.update(Connection.objects.in_bulk(needed - known.keys()))
    connections = {pk: known[pk] for pk in needed if pk in known}

    def rendered(document, kind: str, resource) -> dict:
        if (kind, resource.pk) in moved:
            document["_connectionId"] = str(moved[kind, resource.pk])
        return document

    tests = flow_tests.export(flows)
    return {
        "flows": [FLOW.render(each) for each in flows],
        "exports": [rendered(EXPORT.render(e), "export", e) for e in exports],
        "imports": [rendered(IMPORT.render(i), "import", i) for i in imports],
        "scripts": [SCRIPT.render(script) for script in scripts],
        "connections": [
            (connection_stub or CONNECTION.render)(connection)
            for connection in sorted(connections.values(), key=lambda c: c.pk)
        ],
        **({"tests": tests} if tests is not None else {}),
    }


def _connection_stub(connection: Connection) -> dict:
    return {
        "_id": str(connection.pk),
        "name": connection.name,
        "type": connection.type,
        "http": {"baseURI": connection.base_uri, "auth": {"type": connection.auth_type}},
    }


def bundle_of(flow: Flow, *, with_subflows: bool = True) -> dict:
    """A self-contained JSON bundle: the flow (and the flows it calls), its exports, imports
    and scripts, and stubs of its connections without secrets."""
    flows = _subflows(flow) if with_subflows else [flow]
    return {
        "version": BUNDLE_VERSION,
        "_flowId": str(flow.pk),
        **_bundle_contents(flows, connection_stub=_connection_stub),
    }


def integration_bundle_of(application: Application) -> dict:
    """A whole integration as one bundle, in the flow bundle's format: the integration's
    document, all its flows (with the flows they call and the error handlers they name,
    wherever those live), every export, import and script it owns or its flows use, and the
    documents of their connections, which never hold secrets (passwords, tokens, API keys,
    client secrets, secret headers and flows' secret variables are write-only)."""
    own = list(Flow.objects.filter(application=application).order_by("pk"))
    handler = application.error_flow
    flows = _subflows(*own, *([handler] if handler else []), error_flows=True)
    return {
        "version": BUNDLE_VERSION,
        "_integrationId": str(application.pk),
        "integration": INTEGRATION.render(application),
        **_bundle_contents(sorted(flows, key=lambda f: f.pk), owner=application),
    }


def _bundle_lists(bundle: Any, *, what: str = "GET …/download") -> dict[str, list[dict]]:
    if not isinstance(bundle, dict):
        raise BundleError({"bundle": [f"A bundle is a JSON object, as {what} gives."]})
    if bundle.get("version") != BUNDLE_VERSION:
        raise BundleError({"bundle.version": [f"Only version {BUNDLE_VERSION} is supported."]})
    lists = {}
    for key in ("flows", "exports", "imports", "scripts", "connections", "tests"):
        items = bundle.get(key, [])
        if not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            raise BundleError({f"bundle.{key}": ["Expected a list of objects."]})
        lists[key] = items
    return lists


def _flow_bundle_lists(bundle: Any) -> dict[str, list[dict]]:
    lists = _bundle_lists(bundle)
    if not any(str(f.get("_id")) == str(bundle.get("_flowId")) for f in lists["flows"]):
        raise BundleError({"bundle._flowId": ["Must be the _id of one of the bundle's flows."]})
    return lists


def _used_connections(lists: dict) -> dict[str, str]:
    """Connection ids the bundle's exports and imports use → their names where known."""
    wanted = {str(c.get("_id")): c.get("name", "") for c in lists["connections"]}
    used = {str(r.get("_connectionId")) for r in (*lists["exports"], *lists["imports"])}
    for connection_id in used - set(wanted):
        wanted[connection_id] = ""
    return wanted


def _mapped_connections(connection_map: Any, olds) -> dict[str, Connection]:
    """The connections that `connection_map` names for these old ids (400 for one that does
    not exist); old ids it does not map are left out."""
    if not isinstance(connection_map, dict):
        raise BundleError({"connectionMap": ["An object of old → new connection ids."]})
    mapping = {str(key): value for key, value in connection_map.items()}
    existing = Connection.objects.in_bulk(
        [int(v) for v in mapping.values() if str(v).isdigit()], field_name="pk"
    )
    targets = {}
    for old in olds:
        if old not in mapping:
            continue
        new = mapping[old]
        if not str(new).isdigit() or int(new) not in existing:
            raise BundleError({f"connectionMap.{old}": [f"Connection {new} does not exist."]})
        targets[old] = existing[int(new)]
    return targets


def _connections(lists: dict, connection_map: Any) -> dict[str, Connection]:
    wanted = _used_connections(lists)
    targets = _mapped_connections(connection_map, wanted)
    if unmapped := sorted(set(wanted) - set(targets)):
        raise BundleError(
            {
                "connectionMap": [
                    "Map every connection the flow uses to one of yours. Unmapped: "
                    + ", ".join(f"{pk} ({wanted[pk]})" if wanted[pk] else pk for pk in unmapped)
                    + "."
                ]
            }
        )
    return targets


def _install(document_type, document: dict, where: str, user, **overrides) -> models.Model:
    # Not the ids of the original: nor the simple-flow shorthand that repeats its steps.
    dropped = {"_id", "createdAt", "lastModified", *getattr(document_type, "SIMPLE", ())}
    # …nor an instance's link to its template (an instance is made from a template here).
    dropped |= {key for key, _ in getattr(document_type, "INSTANCE", ())}
    content = {k: v for k, v in document.items() if k not in dropped}
    content.update(overrides)
    try:
        form = document_type.form_for(content)
    except DocumentError as exc:
        raise BundleError(
            {f"{where}.{path}": messages for path, messages in exc.errors.items()}
        ) from None
    return save_resource(form=form, user=user)


def _remapped_pipeline(document: dict, ids: dict[str, dict[str, str]]) -> tuple[list, list]:
    def remap(step: Any, kind: str, key: str) -> Any:
        if not isinstance(step, dict) or key not in step:
            return step
        # "04", " 4 " and 4 name one resource, as the engine reads them (an id written
        # "04" was left pointing at the target's own resource 4: found by an outside probe).
        return {**step, key: ids[kind].get(_key(step[key]), step[key])}

    generators = [remap(g, "export", "_exportId") for g in document.get("pageGenerators") or []]
    processors = []
    for step in document.get("pageProcessors") or []:
        kind = step.get("type") if isinstance(step, dict) else None
        kind = kind if isinstance(kind, str) else None
        key = {"export": "_exportId", "import": "_importId", "script": "_scriptId"}.get(
            kind, "_flowId"
        )
        processors.append(remap(step, kind if kind in ids else "flow", key))
    return generators, processors


def _key(value: Any) -> str:
    """A bundle's id as the engine reads it ("04", " 4 " and 4 are 4), else as written."""
    pk = as_id(value)
    return str(pk) if pk else str(value)


def _remember(table: dict[str, str], old: Any, new: Any) -> None:
    """Old → new id, found by the old id as written and as the engine reads it."""
    table[str(old)] = table[_key(old)] = str(new)


def _called(document: dict) -> set[str]:
    return {str(pk) for pk in selectors.uses([], document.get("pageProcessors")).flow}


def _install_contents(
    lists: dict[str, list[dict]],
    connections: dict[str, Connection],
    application: Application,
    user,
    *,
    names: dict[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Install a bundle's scripts, exports, imports and flows into an application, each a
    new resource with its references rewired to the new ids (flows disabled, a flow's API
    switched off when another flow already answers its route; `names`: old flow id → the
    name wanted). Returns old → new ids by kind. A flow's error handler in the bundle is
    rewired too; one outside it must exist here."""
    ids: dict[str, dict[str, str]] = {"export": {}, "import": {}, "script": {}, "flow": {}}
    owner = str(application.pk)
    for index, document in enumerate(lists["scripts"]):
        script = _install(SCRIPT, document, f"scripts[{index}]", user, _integrationId=owner)
        _remember(ids["script"], document.get("_id"), script.pk)
    for kind, document_type in (("export", EXPORT), ("import", IMPORT)):
        for index, document in enumerate(lists[f"{kind}s"]):
            connection = connections[str(document.get("_connectionId"))]
            resource = _install(
                document_type,
                document,
                f"{kind}s[{index}]",
                user,
                _integrationId=owner,
                _connectionId=str(connection.pk),
            )
            _remember(ids[kind], document.get("_id"), resource.pk)

    # Called flows first: a flow is installed once every flow it calls is. Error handlers
    # are set once all are installed (two flows may handle each other's errors).
    pending = {_key(f.get("_id")): (index, f) for index, f in enumerate(lists["flows"])}
    handlers: dict[str, tuple[int, Any]] = {}
    while pending:
        ready = [
            (old, index, document)
            for old, (index, document) in pending.items()
            if not (_called(document) & set(pending) - {old})
        ]
        if not ready:
            raise BundleError({"bundle.flows": ["The bundle's flows call each other in a cycle."]})
        for old, index, document in ready:
            if not isinstance(document.get("name"), str):
                raise BundleError({f"flows[{index}].name": ["Expected a string."]})
            generators, processors = _remapped_pipeline(document, ids)
            flow = _install(
                FLOW,
                document,
                f"flows[{index}]",
                user,
                _integrationId=owner,
                name=_free_name(application, (names or {}).get(old) or document["name"] or "flow"),
                disabled=True,
                api=_without_taken_route(document.get("api") or {}),
                pageGenerators=generators,
                pageProcessors=processors,
                _errorFlowId=None,
            )
            _remember(ids["flow"], lists["flows"][index].get("_id"), flow.pk)
            if document.get("_errorFlowId") is not None:
                handlers[str(flow.pk)] = (index, document["_errorFlowId"])
            del pending[old]
    for pk, (index, handler) in handlers.items():
        where = f"flows[{index}]._errorFlowId"
        handler_id = _handler_id(handler, ids, where)
        if str(handler_id) == pk:  # as the API and the admin refuse it (an outside probe)
            raise BundleError({where: ["A flow cannot be its own error handler."]})
        Flow.objects.filter(pk=pk).update(error_flow_id=handler_id)
    flow_tests.install(lists["tests"], ids["flow"], user)
    return ids


def _handler_id(handler: Any, ids: dict[str, dict[str, str]], where: str) -> int:
    """The new id of an error handler named in a bundle: the installed copy when the bundle
    holds it, else a flow of this instance with that id."""
    if _key(handler) in ids["flow"]:
        return int(ids["flow"][_key(handler)])
    if str(handler).isdigit() and Flow.objects.filter(pk=int(handler)).exists():
        return int(handler)
    raise BundleError(
        {where: [f"Flow {handler} (the error handler) is neither in the bundle nor here."]}
    )


@transaction.atomic
def install_bundle(
    *,
    bundle: Any,
    connection_map: Any,
    application: Application,
    user,
    name: str | None = None,
) -> Flow:
    """Install a bundle into an application with its connections remapped: new exports,
    imports, scripts and flows (disabled until someone enables them). Returns the main flow.

    A flow's API is switched off in the copy when another flow already answers its route.
    """

    lists = _flow_bundle_lists(bundle)
    connections = _connections(lists, connection_map)
    main = _key(bundle["_flowId"])
    ids = _install_contents(
        lists, connections, application, user, names={main: name} if name else None
    )
    return Flow.objects.select_related("application").get(pk=ids["flow"][main])


def clone_with_resources(
    *,
    flow: Flow,
    connection_map: Any,
    name: str | None,
    application: Application,
    user,
    flow_grouping_id: str | None = None,
) -> Flow:
    """The API's clone: the flow with copies of its exports, imports and scripts, in an
    application, its connections remapped (every one must be mapped). As Celigo's, the
    copy's _sourceId is the flow copied, and _flowGroupingId the one asked for if any."""
    bundle = bundle_of(flow, with_subflows=False)
    copied = bundle["flows"][0]
    copied["_sourceId"] = str(flow.pk)
    if flow_grouping_id is not None:
        copied["_flowGroupingId"] = flow_grouping_id
    return install_bundle(
        bundle=bundle,
        connection_map=connection_map,
        application=application,
        user=user,
        name=name or f"{flow.name} (copy)",
    )


# --- Whole integrations: import --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConnectionPlaced:
    """Where a bundle's connection went on import: `mapped` (connectionMap named one),
    `matched` (one here has its name, type and base URI) or `created` (from its document,
    without secrets: `missing` names the secrets to set before its flows can call it)."""

    old_id: str
    connection: Connection
    how: str
    missing: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class IntegrationImported:
    application: Application
    ids: dict[str, dict[str, str]]
    connections: list[ConnectionPlaced]


IMPORTED_CONNECTION = dataclasses.replace(CONNECTION, form=ConnectionWithoutSecretsForm)
SECRET_PATHS = {
    "password": "http.auth.password",
    "token": "http.auth.token",
    "api_key": "http.auth.apiKey",
    "client_secret": "http.auth.clientSecret",
}


def _placed_connections(
    lists: dict, connection_map: Any, user
) -> tuple[dict[str, Connection], list[ConnectionPlaced]]:
    wanted = _used_connections(lists)
    mapped = _mapped_connections(connection_map, wanted)
    documents = {str(c.get("_id")): (i, c) for i, c in enumerate(lists["connections"])}
    placed = []
    for old in sorted(wanted, key=lambda pk: (len(pk), pk)):
        if old in mapped:
            placed.append(ConnectionPlaced(old, mapped[old], "mapped"))
            continue
        if old not in documents:
            raise BundleError(
                {
                    "connectionMap": [
                        f"Connection {old} is used by the bundle but not in it: map it to one "
                        "of yours."
                    ]
                }
            )
        index, document = documents[old]
        http = document.get("http") if isinstance(document.get("http"), dict) else {}
        match = Connection.objects.filter(
            name=document.get("name"),
            type=document.get("type", Connection.Type.HTTP),
            base_uri=http.get("baseURI", ""),
        ).first()
        if match is not None:
            placed.append(ConnectionPlaced(old, match, "matched"))
            continue
        name = document.get("name") if isinstance(document.get("name"), str) else ""
        created = _install(
            IMPORTED_CONNECTION,
            document,
            f"bundle.connections[{index}]",
            user,
            name=_free_name_in(Connection.objects.all(), name or "connection"),
        )
        missing = tuple(
            SECRET_PATHS[secret]
            for secret in ConnectionForm.REQUIRED.get(created.auth_type, ())
            if not created.secrets().get(secret)
        )
        placed.append(ConnectionPlaced(old, created, "created", missing))
    return {p.old_id: p.connection for p in placed}, placed


@transaction.atomic
def import_integration(
    *, bundle: Any, connection_map: Any, user, name: str | None = None
) -> IntegrationImported:
    """Create a whole integration again from GET /integrations/<id>/download's bundle, all
    or nothing: a new integration (its name, or `name`, made free), new scripts, exports,
    imports and flows (disabled) with their references rewired, the integration's and the
    flows' error handlers rewired, and each connection mapped (connectionMap), matched (same
    name, type and base URI) or created from its document without secrets."""
    lists = _bundle_lists(bundle, what="GET /api/v1/integrations/<id>/download")
    document = bundle.get("integration")
    if not isinstance(document, dict):
        raise BundleError(
            {"bundle.integration": ["The integration's document (an object) is missing."]}
        )
    base = name or document.get("name")
    application = _install(
        INTEGRATION,
        document,
        "bundle.integration",
        user,
        name=_free_name_in(Application.objects.all(), base) if isinstance(base, str) else base,
        _errorFlowId=None,
    )
    connections, placed = _placed_connections(lists, connection_map, user)
    ids = _install_contents(lists, connections, application, user)
    if (handler := document.get("_errorFlowId")) is not None:
        application.error_flow_id = _handler_id(handler, ids, "bundle.integration._errorFlowId")
        application.save(update_fields=["error_flow"])
    return IntegrationImported(application, ids, placed)


@dataclasses.dataclass(frozen=True)
class ScriptTrial:
    """What a script did with sample records: its value, or its error (with the line),
    and the debug() lines it wrote either way."""

    value: Any = None
    debug: tuple[str, ...] = ()
    error: str = ""
    line: int | None = None


def try_script(*, script: Script, records: list, function: str = "main", variables=None):
    """Call the script as a flow's script step would, in the sandbox with its limits (a
    fresh realm; the test takes the script's own share of the sandbox), on sample records.
    Nothing is stored and no run is recorded."""
    argument = {
        "trigger": {"type": "test", "args": {}},
        "records": records,
        "variables": variables or {},
        "processId": "script-test",
    }
    try:
        result = get_pool().call(
            script.content, function, argument, owner=f"script test {script.pk}"
        )
    except ScriptAbort as abort:
        return ScriptTrial(debug=tuple(abort.debug or ()), error=f"error(): {abort.message}")
    except ScriptError as error:
        return ScriptTrial(debug=tuple(error.debug or ()), error=error.message, line=error.line)
    return ScriptTrial(value=result.value, debug=tuple(result.debug))


TRY_SECONDS = 10
TRIAL_EXCERPT_CHARS = 2000  # what a connection test shows of the answer


@dataclasses.dataclass(frozen=True)
class ConnectionTrial:
    """One GET through a connection: what came back, or why it did not (the SSRF rule,
    a refused login, a timeout…), in the words of the outbound client's errors."""

    url: str
    status: int | None = None
    elapsed_ms: float | None = None
    excerpt: str = ""
    error: str = ""


def try_connection(*, connection: Connection, path: str = "/") -> ConnectionTrial:
    """GET `path` (relative to the base URI) with the connection's authentication, once,
    within TRY_SECONDS; the credentials go only to the base URI's origin, as in a run, and
    are left out of what is shown."""
    if connection.type != Connection.Type.HTTP:
        return ConnectionTrial(url="", error="A data-tables connection has nothing to call.")
    config = connection_config(connection)
    deadline = time.monotonic() + TRY_SECONDS
    try:
        response = get_client().send(config, HttpRequest("GET", path or "/"), deadline=deadline)
    except OutboundError as error:
        return ConnectionTrial(
            url=error.url or connection.base_uri,
            status=error.status,
            excerpt=error.body_excerpt or "",
            error=str(error),
        )
    # Every form a server may quote a secret in, replaced before the body is cut (a secret
    # across the cut would otherwise show its first half).
    text = excerpt(response.body, response.secrets, chars=TRIAL_EXCERPT_CHARS)
    return ConnectionTrial(
        url=response.url, status=response.status, elapsed_ms=response.elapsed_ms, excerpt=text
    )


PREVIEW_RECORDS = 20


def _trial_context(name: str, variables: dict | None) -> RunContext:
    """The engine's context for trying one piece: no retries, TRY_SECONDS to finish."""
    return RunContext(
        process_id=name,
        http=get_client(),
        scripts=get_pool(),
        variables=variables or {},
        deadline=time.monotonic() + TRY_SECONDS,
        retry=None,
    )


@dataclasses.dataclass(frozen=True)
class ExportPreview:
    """An export's first page, as a flow's page generator would read it."""

    records: list
    count: int = 0
    status: int | None = None
    error: str = ""


def preview_export(*, export: Export, variables: dict | None = None) -> ExportPreview:
    """The first page of an HTTP export (its request rendered as in a run, with its
    connection's authentication; the first PREVIEW_RECORDS records shown, `count` of the
    page), within TRY_SECONDS. Data-table exports are read on the data table's own page."""
    if export.connection.type != Connection.Type.HTTP:
        return ExportPreview([], error="A data-table export is previewed as its table's records.")
    spec = export_spec(export, connection_config(export.connection))
    ctx = _trial_context("export-preview", variables)
    try:
        records, status = next(export_pages(spec, ctx, ctx.scope(record={})), ([], None))
    except (OutboundError, RecordsError) as error:
        return ExportPreview([], status=getattr(error, "status", None), error=str(error))
    # An API may quote the connection's credentials back: never shown, as in a stored run.
    shown = without_secrets(records[:PREVIEW_RECORDS], quoted_secret_forms(ctx.recorder.secrets))
    return ExportPreview(shown, count=len(records), status=status)


@dataclasses.dataclass(frozen=True)
class ImportDryRun:
    """The request an import would send for its first batch, not sent."""

    method: str = ""
    url: str = ""
    headers: dict = dataclasses.field(default_factory=dict)
    body: Any = None
    records: int = 0
    error: str = ""


def dry_run_import(*, record_import: Import, records: list, variables=None) -> ImportDryRun:
    """The request the import would send for the first batch of `records` (batch_size of
    them, or the first record), rendered as in a run. Nothing is sent; the connection's
    authentication is added at sending and is not shown."""
    if record_import.connection.type != Connection.Type.HTTP:
        return ImportDryRun(error="A data-table import writes records, not a request.")
    if not records:
        return ImportDryRun(error="Give at least one sample record.")
    spec = import_spec(record_import, connection_config(record_import.connection))
    ctx = _trial_context("import-dry-run", variables)
    if spec.batch_size > 1:
        batch = records[: spec.batch_size]
        scope, payload = ctx.scope(records=batch, record=batch[0]), batch
    else:
        batch = records[:1]
        scope, payload = ctx.scope(record=batch[0]), batch[0]
    try:
        request = import_request(spec, ctx, scope, payload)
        url = build_url(spec.connection.base_uri, request.url, request.query)
    except ValueError as error:
        return ImportDryRun(error=str(error))
    return ImportDryRun(
        method=request.method,
        url=url,
        headers=dict(request.headers),
        body=request.json,
        records=len(batch),
    )
