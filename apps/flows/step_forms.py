"""The flow page's settings as form fields instead of JSON: steps as rows, variables as
name/value rows, the API as plain fields.

Each widget posts plain lists (one value per row, in the page's order, so reordering rows
in the page reorders the steps) and a marker: a client that posts only the JSON documents
(the "Advanced" fields, older forms, tests) is recognised by the marker's absence. The
documents built here are validated exactly as typed JSON is (pipeline_errors, api_errors).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import Q

from apps.accounts.models import Role
from apps.flows.api_settings import DEFAULT_TIMEOUT_MS, METHODS, MODES
from apps.flows.models import Export, Flow, Import, Script
from apps.flows.pipeline import RESOURCES, as_id

ARROW = re.compile(r"\s*(?:->|→)\s*")
KIND_LABELS = {"export": "Exports", "import": "Imports", "script": "Scripts", "flow": "Flows"}
ON_FAILURE = (("stop", "stop the record"), ("proceed", "go on to the next step"))


# --- Steps ---------------------------------------------------------------------------------


def step_choices(application_id: int | None, *, exclude_flow: int | None = None) -> dict:
    """What a step can be, grouped by kind: {kind: [("kind:id", name), …]}. Exports,
    imports and scripts of the flow's application and shared ones (of none); any flow as a
    sub-flow but this one. Four queries, whatever the number of steps."""
    models = {"export": Export, "import": Import, "script": Script, "flow": Flow}
    grouped = {}
    for kind, model in models.items():
        rows = model.objects.order_by("name")
        if kind == "flow":
            rows = rows.exclude(pk=exclude_flow) if exclude_flow else rows
        elif application_id is not None:
            rows = rows.filter(Q(application_id=application_id) | Q(application__isnull=True))
        grouped[kind] = [(f"{kind}:{pk}", name) for pk, name in rows.values_list("pk", "name")]
    return grouped


def mapping_lines(mapping: Any) -> str:
    fields = mapping.get("fields") if isinstance(mapping, dict) else None
    return "\n".join(
        f"{field.get('extract', '')} → {field.get('generate', '')}"
        for field in fields or []
        if isinstance(field, dict)
    )


@dataclass
class StepRow:
    """One row as the page shows and posts it."""

    step: str = ""  # "kind:id"
    on_failure: str = "stop"
    function: str = ""
    mapping: str = ""  # extract → generate, one pair per line
    extra: str = ""  # the step's other keys (a name, list mappings) as JSON, kept as they are

    @classmethod
    def of(cls, document: Any, *, generator: bool) -> "StepRow":
        document = dict(document) if isinstance(document, dict) else {}
        kind = "export" if generator else document.pop("type", "")
        key = RESOURCES[kind][0] if kind in RESOURCES else None
        resource_id = as_id(document.pop(key, None)) if key else None
        mapping = document.pop("responseMapping", None)
        lists = mapping.get("lists") if isinstance(mapping, dict) else None
        if lists:
            document["responseMapping"] = {"lists": lists}
        return cls(
            step=f"{kind}:{resource_id}" if resource_id else "",
            on_failure="proceed" if document.pop("proceedOnFailure", False) is True else "stop",
            function=str(document.pop("function", "") or ""),
            mapping=mapping_lines(mapping),
            extra=json.dumps(document) if document else "",
        )

    def document(self, *, generator: bool, number: int) -> dict:
        """The step's document; ValidationError naming the row for what cannot be one."""
        where = f"Step {number}"
        kind, _, resource_id = self.step.partition(":")
        if not self.step:
            raise forms.ValidationError(f"{where}: pick what it does, or remove the row.")
        if kind not in RESOURCES or (generator and kind != "export"):
            raise forms.ValidationError(f"{where}: {self.step!r} is not a step to pick here.")
        try:
            extra = json.loads(self.extra) if self.extra else {}
        except ValueError:
            extra = None
        if not isinstance(extra, dict):
            raise forms.ValidationError(f"{where}: its other settings were damaged; reload.")
        document = {} if generator else {"type": kind}
        document[RESOURCES[kind][0]] = resource_id
        kept = extra.pop("responseMapping", None)
        lists = kept.get("lists") if isinstance(kept, dict) else None
        if fields := self._mapping(where):
            document["responseMapping"] = {"fields": fields}
        if lists:
            document.setdefault("responseMapping", {})["lists"] = lists
        if not generator:
            if self.on_failure == "proceed":
                document["proceedOnFailure"] = True
            if self.function.strip():
                document["function"] = self.function.strip()
        return {**extra, **document}

    def _mapping(self, where: str) -> list[dict]:
        fields = []
        for line in self.mapping.splitlines():
            if not line.strip():
                continue
            parts = ARROW.split(line.strip())
            if len(parts) != 2 or not all(parts):
                raise forms.ValidationError(
                    f"{where}: {line.strip()!r} must read 'extract → generate' "
                    "(a field of the answer, then where it goes in the record), e.g. id → crmId."
                )
            fields.append({"extract": parts[0], "generate": parts[1]})
        return fields


