"""A picture of a flow: its trigger → page generators → page processors as boxes in order,
each with a run's records in and out and errors (the flow's page: its last run; a run's
page: that run). Drawn by the server as HTML (templates/admin/executions/diagram.html).

Documents can be half-edited: a step that is not an object, of an unknown kind, or whose
export, import, script or flow is gone is drawn as missing, never raises. A fixed number of
queries, however many steps and runs: the run, its steps, its sub-flow runs, and one per
kind of resource the document names."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Count, Min
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode

from apps.executions.models import Execution, StepRun
from apps.flows.models import Flow
from apps.flows.pipeline import RESOURCES, as_id
from apps.flows.schedules import describe_schedule

Status = Execution.Status
LABELS = {"export": "lookup", "import": "import", "script": "script", "flow": "sub-flow"}
ROLES = {"export": "looks up", "import": "writes", "script": "transforms", "flow": "calls"}
STEP_FIELDS = ("path", "kind", "name", "records_in", "records_out", "errors", "duration_ms")


@dataclass(frozen=True)
class Trigger:
    """What starts the flow (or started this run): a label, a line of text, maybe a link."""

    label: str
    text: str = ""
    url: str = ""


@dataclass
class Runs:
    """The sub-flow runs a step started in the run shown: how many, and where they are."""

    count: int
    url: str


@dataclass(frozen=True)
class SoFar:
    """A running run's counters of one step, from its last progress report."""

    records_in: int
    records_out: int
    errors: int
    duration_ms: None = None


@dataclass
class Step:
    """One box: a step of the flow document, where it stands (`path`, as the engine and
    StepRun name it), what it uses, and what it did in the run shown (`ran`, or None)."""

    path: str
    kind: str
    label: str
    role: str
    name: str = ""
    url: str = ""
    missing: str = ""  # why the step cannot be drawn with its resource ("" when it can)
    proceed_on_failure: bool = False
    function: str = ""
    ran: StepRun | SoFar | None = None
    subflow_runs: Runs | None = None
    current: bool = False  # the step a running run is in

    @property
    def dom_id(self) -> str:
        """pageProcessors[2] → diagram-pageProcessors-2 (data-step keeps the path)."""
        return "diagram-" + self.path.replace("[", "-").replace("]", "")


@dataclass
class Diagram:
    title: str  # "Last run" on a flow's page, "This run" on a run's page
    triggers: list[Trigger]
    generators: list[Step]
    processors: list[Step]
    run: Execution | None = None
    run_url: str = ""
    leftover: list[StepRun] = field(default_factory=list)  # steps no longer in the document
    disabled: bool = False

    @property
    def steps(self) -> list[Step]:
        return [*self.generators, *self.processors]


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _names(generators: list, processors: list) -> dict[tuple[str, int], tuple[str, str]]:
    """(kind, id) → (name, admin URL) of every resource the document names that exists:
    one query per kind named."""
    wanted: dict[str, set[int]] = {kind: set() for kind in RESOURCES}
    for step in generators:
        if isinstance(step, dict) and (pk := as_id(step.get("_exportId"))) is not None:
            wanted["export"].add(pk)
    for step in processors:
        if isinstance(step, dict) and step.get("type") in RESOURCES:
            key, _ = RESOURCES[step["type"]]
            if (pk := as_id(step.get(key))) is not None:
                wanted[step["type"]].add(pk)
    found = {}
    for kind, ids in wanted.items():
        if not ids:
            continue
        _, model = RESOURCES[kind]
        columns = ("pk", "application__name", "name") if kind == "flow" else ("pk", "name")
        for pk, *name in model.objects.filter(pk__in=ids).values_list(*columns):
            url = reverse(f"admin:flows_{kind}_change", args=[pk])
            found[(kind, pk)] = (" / ".join(name), url)
    return found


def _step(path: str, kind: Any, step: Any, key: str | None, names: dict, *, role: str) -> Step:
    if not isinstance(step, dict):
        return Step(path, "unknown", "step", "", missing="not an object")
    if kind not in RESOURCES:
        return Step(path, "unknown", str(kind or "no kind"), "", missing="not a step kind")
    key = key or RESOURCES[kind][0]
    box = Step(
        path,
        kind,
        LABELS[kind],
        role,
        proceed_on_failure=step.get("proceedOnFailure") is True,
        function=step["function"]
        if kind == "script"
        and isinstance(step.get("function"), str)
        and step["function"] not in ("", "main")
        else "",
    )
    pk = as_id(step.get(key))
    if pk is None:
        box.missing = f"no {kind} chosen"
    elif (kind, pk) not in names:
        box.missing = f"{kind} {pk} does not exist"
    else:
        resource_name, box.url = names[(kind, pk)]
        custom = step.get("name")
        box.name = custom if isinstance(custom, str) and custom else resource_name
    return box


def _boxes(flow: Flow | None) -> tuple[list[Step], list[Step]]:
    if flow is None:
        return [], []
    generators = _list(flow.page_generators)
    processors = _list(flow.page_processors)
    names = _names(generators, processors)
    return (
        [
            _step(f"pageGenerators[{index}]", "export", step, "_exportId", names, role="reads")
            for index, step in enumerate(generators)
        ],
        [
            _step(
                f"pageProcessors[{index}]",
                step.get("type") if isinstance(step, dict) else None,
                step,
                None,
                names,
                role=ROLES.get(step.get("type"), "") if isinstance(step, dict) else "",
            )
            for index, step in enumerate(processors)
        ],
    )


