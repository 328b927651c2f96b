from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import NoReverseMatch, reverse
from simple_history.models import HistoricalRecords

from apps.flows import crypto
from apps.flows.api_settings import FlowApi, api_errors

# Application and flow names are path segments of their flows' URLs.
url_name = RegexValidator(r"^[^/]+$", "A name is part of URLs and cannot contain '/'.")


class Timestamped(models.Model):
    """When a resource was created and last changed (Celigo's createdAt/lastModified)."""

    created_at = models.DateTimeField("created", auto_now_add=True)
    modified_at = models.DateTimeField("modified", auto_now=True)

    class Meta:
        abstract = True


class Application(Timestamped):
    """A namespace of flows (PhixFlow application, Celigo integration); its name is in URLs."""

    name = models.CharField(
        "name",
        max_length=100,
        unique=True,
        validators=[url_name],
        help_text="Used in flow URLs (%20 for spaces).",
    )
    description = models.TextField("description", blank=True)
    error_flow = models.ForeignKey(
        "Flow",
        verbose_name="error handler",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Runs with the job document when a run of one of its flows fails or "
        "completes with errors (unless the flow names its own).",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Connection(Timestamped):
    """Where exports read and imports write: an HTTP API with its authentication.

    Its credentials go only to its base URI's origin (scheme, host and port): see
    apps.flows.outbound.origin. Default headers on the safe list (SAFE_HEADERS: Accept,
    Content-Type, …) are plain `headers`; every other one may carry a key, so it is kept
    encrypted in `secret_headers_encrypted` and never shown back.
    """

    class Type(models.TextChoices):
        HTTP = "http", "HTTP API"
        RECORDS = "records", "Flowsite data tables"

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        BASIC = "basic", "Basic (username and password)"
        BEARER = "bearer", "Bearer token"
        API_KEY_HEADER = "api_key_header", "API key in a header"
        OAUTH2 = "oauth2_client_credentials", "OAuth 2.0 client credentials"

    SECRET_FIELDS = ("password", "token", "api_key", "client_secret")
    MAX_CONCURRENCY = 50  # Celigo's own maximum for http.concurrencyLevel
    CONCURRENCY_MESSAGE = (
        f"Enter a concurrency level from 1 to {MAX_CONCURRENCY}: how many calls a lookup may "
        "make at once on this connection (1: one after another)."
    )

    name = models.CharField("name", max_length=100, unique=True)
    type = models.CharField("type", max_length=16, choices=Type.choices, default=Type.HTTP)
    base_uri = models.CharField(
        "base URI",
        max_length=500,
        blank=True,
        help_text="e.g. https://crm.example.com/api (HTTP connections).",
    )
    headers = models.JSONField(
        "default headers",
        default=dict,
        blank=True,
        help_text="Sent with every request. Headers on the safe list (Accept, Content-Type, "
        "User-Agent, …) are shown; any other is encrypted and write-only.",
    )
    secret_headers_encrypted = models.TextField(
        "secret headers",
        blank=True,
        editable=False,
        help_text="Encrypted; never shown. Default headers not on the safe list.",
    )
    auth_type = models.CharField(
        "authentication", max_length=32, choices=AuthType.choices, default=AuthType.NONE
    )
    username = models.CharField("username", max_length=200, blank=True)
    header_name = models.CharField(
        "API key header", max_length=100, blank=True, default="X-API-Key"
    )
    token_url = models.CharField("OAuth token URL", max_length=500, blank=True)
    client_id = models.CharField("OAuth client id", max_length=200, blank=True)
    scope = models.CharField("OAuth scope", max_length=500, blank=True)
    secrets_encrypted = models.TextField(
        "secrets", blank=True, editable=False, help_text="Encrypted; never shown."
    )
    allowed_private_hosts = models.JSONField(
        "allowed private hosts",
        default=list,
        blank=True,
        help_text="Host names or networks (CIDR) on a private network that this connection "
        'may call, e.g. ["erp.internal", "10.1.0.0/16"].',
    )
    timeout_ms = models.PositiveIntegerField(
        "timeout (ms)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Per call. Empty: FLOWSITE_OUTBOUND_TIMEOUT_MS.",
    )
    concurrency = models.SmallIntegerField(
        "concurrency level",
        default=1,
        validators=[
            MinValueValidator(1, CONCURRENCY_MESSAGE),
            MaxValueValidator(MAX_CONCURRENCY, CONCURRENCY_MESSAGE),
        ],
        help_text="How many calls a lookup may make at once on this connection, within a "
        "page, keeping the records' order (Celigo's concurrency level). 1: one after "
        "another. Ask the API's owner what it allows. HTTP connections only.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def secrets(self) -> dict[str, str]:
        return crypto.decrypt_json(self.secrets_encrypted)

    def set_secrets(self, **values: str | None) -> None:
        """Update the given secrets; None leaves one as it is, "" clears it."""
        current = self.secrets()
        for name, value in values.items():
            if name not in self.SECRET_FIELDS:
                raise ValueError(f"{name!r} is not a connection secret")
            if value is None:
                continue
            if value:
                current[name] = value
            else:
                current.pop(name, None)
        self.secrets_encrypted = crypto.encrypt_json(current)

    def has_secret(self, name: str) -> bool:
        return bool(self.secrets().get(name))

    def secret_headers(self) -> dict[str, str]:
        return crypto.decrypt_json(self.secret_headers_encrypted)

    def set_secret_headers(self, values: dict[str, str]) -> None:
        """Update the given secret headers; "" removes one, the others stay. Names are
        case-insensitive: a new spelling replaces the stored one."""
        merged = self.merged_headers(self.secret_headers(), values)
        self.secret_headers_encrypted = crypto.encrypt_json(merged)

    @staticmethod
    def merged_headers(current: dict[str, str], updates: dict[str, str]) -> dict[str, str]:
        merged = dict(current)
        for name, value in updates.items():
            for stored in [key for key in merged if key.lower() == name.lower()]:
                del merged[stored]
            if value:
                merged[name] = value
        return merged

    def default_headers(self) -> dict[str, str]:
        """Every header sent with each request: the safe ones and the secret ones."""
        return {**(self.headers or {}), **self.secret_headers()}


class Owned(Timestamped):
    """A resource of one application (Celigo's _integrationId), or shared when empty."""

    application = models.ForeignKey(
        Application,
        verbose_name="application",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: any application's flows may use it. Set: only that application's.",
    )

    class Meta:
        abstract = True


class HttpMethod(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class Export(Owned):
    """Reads records from a connection, page by page (a page generator or a lookup)."""

    class Paging(models.TextChoices):
        NONE = "none", "No paging"
        PAGE = "page", "Page number"
        NEXTLINK = "nextlink", "Next link in the response"
        CURSOR = "cursor", "Cursor in the response"

    name = models.CharField("name", max_length=100)
    connection = models.ForeignKey(
        Connection, verbose_name="connection", on_delete=models.PROTECT, related_name="exports"
    )
    method = models.CharField("method", max_length=8, choices=HttpMethod.choices, default="GET")
    relative_uri = models.CharField(
        "relative URI",
        max_length=1000,
        blank=True,
        help_text="Appended to the connection's base URI; templates allowed, e.g. "
        "/leads?status={{variables.status}}",
    )
    query = models.JSONField("query parameters", default=dict, blank=True)
    headers = models.JSONField("headers", default=dict, blank=True)
    body = models.JSONField(
        "body", null=True, blank=True, help_text="JSON body; templates allowed."
    )
    resource_path = models.CharField(
        "resource path",
        max_length=200,
        blank=True,
        help_text="Where the records are in the response, e.g. data.items. Empty: the whole "
        "response (a list, or one object).",
    )
    paging = models.CharField("paging", max_length=16, choices=Paging.choices, default=Paging.NONE)
    page_size = models.PositiveIntegerField("page size", null=True, blank=True)
    page_size_param = models.CharField(
        "page size parameter", max_length=100, blank=True, default="pageSize"
    )
    page_param = models.CharField(
        "page parameter",
        max_length=100,
        blank=True,
        default="page",
        help_text="Page number paging: the query parameter carrying the page number.",
    )
    next_path = models.CharField(
        "next link / cursor path",
        max_length=200,
        blank=True,
        help_text="Next-link or cursor paging: where the next URL or cursor is in the "
        "response, e.g. links.next.",
    )
    cursor_param = models.CharField(
        "cursor parameter", max_length=100, blank=True, default="cursor"
    )
    max_pages = models.PositiveIntegerField(
        "maximum pages", default=10_000, help_text="A guard against endless paging."
    )
    records = models.JSONField(
        "data table query",
        default=dict,
        blank=True,
        help_text='On a data tables connection: {"_recordTypeId": "3", "filters": [{"field": '
        '"Rating", "op": "eq", "value": "{{variables.rating}}"}], "ordering": [{"field": '
        '"Company", "direction": "asc"}]}. Page size: the page size above (100).',
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Import(Owned):
    """Writes records to a connection, one request per record or per batch."""

    name = models.CharField("name", max_length=100)
    connection = models.ForeignKey(
        Connection, verbose_name="connection", on_delete=models.PROTECT, related_name="imports"
    )
    method = models.CharField("method", max_length=8, choices=HttpMethod.choices, default="POST")
    relative_uri = models.CharField(
        "relative URI", max_length=1000, blank=True, help_text="e.g. /leads/{{record.id}}"
    )
    headers = models.JSONField("headers", default=dict, blank=True)
    body = models.JSONField(
        "body mapping",
        null=True,
        blank=True,
        help_text='Empty: the record itself. Else a JSON template, e.g. {"name": '
        '"{{record.company}}"}. In batches the body is a list of these.',
    )
    batch_size = models.PositiveIntegerField(
        "batch size",
        default=1,
        validators=[MinValueValidator(1)],
        help_text="1: one request per record. More: one request per batch (a JSON list).",
    )
    records = models.JSONField(
        "data table write",
        default=dict,
        blank=True,
        help_text='On a data tables connection: {"_recordTypeId": "3", "action": "create" | '
        '"update" | "upsert" | "delete", "keyField": "Email" (upsert)}. update and delete '
        "find the record by its RecordID.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Script(Owned):
    """JavaScript run in the sandbox: `main(ctx)` (or a named function) per page."""

    class Language(models.TextChoices):
        JAVASCRIPT = "javascript", "JavaScript"

    name = models.CharField("name", max_length=100)
    language = models.CharField(
        "language", max_length=16, choices=Language.choices, default=Language.JAVASCRIPT
    )
    content = models.TextField(
        "source",
        help_text="function main(ctx) { … } — ctx has trigger, records, variables, processId. "
        "debug(…) logs a line; error(message, status) fails the run.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


def default_time_zone() -> str:
    """A new flow's schedule runs in the server's TIME_ZONE until the builder picks one."""
    return settings.TIME_ZONE


class Flow(Timestamped):
    """Page generators feed pages of records through page processors, in order."""

    class ConcurrencyPolicy(models.TextChoices):
        QUEUE = "queue", "Queue"
        REJECT = "reject", "Reject (409)"

    application = models.ForeignKey(
        Application, verbose_name="application", on_delete=models.PROTECT, related_name="flows"
    )
    name = models.CharField(
        "name", max_length=100, validators=[url_name], help_text="Unique in its application."
    )
    description = models.TextField("description", blank=True)
    disabled = models.BooleanField("disabled", default=False)
    skip_retries = models.BooleanField(
        "skip retries", default=False, help_text="Do not retry transient HTTP failures."
    )
    capture_for_tests = models.BooleanField(
        "record runs for tests",
        default=False,
        help_text="Record every run's exchanges (outbound calls, data-table reads and writes, "
        "sub-flow results), so that any run can be saved as a flow test. Test runs always "
        "record.",
    )
    run_tests_on_save = models.BooleanField(
        "run tests on save",
        default=False,
        help_text="Replay the flow's tests whenever the management API saves it, and refuse "
        "the change (400 listing them) when some fail, unless ?force=true.",
    )
    page_generators = models.JSONField(
        "page generators",
        default=list,
        blank=True,
        help_text='Exports that produce the records: [{"_exportId": "3"}]. Empty: the run '
        "starts from one record, its input.",
    )
    page_processors = models.JSONField(
        "page processors",
        default=list,
        blank=True,
        help_text='Steps in order, e.g. [{"type": "script", "_scriptId": "2"}, '
        '{"type": "import", "_importId": "4", "proceedOnFailure": true}].',
    )
    variables = models.JSONField(
        "variables", default=dict, blank=True, help_text="{{variables.x}} in templates."
    )
    secret_variables_encrypted = models.TextField(
        "secret variables",
        blank=True,
        editable=False,
        help_text="Encrypted; write-only. Steps read them as {{variables.name}}.",
    )
    error_flow = models.ForeignKey(
        "self",
        verbose_name="error handler",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Runs with the job document when a run of this flow fails or completes "
        "with errors; never for its own runs.",
    )
    api = models.JSONField("API settings", default=dict, blank=True)
    schedule = models.CharField("schedule", max_length=100, blank=True)
    timezone = models.CharField("time zone", max_length=64, blank=True, default=default_time_zone)
    timeout_ms = models.PositiveIntegerField(
        "run timeout (ms)",
        default=3_600_000,
        validators=[MinValueValidator(1)],
        help_text="Deadline of a run that no caller waits for (schedule, Run now).",
    )
    # Derived from `api` on clean/save so a resource call finds its flow by an index.
    api_enabled = models.BooleanField("API enabled", default=False, editable=False)
    api_method = models.CharField("API method", max_length=8, blank=True, editable=False)
    api_path = models.CharField("API path", max_length=300, blank=True, editable=False)
    # Axway's formulas and formula instances: a template is built and tried like any flow
    # but never answers calls; its instances share its pipeline, API method and path, each
    # with its own name, variables and connections (apps.flows.services.create_instance).
    is_template = models.BooleanField(
        "template",
        default=False,
        help_text="A template never answers calls itself: its API path is served by its "
        "instances, each with its own variables and connections (Axway's formula).",
    )
    template_flow = models.ForeignKey(
        "self",
        verbose_name="template",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="instances",
        help_text="The template this flow is an instance of; Update from template copies "
        "its steps and API again.",
    )
    connection_map = models.JSONField(
        "connections",
        default=dict,
        blank=True,
        editable=False,
        help_text="An instance's connections: {template's connection id: this instance's "
        "connection id}; a connection left out is the template's.",
    )
    max_concurrency = models.PositiveIntegerField(
        "maximum concurrent runs", default=0, help_text="0: unlimited."
    )
    concurrency_policy = models.CharField(
        "when at the maximum",
        max_length=8,
        choices=ConcurrencyPolicy.choices,
        default=ConcurrencyPolicy.QUEUE,
    )
    celigo_fields = models.JSONField(
        "Celigo fields",
        default=dict,
        blank=True,
        help_text="Fields of a Celigo flow document that Flowsite keeps as given and returns "
        "(free, _templateId, _sourceId, autoResolveMatchingTraceKeys, "
        "runPageGeneratorsInParallel, aliases, _flowGroupingId); it does not act on them.",
    )
    # Who changed what and when (GET /api/v1/flows/<id>/audit); the derived API columns
    # repeat `api` and are left out.
    history = HistoricalRecords(
        excluded_fields=("api_enabled", "api_method", "api_path", "secret_variables_encrypted")
    )

    class Meta:
        ordering = ("application__name", "name")
        constraints = [
            models.UniqueConstraint(fields=("application", "name"), name="flow_name_per_app"),
            models.UniqueConstraint(
                fields=("api_method", "api_path"),
                # Instances share their template's route (Flow.route_conflict checks it).
                condition=models.Q(api_enabled=True, template_flow__isnull=True)
                & ~models.Q(api_path=""),
                name="flow_api_route",
                violation_error_message="Another enabled flow already answers this API method "
                "and path.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application.name} / {self.name}" if self.application_id else self.name

    def save(self, *args, **kwargs):
        self._derive_api_columns()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        self._derive_api_columns()
        if self.is_template and self.template_flow_id:
            raise ValidationError(
                {"is_template": "An instance cannot be a template: clone it into a new flow."}
            )
        if not self.is_template and self.pk and self.instances.exists():
            raise ValidationError(
                {
                    "is_template": "This template has instances: delete them before it "
                    "stops being a template."
                }
            )

    @property
    def family(self) -> int | None:
        """A template and its instances share one API route: the template's id."""
        return self.template_flow_id or self.pk

    def route_conflict(self, method: str, path: str) -> "Flow | None":
        """Another enabled flow answering this API method and path, other than this flow's
        template or that template's instances (its family, which shares one route)."""
        if not path:
            return None
        others = Flow.objects.filter(api_enabled=True, api_method=method, api_path=path)
        if self.pk:
            others = others.exclude(pk=self.pk)
        if family := self.family:
            others = others.exclude(models.Q(pk=family) | models.Q(template_flow_id=family))
        return others.select_related("application").first()

    def secret_variables(self) -> dict[str, str]:
        try:
            return crypto.decrypt_json(self.secret_variables_encrypted)
        except crypto.Undecryptable as exc:
            raise crypto.Undecryptable(f'Flow "{self.name}" (secretVariables): {exc}') from None

    def set_secret_variables(self, values: dict[str, str | None]) -> None:
        """Update the given secret variables; "" or None removes one, the others stay."""
        current = self.secret_variables()
        for name, value in values.items():
            if value in (None, ""):
                current.pop(name, None)
            else:
                current[name] = value
        self.secret_variables_encrypted = crypto.encrypt_json(current)

    @property
    def trigger_url(self) -> str:
        """PhixFlow's trigger URL of the flow (served by the executions app)."""
        names = {"application": self.application.name, "flow": self.name}
        try:
            return reverse("flow-trigger", kwargs=names)
        except NoReverseMatch:  # a "/" in a name: shown, though no URL can reach it
            return "/api/1/action/{}/{}/trigger".format(*(quote(n) for n in names.values()))

    @property
    def api_settings(self) -> FlowApi:
        # Checked in full when saved; per call only what FlowApi.of relies on.
        usable = not api_errors(self.api, check_schema=False)
        return FlowApi.of(self.api) if usable else FlowApi()

    def _derive_api_columns(self) -> None:
        settings = self.api_settings
        self.api_enabled = settings.enabled
        self.api_method = settings.method if settings.path else ""
        self.api_path = settings.path
