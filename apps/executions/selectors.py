"""Reads for runs: the flow a route names, who may see a run, what a script step last received."""

import operator
from collections.abc import Sequence
from functools import reduce

from django.contrib.auth import get_permission_codename
from django.db.models import Q
from django.urls import reverse

from apps.accounts.privileges import Privilege
from apps.core import rows
from apps.executions import route_cache
from apps.executions.errors import (
    AmbiguousFlow,
    AmbiguousInstance,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
)
from apps.executions.models import Execution, StepRun
from apps.flows.api_settings import INSTANCE_HEADER
from apps.flows.models import Application, Flow
from apps.flows.step_samples import ScriptStep, StepSample


def _not_found(what: str) -> NotFound:
    return NotFound(f"{what} does not exist or is not an API.")


def flow_by_name(application: str, name: str) -> Flow:
    """PhixFlow's trigger URL: the flow by application and name (remembered 0.5 s)."""
    found = route_cache.flows(
        ("name", application, name),
        lambda: list(
            Flow.objects.select_related("application").filter(
                application__name=application, name=name
            )[:1]
        ),
    )
    if not found:
        raise _not_found(f"Flow {name!r} in application {application!r}")
    return found[0]


def flow_by_legacy_name(name: str, *, authenticated: bool) -> Flow:
    """PhixFlow's /api/1/action/<Flow>/trigger: the name must be unique among API flows."""
    flows = list(
        Flow.objects.select_related("application").filter(name=name, api_enabled=True)[:10]
    )
    if not flows:
        raise _not_found(f"Flow {name!r}")
    if len(flows) > 1:
        if not authenticated:
            raise NotAuthenticated  # only a caller may learn which applications exist
        urls = [flow.trigger_url for flow in flows]
        raise AmbiguousFlow(
            f"Several applications have a flow named {name!r}; call one of: {', '.join(urls)}",
            urls=urls,
        )
    return flows[0]


def flow_by_resource(method: str, path: str, *, instance_id: str = "", authenticated: bool) -> Flow:
    """Axway's flow as a resource: the enabled flow answering this method and path (the
    path's flows are remembered 0.5 s). Instances of a template share its path: the
    `Elements-Formula-Instance-Id` header (`instance_id`) names one; without it a path
    with one instance answers with it, and one with several is ambiguous. A template
    found alone is returned so that the front door refuses it as a template."""
    candidates = route_cache.flows(
        ("resource", path),
        lambda: list(
            Flow.objects.select_related("application")
            .filter(api_enabled=True, api_path=path)
            .order_by("pk")
        ),
    )
    if instance_id:
        return _instance(candidates, method, path, instance_id.strip())
    matching = [flow for flow in candidates if flow.api_method == method]
    answering = [flow for flow in matching if not flow.is_template]
    if len(answering) == 1:
        return answering[0]
    if answering:
        _ambiguous(answering, method, path, authenticated=authenticated)
    if matching:
        return matching[0]  # a template: refused as one
    if candidates:
        allowed = ", ".join(sorted({flow.api_method for flow in candidates}))
        raise MethodNotAllowed(
            f"{method} is not allowed on {path}. Allowed: {allowed}.", allow=allowed
        )
    raise _not_found(f"Resource {path}")


def _instance(candidates: list[Flow], method: str, path: str, instance_id: str) -> Flow:
    """The flow the header names among the flows on this path: an instance, a template,
    or a flow of its own (Axway's curl always sends the header; naming a plain flow was a
    404 about a template that did not exist, an outside probe)."""
    for flow in candidates:
        if str(flow.pk) == instance_id:
            if flow.api_method != method:
                raise MethodNotAllowed(
                    f"{method} is not allowed on {path}. Allowed: {flow.api_method}.",
                    allow=flow.api_method,
                )
            return flow
    raise NotFound(
        f"No flow {instance_id!r} answers {method} {path}: send in {INSTANCE_HEADER} the _id "
        "of the flow (or of the template's instance) that answers it, or leave the header out."
    )


