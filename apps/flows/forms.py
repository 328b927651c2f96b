"""Admin forms: write-only secrets, checked scripts, validated pipelines."""

import json
import re
from functools import cache, partial
from urllib.parse import urlsplit

from django import forms
from django.urls import reverse_lazy

from apps.core.forms import StrictJSONField
from apps.flows import flow_tests
from apps.flows.api_settings import FlowApi, api_errors
from apps.flows.connection_kinds import KINDS
from apps.flows.engine.templates import template_errors
from apps.flows.models import Connection, Export, Flow, Import, Script
from apps.flows.outbound.auth import SAFE_HEADERS, is_safe_header
from apps.flows.outbound.errors import OutboundError
from apps.flows.outbound.guard import AddressPolicy
from apps.flows.outbound.origin import (
    CREDENTIALS_IN_URL,
    has_user_info,
    literal_origin_problem,
    origin_of,
    shown,
)
from apps.flows.pipeline import pipeline_errors
from apps.flows.sandbox import check_syntax
from apps.flows.schedules import parse_schedule, validate_timezone, zone_names
from apps.flows.step_forms import (
    EndpointFields,
    SecretRowsField,
    StepRowsField,
    VariableRowsField,
    step_choices,
)
from apps.flows.widgets import CodeEditor

MONOSPACE = {"style": "font-family: ui-monospace, Menlo, Consolas, monospace; width: 90%;"}
# RFC 9110: a header name is a token; a value must not break the request (CR, LF, NUL).
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_VALUE_BREAK = re.compile(r"[\r\n\x00]")


class DefaultHeadersField(StrictJSONField):
    """A connection's default headers, of which only the safe-list ones are ever shown back:
    not even a secret one just typed into a form that failed validation."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return ""  # unparsed text may hold a secret header's value
        if isinstance(value, dict):
            value = {name: item for name, item in value.items() if is_safe_header(str(name))}
        return super().prepare_value(value)


class LinesField(forms.Field):
    """A list of text typed one item a line (blank lines and surrounding spaces ignored),
    shown back the same way."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40, **MONOSPACE})

    def __init__(self, *, encoder=None, decoder=None, **kwargs):
        super().__init__(**kwargs)  # a model JSONField offers its encoder: not needed here

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        if isinstance(value, list | tuple):  # the stored list, or the management API's
            if not all(isinstance(item, str) for item in value):
                raise forms.ValidationError("A list of host names or networks.")
            return list(value)
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def has_changed(self, initial, data):
        return self.to_python(initial or []) != self.to_python(data)


def _callable_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


# Whitespace or a control character inside a URL: parsers disagree on what it means.
URL_BREAK = re.compile(r"[\x00-\x20\x7f]")


def _moved(before: str, after: str) -> bool:
    """Whether a URL now leads elsewhere: another origin, or a change that either reading
    cannot place (an origin-less URL the client might still read as one)."""
    old, new = origin_of(before), origin_of(after)
    return old != new or (old is None and before.strip() != after.strip())