class RowsMedia:
    """Django admin's bundled select2 (searching pickers) and the rows editor's script."""

    js = (
        "admin/js/vendor/jquery/jquery.js",
        "admin/js/vendor/select2/select2.full.js",
        "admin/js/jquery.init.js",
        "flows/rows_editor.js",
    )
    css = {"screen": ("admin/css/vendor/select2/select2.css", "flows/rows_editor.css")}


class StepRowsWidget(forms.Widget):
    template_name = "flows/widgets/step_rows.html"
    Media = RowsMedia
    FIELDS = ("step", "on_failure", "function", "mapping", "extra")

    def __init__(self, *, generator: bool, attrs=None):
        super().__init__(attrs)
        self.generator = generator
        # {kind: [(value, name), …]}, or a function answering it: read only when rendered
        # (a management API save through the same form never needs it).
        self.choices: dict | Callable[[], dict] = {}

    def rows(self, value) -> list[StepRow]:
        if not isinstance(value, list):
            return []
        return [
            row if isinstance(row, StepRow) else StepRow.of(row, generator=self.generator)
            for row in value
        ]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        kinds = ("export",) if self.generator else tuple(KIND_LABELS)
        choices = self.choices() if callable(self.choices) else self.choices
        groups = [
            (
                KIND_LABELS[kind],
                [
                    (value, name if self.generator else f"{name} · {kind}")
                    for value, name in choices.get(kind, [])
                ],
            )
            for kind in kinds
        ]
        rows = self.rows(value)
        known = {value for _, options in groups for value, _ in options}
        missing = [row.step for row in rows if row.step and row.step not in known]
        context["widget"].update(
            generator=self.generator,
            rows=rows,
            blank=StepRow(),
            groups=groups,
            missing=missing,
            on_failure=ON_FAILURE,
        )
        return context

    def value_from_datadict(self, data, files, name):
        if f"{name}-rows" not in data:
            return None  # not posted as rows: the JSON document decides
        columns = [data.getlist(f"{name}-{field}") for field in self.FIELDS]
        if len({len(column) for column in columns}) != 1:
            return DamagedRows()  # rows' columns must line up
        return [StepRow(*values) for values in zip(*columns, strict=True)]


class DamagedRows(list):
    """A post whose rows' columns do not line up (cut short, or changed on its way): refused,
    never read as no rows (that saved a flow without its steps or variables, as a success)."""


def whole(value) -> None:
    if isinstance(value, DamagedRows):
        raise forms.ValidationError(
            "The rows were not received whole (their columns do not line up), so nothing was "
            "saved: reload the page and make the change again."
        )