def _ambiguous(flows: list[Flow], method: str, path: str, *, authenticated: bool) -> None:
    """Several instances answer the path: name them (an anonymous caller learns only of
    the ones open to anonymous calls)."""
    if not authenticated:
        flows = [flow for flow in flows if flow.api_settings.allow_anonymous]
        if not flows:
            raise NotAuthenticated
    listed = [{"_id": str(flow.pk), "name": flow.name} for flow in flows]
    names = ", ".join(f"{item['_id']} ({item['name']})" for item in listed[:20])
    raise AmbiguousInstance(
        f"Several instances answer {method} {path}: send {INSTANCE_HEADER} with the _id of "
        f"one of them: {names}.",
        instances=listed,
    )


def trigger_url(flow: Flow) -> str:
    return reverse("flow-trigger", kwargs={"application": flow.application.name, "flow": flow.name})


def poll_url(execution: Execution, instance: str = "") -> str:
    """The run's poll URL; under PhixFlow's `/<instance>/api/1/…` when the caller used it."""
    flow = execution.flow
    names = {"application": flow.application.name, "flow": flow.name, "process_id": execution.pk}
    if instance:
        return reverse("phixflow:flow-poll", kwargs={**names, "instance": instance})
    return reverse("flow-poll", kwargs=names)


def first_errors(execution: Execution, limit: int = 5) -> list[dict]:
    """The run's first record errors, as answers, polls and error handlers show them."""
    return [
        {
            "step": error.step_path,
            "stepName": error.step_name,
            "message": error.message,
            "record": error.record,
            "httpStatus": error.http_status,
        }
        for error in execution.errors.all()[:limit]
    ]


def status_of(execution_id) -> str | None:
    """A run's status as stored now; None when there is no such run."""
    return Execution.objects.filter(pk=execution_id).values_list("status", flat=True).first()


def run_with_flow(execution_id) -> Execution | None:
    """A run with its flow and the flow's application loaded, as
    `select_related("flow__application")` has them, in three reads by primary key: workers
    read every run they are given, and pollers every run they wait for, and the ORM
    compiled that join anew each time (BENCHMARKS.md, "Hot path, stage 7")."""
    execution = rows.by_pk(Execution, execution_id)
    if execution is not None and execution.flow_id is not None:
        flow = rows.by_pk(Flow, execution.flow_id)
        application = flow and rows.by_pk(Application, flow.application_id)
        if application is not None:
            flow.application = application
        execution.flow = flow  # None: deleted since (the run's row keeps its name)
    return execution


def run_to_poll(process_id, application: str, flow: str) -> Execution | None:
    execution = run_with_flow(process_id)
    if (
        execution is None
        or execution.flow is None
        or execution.flow.name != flow
        or execution.flow.application.name != application
    ):
        return None
    return execution


def may_poll(execution: Execution, *, user, api_key, client_ip: str | None) -> bool:
    """The caller who started a run polls it (a key restricted to flows only polls those
    flows' runs); so does anyone with view_executions. An anonymous run is polled from
    the address that started it."""
    if user and user.is_authenticated:
        restricted = api_key is not None and api_key.restricted
        if restricted and not api_key.flows.filter(pk=execution.flow_id).exists():
            return False
        return execution.caller_id == user.pk or user.has_perm(Privilege.VIEW_EXECUTIONS.perm)
    return execution.caller_id is None and execution.caller_ip == client_ip


def last_script_input(steps: Sequence[ScriptStep], *, user) -> StepSample | None:
    """The records one of these script steps received in the most recent run where it
    received any (one query), for a user who may read runs in the admin."""
    opts = Execution._meta
    if not any(
        user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    ):
        return None
    where = reduce(
        operator.or_,
        (Q(execution__flow_id=s.flow_id, path=s.path, name=s.name[:200]) for s in steps),
    )
    step = (
        StepRun.objects.filter(where, kind="script", records_in__gt=0)
        .select_related("execution")
        .only("path", "sample_in", "execution__id", "execution__flow_name", "execution__created_at")
        .order_by("-execution__created_at")
        .first()
    )
    if step is None:
        return None
    run = step.execution
    return StepSample(
        records=step.sample_in,
        run_id=str(run.pk),
        run_url=reverse("admin:executions_execution_change", args=[run.pk]),
        flow_name=run.flow_name,
        path=step.path,
        ran_at=run.created_at,
    )