class ConnectionForm(forms.ModelForm):
    """Secrets are write-only: never rendered back, kept when left empty.

    Default headers on the safe list are plain; any other is a secret header, encrypted and
    write-only: given with a value it is stored, given as "" it is removed, left out it is
    kept (as a secret left empty is).
    """

    password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    token = forms.CharField(
        label="Bearer token", required=False, widget=forms.PasswordInput(render_value=False)
    )
    api_key = forms.CharField(
        label="API key", required=False, widget=forms.PasswordInput(render_value=False)
    )
    client_secret = forms.CharField(
        label="OAuth client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    clear_secrets = forms.BooleanField(
        label="Clear stored secrets", required=False, help_text="Forget every stored secret."
    )

    REQUIRED = {
        Connection.AuthType.BASIC: ("password",),
        Connection.AuthType.BEARER: ("token",),
        Connection.AuthType.API_KEY_HEADER: ("api_key",),
        Connection.AuthType.OAUTH2: ("client_secret",),
    }

    class Meta:
        model = Connection
        fields = (
            "name",
            "type",
            "base_uri",
            "headers",
            "auth_type",
            "username",
            "header_name",
            "token_url",
            "client_id",
            "scope",
            "allowed_private_hosts",
            "timeout_ms",
            "concurrency",
        )
        field_classes = {"headers": DefaultHeadersField, "allowed_private_hosts": LinesField}
        help_texts = {
            "allowed_private_hosts": "Host names or networks (CIDR) on a private network that "
            "this connection may call, one a line, e.g. erp.internal or 10.1.0.0/16.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_updates: dict[str, str] = {}
        self.stored_headers, self.undecryptable = {}, False
        if "headers" not in self.fields:  # the admin's read-only view: no secret is read
            return
        try:
            # Only which secrets are stored: no value is kept where a report could show it.
            stored = {name for name, value in self.instance.secrets().items() if value}
            self.stored_headers = self.instance.secret_headers() if self.instance.pk else {}
        except ValueError:
            stored, self.undecryptable = set(), True
        for name in Connection.SECRET_FIELDS:
            self.fields[name].help_text = (
                "Stored (hidden). Leave empty to keep it." if name in stored else "Not set."
            )
        self.fields["headers"].help_text = (
            f"Sent with every request. Shown here: {', '.join(SAFE_HEADERS)}. Any other "
            'header is a secret: encrypted, never shown; leave it out to keep it, "" removes '
            "it. "
            + (
                f"Secret headers stored (hidden): {', '.join(sorted(self.stored_headers))}."
                if self.stored_headers
                else "No secret headers stored."
            )
        )
        if self.undecryptable:
            self.fields["clear_secrets"].help_text = (
                "The stored secrets cannot be decrypted (FLOWSITE_ENCRYPTION_KEY changed): "
                "tick this and enter them again."
            )

    def clean(self):
        data = super().clean()
        if self.undecryptable and not data.get("clear_secrets"):
            self.add_error("clear_secrets", self.fields["clear_secrets"].help_text)
            return data
        auth_type = data.get("auth_type")
        if "headers" in data:
            safe = self._take_headers(data, auth_type)
            if "headers" not in self.errors:
                data["headers"] = safe  # only these are stored in plain text
        kept = {} if data.get("clear_secrets") or not self.instance.pk else self.instance.secrets()
        for name in self.REQUIRED.get(auth_type, ()):
            if not data.get(name) and not kept.get(name):
                self.add_error(name, f"Required for {Connection.AuthType(auth_type).label}.")
        if auth_type == Connection.AuthType.OAUTH2:
            for name in ("token_url", "client_id"):
                if not data.get(name):
                    self.add_error(name, "Required for OAuth 2.0 client credentials.")
        if data.get("type") == Connection.Type.HTTP and not data.get("base_uri"):
            self.add_error("base_uri", "Required for an HTTP connection.")
        if auth_type == Connection.AuthType.BASIC and not data.get("username"):
            self.add_error("username", "Required for basic authentication.")
        if auth_type == Connection.AuthType.API_KEY_HEADER:
            self._check_key_header(data.get("header_name") or "")
        if hosts := data.get("allowed_private_hosts"):
            try:  # as every outbound call reads it
                AddressPolicy.from_allowlist(hosts)
            except OutboundError as exc:
                self.add_error("allowed_private_hosts", str(exc))
        for name in self.DESTINATIONS:
            if has_user_info(data.get(name) or ""):
                self.add_error(name, f"{CREDENTIALS_IN_URL}.")
            elif URL_BREAK.search(data.get(name) or ""):
                self.add_error(name, "A URL must not contain spaces or control characters.")
            elif data.get(name) and not _callable_url(data[name]):
                self.add_error(  # it failed every run instead (an outside probe)
                    name, "Give an absolute http:// or https:// URL with a host name."
                )
        for name in (*Connection.SECRET_FIELDS, "username"):
            if HEADER_VALUE_BREAK.search(data.get(name) or ""):
                # The value is not repeated: it is a secret.
                self.add_error(name, "It has a line break or NUL, which no request can carry.")
        if self.instance.pk and not data.get("clear_secrets") and not self.undecryptable:
            self._check_secrets_follow(data)
        return data

    def _check_key_header(self, name: str) -> None:
        if name and not HEADER_NAME.match(name):
            self.add_error("header_name", f"{name!r} is not a valid header name.")
        elif is_safe_header(name):  # an outside probe: the key followed a redirect so
            self.add_error(
                "header_name",
                f"{name} is a header sent on to any host a redirect leads to: the key needs a "
                "name of its own, such as X-API-Key.",
            )

    # Where the stored secrets go: the base URI's origin (every call), the token URL's
    # (the OAuth client secret, and the access token it buys goes to the base URI).
    DESTINATIONS = ("base_uri", "token_url")

    def _check_secrets_follow(self, data: dict) -> None:
        """Stored secrets never follow their connection to another host unseen: a change of
        the base URI's or the token URL's origin must give them again (or clear them).
        Otherwise anyone who may edit connections could read a write-only password by
        pointing the connection at a server of theirs."""
        moved = [
            name
            for name in self.DESTINATIONS
            if name in data and _moved(getattr(self.instance, name) or "", data[name] or "")
        ]
        if not moved:
            return
        given = {name.lower() for name in self.header_updates}
        missing = [
            str(self[name].label)
            for name, value in self.instance.secrets().items()
            if value and not data.get(name)
        ] + [f"secret header {name}" for name in self.stored_headers if name.lower() not in given]
        if not missing:
            return
        for name in moved:
            before = origin_of(getattr(self.instance, name) or "")
            after = shown(origin_of(data[name] or ""))
            self.add_error(
                name,
                f"This now leads to {after}"
                + (f", not to {shown(before)}" if before else "")
                + ": stored secrets are never sent to a new host unless they are given again. "
                f"In the same change, enter again: {', '.join(missing)} (or clear the stored "
                "secrets).",
            )

    def _take_headers(self, data: dict, auth_type) -> dict:
        """The safe headers to store in plain text; the secret ones go to header_updates."""
        headers = data["headers"]
        if headers is None:
            return {}
        if not isinstance(headers, dict) or not all(
            isinstance(value, str) for value in headers.values()
        ):
            self.add_error("headers", "An object of header names and text values.")
            return {}
        for name, value in headers.items():
            if not HEADER_NAME.match(name):
                self.add_error("headers", f"{name!r} is not a valid header name.")
            elif name.lower() == "host":
                self.add_error("headers", "Host is the base URI's: it cannot be set here.")
            elif HEADER_VALUE_BREAK.search(value):
                # The value is not repeated: it may be a secret.
                self.add_error("headers", f"The value of {name} has a line break or NUL.")
        self.header_updates = {n: v for n, v in headers.items() if not is_safe_header(n)}
        safe = {n: v for n, v in headers.items() if is_safe_header(n) and v}
        kept = {} if data.get("clear_secrets") else self.stored_headers
        secret = Connection.merged_headers(kept, self.header_updates)
        managed = self._auth_header(data, auth_type)
        if managed and (taken := [n for n in (*safe, *secret) if n.lower() == managed.lower()]):
            self.add_error(
                "headers",
                f"{taken[0]} is set by the authentication "
                f"({Connection.AuthType(auth_type).label}): remove it here "
                '(a stored secret header with "").',
            )
        return safe

    @staticmethod
    def _auth_header(data: dict, auth_type) -> str | None:
        """The header the authentication writes, which a default header must not repeat."""
        if auth_type == Connection.AuthType.API_KEY_HEADER:
            return data.get("header_name") or "X-API-Key"
        if auth_type in (Connection.AuthType.NONE, None, ""):
            return None
        return "Authorization"

    def save(self, commit=True):
        connection = super().save(commit=False)
        if self.cleaned_data.get("clear_secrets"):
            connection.secrets_encrypted = ""
            connection.secret_headers_encrypted = ""
        connection.set_secrets(
            **{name: self.cleaned_data.get(name) or None for name in Connection.SECRET_FIELDS}
        )
        connection.set_secret_headers(self.header_updates)
        if commit:
            connection.save()
        return connection


class ConnectionAdminForm(ConnectionForm):
    """The admin's connection form, which a builder sees again after an error."""

    def full_clean(self):
        """A form sent back with errors shows no secret typed into it (a password field,
        a secret header): the builder is told which to type again, not left to find them
        gone (an outside probe)."""
        super().full_clean()
        if not self._errors or "headers" not in self.fields:
            return
        typed = [
            str(self.fields[name].label or name)
            for name in Connection.SECRET_FIELDS
            if self.data.get(self.add_prefix(name))
        ] + [f"the header {name}" for name, value in self.header_updates.items() if value]
        if typed:
            self.add_error(
                None,
                f"Not shown again, being secret: {', '.join(typed)}. Type "
                f"{'it' if len(typed) == 1 else 'them'} again before you save.",
            )


class ConnectionWithoutSecretsForm(ConnectionForm):
    """A connection created from a downloaded integration (whose bundle never holds
    secrets): its authentication kind is kept and its secrets are set afterwards, in the
    admin or with PUT/PATCH, where ConnectionForm requires them again."""

    REQUIRED: dict = {}


class TemplatedForm(forms.ModelForm):
    TEMPLATED = ("relative_uri", "query", "headers", "body")

    def clean(self):
        data = super().clean()
        for name in self.TEMPLATED:
            if name in data:
                for message in template_errors(data[name]):
                    self.add_error(name, message)
        for name in ("query", "headers"):
            if name in data and not isinstance(data[name], dict):
                self.add_error(name, "An object of names and values.")
        return data


def _check_relative_uri(form: forms.ModelForm, data: dict) -> None:
    """A relative URI whose literal part leads to another origin than the HTTP connection's
    base URI is refused: the connection's credentials would go there (the client refuses a
    templated one that does when it is called)."""
    connection, relative_uri = data.get("connection"), data.get("relative_uri")
    if connection is None or not relative_uri or connection.type != Connection.Type.HTTP:
        return
    if problem := literal_origin_problem(relative_uri, connection.base_uri):
        form.add_error("relative_uri", problem)


def _check_records(form: forms.ModelForm, data: dict, *, write: bool) -> None:
    """A data tables connection takes `records` settings (an import's write, or an export's
    query), checked by its registered kind; an HTTP one must not have any."""
    connection, config = data.get("connection"), data.get("records")
    if connection is None or "records" not in data:
        return
    if kind := KINDS.get(connection.type):
        for message in (kind.write_errors if write else kind.query_errors)(config):
            form.add_error("records", message)
    elif config:
        form.add_error("records", "Only for a data tables connection; this one is HTTP.")


class ExportForm(TemplatedForm):
    class Meta:
        model = Export
        fields = (
            "name",
            "application",
            "connection",
            "method",
            "relative_uri",
            "query",
            "headers",
            "body",
            "resource_path",
            "paging",
            "page_size",
            "page_size_param",
            "page_param",
            "next_path",
            "cursor_param",
            "max_pages",
            "records",
        )

    def clean(self):
        data = super().clean()
        paging = data.get("paging")
        if paging in (Export.Paging.NEXTLINK, Export.Paging.CURSOR) and not data.get("next_path"):
            self.add_error("next_path", "Where the next link or cursor is in the response.")
        _check_relative_uri(self, data)
        _check_records(self, data, write=False)
        return data


class ImportForm(TemplatedForm):
    class Meta:
        model = Import
        fields = (
            "name",
            "application",
            "connection",
            "method",
            "relative_uri",
            "headers",
            "body",
            "batch_size",
            "records",
        )

    def clean(self):
        data = super().clean()
        _check_relative_uri(self, data)
        _check_records(self, data, write=True)
        return data


class ScriptForm(forms.ModelForm):
    class Meta:
        model = Script
        fields = ("name", "application", "language", "content")
        widgets = {"content": CodeEditor(check_url=reverse_lazy("admin:flows_script_check_syntax"))}

    def clean_content(self):
        # Browsers send a textarea's lines with CR LF: stored as the API stores them (LF).
        content = self.cleaned_data["content"].replace("\r\n", "\n")
        if problem := check_syntax(content):
            raise forms.ValidationError(problem)
        return content


class PrettyJSONField(StrictJSONField):
    """JSON shown indented in a monospace box."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={**MONOSPACE, "rows": 10}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2)


class WriteOnlyJSONField(StrictJSONField):
    """A JSON field whose value is never shown back, not even after an error."""

    def prepare_value(self, value):
        return ""


class FlowForm(EndpointFields, forms.ModelForm):
    secret_variables = WriteOnlyJSONField(
        label="Secret variables",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='Write-only: {"name": "value"} adds or replaces, "" removes; the '
        "values are encrypted and never shown, exported or stored in runs. Steps read them "
        "as {{variables.name}}. Leave empty to keep them as they are.",
    )

    class Meta:
        model = Flow
        fields = (
            "application",
            "name",
            "description",
            "disabled",
            "is_template",
            "page_generators",
            "page_processors",
            "variables",
            "error_flow",
            "skip_retries",
            "capture_for_tests",
            "run_tests_on_save",
            "timeout_ms",
            "schedule",
            "timezone",
            "max_concurrency",
            "concurrency_policy",
            "api",
        )
        field_classes = {
            "page_generators": PrettyJSONField,
            "page_processors": PrettyJSONField,
            "variables": PrettyJSONField,
            "api": PrettyJSONField,
        }

    generator_rows = StepRowsField(
        generator=True,
        label="Page generators",
        help_text="Exports whose pages of records start the flow. None: the flow starts "
        "from one record, the trigger's input.",
    )
    processor_rows = StepRowsField(
        generator=False,
        label="Steps",
        help_text="What happens to each page, in order: a lookup (export), a write "
        "(import), a script or a sub-flow. The response mapping copies fields of a "
        "lookup's or a write's answer into the record: extract → generate, one per line.",
    )
    variable_rows = VariableRowsField(
        label="Variables",
        help_text="Steps read them as {{variables.name}}; a run may override them.",
    )
    save_despite_failing_tests = forms.BooleanField(
        label="Save even if its tests fail",
        required=False,
        help_text="With “Run tests on save” on, a change whose tests fail is refused; tick "
        "this to save it anyway (the management API's ?force=true).",
    )
    secret_variable_rows = SecretRowsField(
        label="Secret variables",
        help_text="Write-only: encrypted, never shown, exported or stored in runs. Steps "
        "read them as {{variables.name}}. Leave a value empty to keep it; ✕ forgets it.",
    )
    # Whether this form replays the flow's tests before a save (the admin's; the management
    # API's save does it in services.save_resource, where ?force=true is read).
    checks_tests = False
    # The JSON documents the rows and fields stand for: "Advanced", validated the same way.
    ROWS = {
        "generator_rows": "page_generators",
        "processor_rows": "page_processors",
        "variable_rows": "variables",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "timezone" not in self.fields:  # the admin's read-only view
            return
        # A picker of IANA names instead of free text (the browser's select searches as
        # one types).
        self.fields["timezone"].widget = forms.Select(
            choices=[(name, name) for name in zone_names()]
        )
        if "run_tests_on_save" in self.fields:
            self.fields["run_tests_on_save"].help_text = (
                "Replay the flow's tests whenever it is saved, here or by the management API, "
                "and refuse a change whose tests fail."
            )
        flow = self.instance
        for rows, document in self.ROWS.items():
            self.fields[rows].initial = getattr(flow, document)
        self.fields["variable_rows"].stored = flow.variables or {}
        try:
            stored_secrets = sorted(flow.secret_variables()) if flow.pk else []
        except ValueError:  # FLOWSITE_ENCRYPTION_KEY changed: they can only be replaced
            stored_secrets = []
        self.fields["secret_variable_rows"].stored = stored_secrets
        self.fields["secret_variable_rows"].initial = stored_secrets
        choices = cache(partial(step_choices, flow.application_id, exclude_flow=flow.pk))
        for rows in ("generator_rows", "processor_rows"):
            self.fields[rows].widget.choices = choices  # read once, when the page is drawn
        self.show_endpoint(flow.api)

    def _post_clean(self):
        """The flow's guard (run_tests_on_save), as the management API's: its tests are
        replayed against the flow as it is about to be saved, and a failing one refuses
        the save unless the builder says otherwise."""
        super()._post_clean()
        flow = self.instance
        if not self.checks_tests or self.errors or not flow_tests.guarded(flow):
            return
        if self.cleaned_data.get("save_despite_failing_tests"):
            return
        if failing := flow_tests.failing(flow):
            names = "; ".join(f"{test['name']}: {test['summary']}" for test in failing)
            self.add_error(
                None,
                f"Not saved: its tests fail ({names}). Fix the flow, or tick “Save even if "
                "its tests fail” under Advanced.",
            )

    def _take_rows(self, data: dict) -> dict[str, str]:
        """Put what the rows and fields say into the documents, unless the builder edited
        the document itself under "Advanced" (doing both is refused). Returns which form
        field stands for each document, for the errors."""
        shown = {}
        for rows, document in self.ROWS.items():
            if data.get(rows) is None or rows not in self.changed_data:
                continue
            if document in self.changed_data:
                self.add_error(
                    document,
                    f"Edit {self.fields[rows].label.lower()} either as rows or as JSON "
                    "(Advanced), not both in one save.",
                )
            elif document not in self.errors:
                data[document] = data[rows]
                shown[document] = rows
        if self.endpoint_edited():
            if "api" in self.changed_data:
                self.add_error(
                    "api", "Edit the API either with its fields or as JSON (Advanced), not both."
                )
            elif "api" not in self.errors:
                data["api"] = EndpointFields.document(data, self.instance.api)
                shown["api"] = "endpoint_path"
        return shown

    def clean(self):
        data = super().clean()
        shown = self._take_rows(data)
        # Each list is checked even when the other one is not valid JSON.
        errors = pipeline_errors(
            data.get("page_generators") or [],
            data.get("page_processors") or [],
            flow_id=self.instance.pk,
            application_id=data["application"].pk if data.get("application") else None,
        )
        for field, messages in errors.items():
            if field in data:
                for message in messages:
                    self.add_error(shown.get(field, field), message)
        if "variables" in data and not isinstance(data["variables"], dict):
            self.add_error("variables", "An object of names and values.")
        self._take_secret_variables(data.get("secret_variables"))
        if secret_updates := data.get("secret_variable_rows"):
            if data.get("secret_variables") not in (None, "", {}):
                self.add_error(
                    "secret_variables",
                    "Edit secret variables either as rows or as JSON (Advanced), not both.",
                )
            else:
                self.instance.set_secret_variables(secret_updates)
        if data.get("error_flow") is not None and data["error_flow"].pk == self.instance.pk:
            self.add_error(
                "error_flow", "A flow cannot be its own error handler: choose another flow."
            )
        if "api" in data:
            self._check_api(data["api"], shown.get("api", "api"))
        return data

    def _take_secret_variables(self, values) -> None:
        if values in (None, "", {}):
            return
        if not isinstance(values, dict) or not all(
            isinstance(value, str | None) for value in values.values()
        ):
            self.add_error(
                "secret_variables", 'An object of names and text values, e.g. {"apiToken": "…"}.'
            )
            return
        self.instance.set_secret_variables(values)

    def clean_schedule(self):
        schedule = self.cleaned_data.get("schedule", "").strip()
        if schedule:
            try:
                parse_schedule(schedule)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return schedule

    def clean_timezone(self):
        try:
            return validate_timezone(self.cleaned_data.get("timezone"))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def _check_api(self, document, field: str) -> None:
        if errors := api_errors(document):
            for message in errors:
                self.add_error(field, message)
            return
        api = FlowApi.of(document)
        if api.enabled and (taken := self.instance.route_conflict(api.method, api.path)):
            self.add_error(field, f"{api.method} {api.path} is already the API of flow {taken}.")


class AdminFlowForm(FlowForm):
    """The flow page's form: its guard replays the flow's tests before a save."""

    checks_tests = True


def json_field(label: str, rows: int, help_text: str = "") -> forms.JSONField:
    return StrictJSONField(
        label=label,
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={**MONOSPACE, "rows": rows}),
        help_text=help_text,
    )


class TestRunForm(forms.Form):
    input = json_field(
        "Sample input",
        6,
        "The trigger's input: the starting record of a flow without page generators.",
    )
    query = json_field(
        "Query parameters", 3, 'As trigger.args.request.query, e.g. {"name": "Leor"}.'
    )
    variables = json_field("Variable overrides", 3)

    def clean(self):
        data = super().clean()
        for name in ("query", "variables"):
            if data.get(name) is not None and not isinstance(data[name], dict):
                self.add_error(name, "An object of names and values.")
        return data


class VariablesForm(forms.Form):
    """A form of the pages that try a saved object: the run's variables."""

    variables = json_field("Variables", 3, "As {{variables.name}} in a flow.")

    def clean(self):
        data = super().clean()
        if data.get("variables") is not None and not isinstance(data["variables"], dict):
            self.add_error("variables", "An object of names and values.")
        return data


class SampleRecordsForm(VariablesForm):
    """…with sample records: a JSON array, or one record as an object."""

    records = StrictJSONField(
        label="Sample records",
        initial=[{"company": "Acme", "rating": "Hot"}],
        widget=forms.Textarea(attrs={**MONOSPACE, "rows": 8}),
        help_text="A JSON array of records (an object is one record).",
    )
    field_order = ("records",)

    def clean(self):
        data = super().clean()
        if isinstance(data.get("records"), dict):
            data["records"] = [data["records"]]
        elif "records" in data and not isinstance(data["records"], list):
            self.add_error("records", "A JSON array of records, or one record as an object.")
        return data


class ScriptTestForm(SampleRecordsForm):
    function = forms.CharField(
        label="Function",
        initial="main",
        max_length=100,
        help_text="The function a flow step calls (its `function`, main by default).",
    )
    field_order = ("records", "function")


class ConnectionTestForm(forms.Form):
    path = forms.CharField(
        label="Path",
        initial="/",
        max_length=2000,
        help_text="Joined to the base URI, as an export's relative URI is: a cheap GET that "
        "needs the credentials (a 'me' or 'ping' endpoint) tells the most.",
    )


class ExportPreviewForm(VariablesForm):
    pass


class ImportDryRunForm(SampleRecordsForm):
    pass


class InstanceForm(forms.Form):
    """A new instance of a template, as the admin asks for it: its name, its variables as
    rows (the template's, to change), and for each connection the template uses, the one
    the instance uses instead, picked by name (services.create_instance checks the rest)."""

    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="Unique in the template's application, e.g. the customer it serves.",
    )
    variable_rows = VariableRowsField(
        label="Variables",
        help_text="The template's variables with this instance's values; steps read them as "
        "{{variables.name}}.",
    )

    def __init__(self, *args, template: Flow, connections: list[Connection], **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        self.connections = connections
        self.fields["variable_rows"].initial = template.variables or {}
        self.fields["variable_rows"].stored = template.variables or {}
        for connection in connections:
            self.fields[self.connection_field(connection.pk)] = forms.ModelChoiceField(
                label=f"Connection for {connection.name}",
                queryset=Connection.objects.filter(type=connection.type).order_by("name"),
                initial=connection.pk,
                help_text=f"The template's steps use {connection.name}; this instance uses "
                "the one picked here.",
            )

    @staticmethod
    def connection_field(pk) -> str:
        return f"connection_{pk}"

    def connection_map(self) -> dict[str, str]:
        """{template's connection id: the instance's} for the connections picked."""
        return {
            str(connection.pk): str(self.cleaned_data[self.connection_field(connection.pk)].pk)
            for connection in self.connections
        }