class StepRowsField(forms.Field):
    """A pipeline list (pageGenerators or pageProcessors) edited as rows."""

    def __init__(self, *, generator: bool, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(widget=StepRowsWidget(generator=generator), **kwargs)
        self.generator = generator

    def to_python(self, value):
        if value is None:
            return None
        whole(value)
        documents, problems = [], []
        for number, row in enumerate(self.widget.rows(value), start=1):
            try:
                documents.append(row.document(generator=self.generator, number=number))
            except forms.ValidationError as exc:
                problems.extend(exc.messages)
        if problems:
            raise forms.ValidationError(problems)
        return documents

    def normalised(self, documents) -> list[dict]:
        """Documents as rows would write them back (ids as text, defaults left out)."""
        return [
            StepRow.of(document, generator=self.generator).document(
                generator=self.generator, number=number
            )
            for number, document in enumerate(documents or [], start=1)
            if isinstance(document, dict)
        ]

    def has_changed(self, initial, data):
        if data is None:
            return False
        try:
            return self.to_python(data) != self.normalised(initial)
        except forms.ValidationError:
            return True


# --- Variables -------------------------------------------------------------------------


class VariableRowsWidget(forms.Widget):
    template_name = "flows/widgets/variable_rows.html"
    Media = RowsMedia

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        pairs = value if isinstance(value, list) else list((value or {}).items())
        context["widget"]["rows"] = [
            (key, item if isinstance(item, str) else json.dumps(item)) for key, item in pairs
        ]
        return context

    def value_from_datadict(self, data, files, name):
        if f"{name}-rows" not in data:
            return None
        names, values = data.getlist(f"{name}-name"), data.getlist(f"{name}-value")
        if len(names) != len(values):
            return DamagedRows()
        return list(zip(names, values, strict=True))


class VariableRowsField(forms.Field):
    """Variables as name/value rows. A value is text; one that was stored as another JSON
    value (a number, a list) keeps its type while its text is left as shown."""

    widget = VariableRowsWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.stored: dict = {}

    def to_python(self, value):
        if value is None:
            return None
        whole(value)
        variables, problems = {}, []
        for key, text in value:
            key = key.strip()
            if not key and not text:
                continue
            if not key:
                problems.append(f"The value {text[:40]!r} needs a name.")
            elif key in variables:
                problems.append(f"{key} is given twice.")
            else:
                stored = self.stored.get(key)
                kept = not isinstance(stored, str) and key in self.stored
                variables[key] = stored if kept and json.dumps(stored) == text else text
        if problems:
            raise forms.ValidationError(problems)
        return variables

    def has_changed(self, initial, data):
        if data is None:
            return False
        try:
            return self.to_python(data) != (initial or {})
        except forms.ValidationError:
            return True


class SecretRowsWidget(forms.Widget):
    """Secret variables as rows: the stored names, never their values (not even a value
    just typed into a form that failed validation)."""

    template_name = "flows/widgets/secret_rows.html"
    Media = RowsMedia

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        # The stored names (initial), or the rows posted back after an error.
        context["widget"]["names"] = [
            item[0] if isinstance(item, tuple) else item for item in value or []
        ]
        return context

    def value_from_datadict(self, data, files, name):
        return VariableRowsWidget.value_from_datadict(self, data, files, name)


class SecretRowsField(forms.Field):
    """Write-only secret variables as name/value rows. A value typed sets or replaces one;
    a stored one left empty is kept; a stored one whose row is removed is forgotten. The
    cleaned value is the update for Flow.set_secret_variables ("" removes)."""

    widget = SecretRowsWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.stored: list[str] = []

    def to_python(self, value):
        if value is None:
            return None
        whole(value)
        updates, problems, posted = {}, [], set()
        for key, text in value:
            key = key.strip()
            if not key:
                if text:
                    problems.append("A secret value needs a name.")
                continue
            if key in posted:
                problems.append(f"{key} is given twice.")
            posted.add(key)
            if text:
                updates[key] = text
            elif key not in self.stored:
                problems.append(f"{key} needs a value.")
        if problems:
            raise forms.ValidationError(problems)
        updates.update((key, "") for key in self.stored if key not in posted)
        return updates

    def has_changed(self, initial, data):
        try:
            return bool(self.to_python(data))
        except forms.ValidationError:
            return True


# --- API settings --------------------------------------------------------------------------

API_FIELDS = {
    "endpoint_enabled": "enabled",
    "endpoint_method": "method",
    "endpoint_path": "path",
    "endpoint_mode": "mode",
    "endpoint_timeout": "timeout",
    "endpoint_anonymous": "allowAnonymous",
    "endpoint_roles": "roles",
    "endpoint_output_name": "outputName",
    "endpoint_error_status": "errorStatus",
    "endpoint_content_type": "contentType",
}
ERROR_STATUSES = (
    ("200", "200: records with their errors"),
    ("207", "207 Multi-Status"),
    ("400", "400 Bad Request"),
    ("422", "422 Unprocessable Content"),
    ("500", "500 Internal Server Error"),
    ("phixflow", "PhixFlow's: 400 when no record is returned, else 200"),
)


class EndpointFields(forms.Form):
    """The API settings as form fields (a form mixin), merged into the flow's `api`
    document, whose other keys (such as inputSchema) are kept."""

    endpoint_enabled = forms.BooleanField(label="Exposed as an API", required=False)
    endpoint_method = forms.ChoiceField(
        label="Method", choices=[(m, m) for m in METHODS], initial="GET", required=False
    )
    endpoint_path = forms.CharField(
        label="Path",
        required=False,
        max_length=500,
        help_text="Such as /greeting or /customers/search.",
    )
    endpoint_mode = forms.ChoiceField(
        label="Mode",
        choices=[
            ("sync", "sync: answers with the result"),
            ("async", "async: answers 202 and a URL to poll"),
            ("auto", "auto: the result if it is quick, else 202"),
        ],
        initial="sync",
        required=False,
    )
    endpoint_timeout = forms.IntegerField(
        label="Timeout (ms)",
        required=False,
        min_value=1,
        help_text="Empty: "
        + ", ".join(f"{mode} {DEFAULT_TIMEOUT_MS[mode]:,}" for mode in MODES)
        + ".",
    )
    endpoint_anonymous = forms.BooleanField(
        label="Allow anonymous calls",
        required=False,
        help_text="Anyone who can reach the server may then call it without a key (limited "
        "per client IP by FLOWSITE_THROTTLE_ANON). Off unless ticked.",
    )
    endpoint_roles = forms.MultipleChoiceField(
        label="Roles",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only members of these roles may call it; none ticked: any account "
        "with the run privilege.",
    )
    endpoint_output_name = forms.CharField(
        label="Output name", required=False, initial="records", max_length=100
    )
    endpoint_error_status = forms.ChoiceField(
        label="Status of a run with record errors",
        choices=ERROR_STATUSES,
        initial="200",
        required=False,
    )
    endpoint_content_type = forms.CharField(
        label="Content type",
        required=False,
        max_length=200,
        help_text="PhixFlow's contentType output: the Content-Type of the answers, such as "
        "text/csv, when the flow's answer names none. Empty: JSON.",
    )

    def show_endpoint(self, document: Any) -> None:
        """Fill the fields from the stored `api` document."""
        for name, value in self.initial_endpoint(document).items():
            self.fields[name].initial = value
        # A callable: the roles are read only when the field is shown or a role is posted.
        self.fields["endpoint_roles"].choices = lambda: self.role_choices(document)
        status = str((document or {}).get("errorStatus", 200))
        statuses = self.fields["endpoint_error_status"].choices
        if status not in {value for value, _ in statuses}:
            self.fields["endpoint_error_status"].choices = [*statuses, (status, status)]

    def endpoint_edited(self) -> bool:
        """Whether the fields were posted (the method always is) and say something new."""
        return "endpoint_method" in self.data and any(
            name in self.changed_data for name in API_FIELDS
        )

    @staticmethod
    def initial_endpoint(document: Any) -> dict:
        document = document if isinstance(document, dict) else {}
        return {
            "endpoint_enabled": document.get("enabled", False),
            "endpoint_method": str(document.get("method", "GET")).upper(),
            "endpoint_path": document.get("path", ""),
            "endpoint_mode": document.get("mode", "sync"),
            "endpoint_timeout": document.get("timeout"),
            "endpoint_anonymous": document.get("allowAnonymous", False),
            "endpoint_roles": list(document.get("roles") or []),
            "endpoint_output_name": document.get("outputName", "records"),
            "endpoint_error_status": str(document.get("errorStatus", 200)),
            "endpoint_content_type": document.get("contentType", ""),
        }

    @staticmethod
    def role_choices(document: Any) -> list[tuple[str, str]]:
        names = list(Role.objects.values_list("name", flat=True))
        stored = (document.get("roles") or []) if isinstance(document, dict) else []
        names += [name for name in stored if isinstance(name, str) and name not in names]
        return [(name, name) for name in names]

    @staticmethod
    def document(data: dict, stored: Any) -> dict:
        document = {
            key: value
            for key, value in (stored if isinstance(stored, dict) else {}).items()
            if key not in API_FIELDS.values()
        }
        status = data.get("endpoint_error_status") or "200"
        document.update(
            enabled=bool(data.get("endpoint_enabled")),
            method=data.get("endpoint_method") or "GET",
            path=(data.get("endpoint_path") or "").strip(),
            mode=data.get("endpoint_mode") or "sync",
            allowAnonymous=bool(data.get("endpoint_anonymous")),
            roles=list(data.get("endpoint_roles") or []),
            outputName=(data.get("endpoint_output_name") or "").strip() or "records",
            errorStatus=status if status == "phixflow" else int(status),
        )
        if data.get("endpoint_timeout"):
            document["timeout"] = data["endpoint_timeout"]
        if content_type := (data.get("endpoint_content_type") or "").strip():
            document["contentType"] = content_type
        return document