def _subflow_runs(run: Execution) -> dict[int, Runs]:
    """flow id → the runs of that sub-flow the run started: one query."""
    rows = (
        Execution.objects.filter(parent=run)
        .values("flow_id")
        .annotate(count=Count("pk"), one=Min(Cast("id", CharField())))
        .order_by()
    )
    runs = {}
    for row in rows:
        if row["count"] == 1:
            url = reverse("admin:executions_execution_change", args=[uuid.UUID(row["one"])])
        else:
            query = urlencode({"parent__exact": run.pk, "flow__id__exact": row["flow_id"]})
            url = reverse("admin:executions_execution_changelist") + "?" + query
        runs[row["flow_id"]] = Runs(row["count"], url)
    return runs


def _attach(diagram: Diagram, run: Execution | None, flow: Flow | None) -> Diagram:
    """Put the run's numbers on the boxes, by path; keep the steps that no box matches."""
    if run is None:
        return diagram
    diagram.run = run
    diagram.run_url = reverse("admin:executions_execution_change", args=[run.pk])
    ran = {step.path: step for step in StepRun.objects.filter(execution=run).only(*STEP_FIELDS)}
    current = ""
    if run.status == Status.RUNNING and isinstance(run.progress, dict):
        # Its steps are stored when it ends; until then, the engine's last report.
        current = run.progress.get("current") or ""
        for step in run.progress.get("steps") or []:
            if isinstance(step, dict) and step.get("path") and step["path"] not in ran:
                counts = (step.get(name) for name in ("in", "out", "errors"))
                ran[step["path"]] = SoFar(*(count or 0 for count in counts))
    for box in diagram.steps:
        box.ran = ran.pop(box.path, None)
        box.current = box.path == current
    diagram.leftover = sorted(
        (step for step in ran.values() if isinstance(step, StepRun)),
        key=lambda step: step.position or 0,
    )
    if any(box.kind == "flow" for box in diagram.processors):
        called = _subflow_runs(run)
        subflows = _list(flow.page_processors) if flow is not None else []
        for box, step in zip(diagram.processors, subflows, strict=False):
            if box.kind == "flow" and not box.missing:
                box.subflow_runs = called.get(as_id(step.get("_flowId")))
    return diagram


def _flow_triggers(flow: Flow) -> list[Trigger]:
    """Manual always; the schedule and the API when set (from the flow's own settings)."""
    test_run = reverse("admin:flows_flow_test_run", args=[flow.pk])
    triggers = [Trigger("Manual", "Run now or Test run", test_run)]
    if (flow.schedule or "").strip():
        try:
            words = describe_schedule(flow.schedule)
        except ValueError:
            words = f"{flow.schedule} (not a valid schedule)"
        triggers.append(Trigger("Schedule", f"{words} ({flow.timezone or 'UTC'})"))
    api = flow.api_settings
    if api.enabled:
        route = f"{api.method} /api/resources{api.path}" if api.path else "POST the trigger URL"
        triggers.append(Trigger("API", f"{route} · {api.mode}", "#endpoint-panel"))
    return triggers


def _run_trigger(run: Execution) -> list[Trigger]:
    """What started this run: its trigger, the request it came with, the run it continues."""
    request = run.request if isinstance(run.request, dict) else {}
    parts = []
    if request.get("path"):
        parts.append(f"{request.get('method', '')} {request['path']}".strip())
    if run.caller_label:
        parts.append(f"by {run.caller_label}")
    url = ""
    if run.parent_id:
        parts.append(f"from run {str(run.parent_id)[:8]}")
        url = reverse("admin:executions_execution_change", args=[run.parent_id])
    elif run.retry_of_id:
        parts.append(f"again after run {str(run.retry_of_id)[:8]}")
        url = reverse("admin:executions_execution_change", args=[run.retry_of_id])
    return [Trigger(run.get_trigger_display(), " · ".join(parts), url)]


def last_run(flow: Flow) -> Execution | None:
    """The flow's latest run that has started (a queued one has done nothing yet)."""
    return (
        Execution.objects.filter(flow=flow)
        .exclude(status=Status.QUEUED)
        .only("id", "status", "created_at", "num_success", "num_error", "num_ignore", "progress")
        .order_by("-created_at")
        .first()
    )


def for_flow(flow: Flow) -> Diagram:
    """The flow's page: its triggers and steps, with its last run's numbers."""
    generators, processors = _boxes(flow)
    diagram = Diagram(
        "Last run", _flow_triggers(flow), generators, processors, disabled=flow.disabled
    )
    return _attach(diagram, last_run(flow), flow)


def for_run(run: Execution) -> Diagram:
    """A run's page: the flow's steps as they are now, with this run's numbers (a step the
    flow no longer has is listed after them); the steps alone when the flow is gone."""
    flow = Flow.objects.filter(pk=run.flow_id).first() if run.flow_id else None
    generators, processors = _boxes(flow)
    diagram = _attach(Diagram("This run", _run_trigger(run), generators, processors), run, flow)
    diagram.run_url = ""  # the page itself
    return diagram


def html(diagram: Diagram) -> str:
    return render_to_string("admin/executions/diagram.html", {"diagram": diagram})
