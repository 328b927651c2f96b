from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.flows.models import Application, Timestamped, url_name
from apps.records.definitions import view_errors
from apps.records.models import RecordType, no_surrounding_spaces

INTEGRATION_ONLY = {"account_type": "integration"}


class SurfaceConfiguration(models.Model):
    """The one surface configuration (pk 1): whether Execute() and Query() answer at all,
    and which integration accounts may call them. Both are off by default (Flowfinity)."""

    SINGLETON_PK = 1

    execute = models.BooleanField(
        "Execute()",
        default=False,
        help_text="Allow external applications to invoke REST-enabled operations.",
    )
    query = models.BooleanField(
        "Query()",
        default=False,
        help_text="Allow external applications to retrieve REST-enabled views.",
    )
    integration_accounts = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name="integration accounts",
        blank=True,
        related_name="+",
        limit_choices_to=INTEGRATION_ONLY,
        help_text="The dedicated integration accounts that may call the surface. Each also "
        "needs execute_operations or query_views, and the roles an operation or view names.",
    )

    class Meta:
        verbose_name = "surface configuration"
        verbose_name_plural = "surface configuration"

    def __str__(self) -> str:
        return "Surface configuration"

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> "SurfaceConfiguration":
        configuration, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return configuration


def _same_application(errors: dict, application_id, **related) -> None:
    for name, obj in related.items():
        if obj is not None and application_id and obj.application_id != application_id:
            errors[name] = f"Choose a {obj._meta.verbose_name} of the same application."


class Operation(Timestamped):
    """Creates, updates or deletes a record of one record type, and runs a flow with the
    record, in one transaction (Flowfinity's operation, called through Execute())."""

    class Action(models.TextChoices):
        CREATE = "create", "Create a record"
        UPDATE = "update", "Update a record"
        DELETE = "delete", "Delete a record"

    application = models.ForeignKey(
        Application,
        verbose_name="application",
        on_delete=models.PROTECT,
        related_name="operations",
        help_text="Its name is the first segment of the Execute() URL.",
    )
    name = models.CharField(
        "name",
        max_length=100,
        validators=[url_name, no_surrounding_spaces],
        help_text="Unique within the application; the last segment of the Execute() URL.",
    )
    description = models.TextField("description", blank=True)
    record_type = models.ForeignKey(
        RecordType,
        verbose_name="record type",
        on_delete=models.PROTECT,
        related_name="operations",
        help_text="The data table whose records the operation writes.",
    )
    action = models.CharField("action", max_length=8, choices=Action.choices, default=Action.CREATE)
    flow = models.ForeignKey(
        "flows.Flow",
        verbose_name="flow",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="operations",
        help_text="Run with the record as its input, in the same transaction: when it fails, "
        "the record change is rolled back.",
    )
    rest_execute = models.BooleanField(
        "REST Execute()",
        default=False,
        help_text="Allow external code to invoke this operation with the REST API.",
    )
    roles = models.ManyToManyField(
        "accounts.Role",
        verbose_name="roles",
        blank=True,
        related_name="operations",
        help_text="Only members of one of these roles may call it. None: any integration "
        "account of the surface configuration.",
    )

    class Meta:
        verbose_name = "operation"
        ordering = ("application__name", "name")
        constraints = (
            models.UniqueConstraint(
                fields=("application", "name"), name="surface_operation_unique_name"
            ),
        )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        record_type = self.record_type if self.record_type_id else None
        flow = self.flow if self.flow_id else None
        _same_application(errors, self.application_id, record_type=record_type, flow=flow)
        if errors:
            raise ValidationError(errors)


class View(Timestamped):
    """Records of one record type, filtered (by constants or URL parameters) and ordered,
    read through Query() (Flowfinity's view)."""

    application = models.ForeignKey(
        Application,
        verbose_name="application",
        on_delete=models.PROTECT,
        related_name="views",
        help_text="Its name is the first segment of the Query() URL.",
    )
    name = models.CharField(
        "name",
        max_length=100,
        validators=[url_name, no_surrounding_spaces],
        help_text="Unique within the application; the last segment of the Query() URL.",
    )
    description = models.TextField("description", blank=True)
    record_type = models.ForeignKey(
        RecordType,
        verbose_name="record type",
        on_delete=models.PROTECT,
        related_name="views",
        help_text="The data table the view reads.",
    )
    fields = models.JSONField(
        "fields",
        default=list,
        blank=True,
        help_text='The fields in each record, e.g. ["Company", "Rating"]; empty: all of them. '
        "The system fields (RecordID, SubmissionId, …) are always there.",
    )
    filters = models.JSONField(
        "filters",
        default=list,
        blank=True,
        help_text='Every one must hold: [{"field": "Rating", "op": "eq", "parameter": '
        '"rating"}, {"field": "Amount", "op": "gt", "value": 100}]. Operators: eq, ne, lt, '
        "lte, gt, gte, contains, in, isnull. A filter on a parameter the caller leaves out "
        "(and has no default) is not applied.",
    )
    parameters = models.JSONField(
        "URL parameters",
        default=list,
        blank=True,
        help_text='[{"name": "rating", "type": "text", "required": false, "default": null}]',
    )
    ordering = models.JSONField(
        "ordering",
        default=list,
        blank=True,
        help_text='[{"field": "Company", "direction": "asc"}]; empty: by RecordID.',
    )
    rest_query = models.BooleanField(
        "REST API",
        default=False,
        help_text="Allow external code to retrieve this view with Query().",
    )
    roles = models.ManyToManyField(
        "accounts.Role",
        verbose_name="roles",
        blank=True,
        related_name="views",
        help_text="Only members of one of these roles may query it. None: any integration "
        "account of the surface configuration.",
    )

    class Meta:
        verbose_name = "view"
        ordering = ("application__name", "name")
        constraints = (
            models.UniqueConstraint(
                fields=("application", "name"), name="surface_view_unique_name"
            ),
        )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        record_type = self.record_type if self.record_type_id else None
        same: dict[str, str] = {}
        _same_application(same, self.application_id, record_type=record_type)
        for name, message in same.items():
            errors.setdefault(name, []).append(message)
        if record_type is not None:
            found = view_errors(
                record_type.fields.all(),
                fields=self.fields,
                filters=self.filters,
                parameters=self.parameters,
                ordering=self.ordering,
            )
            for where, message in found.items():
                # "filters[0].op" belongs to the model field "filters".
                name = where.split("[", 1)[0].split(".", 1)[0]
                text = message if where == name else f"{where}: {message}"
                errors.setdefault(name, []).append(text)
        if errors:
            raise ValidationError(errors)


class ExecuteReceipt(models.Model):
    """The answer to an Execute() call that carried an ExternalTransactionId: the same id
    from the same account gets this answer again and changes nothing. Written in the
    transaction that applies the change, so the unique constraint decides between
    concurrent calls."""

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="account",
        on_delete=models.CASCADE,
        related_name="+",
    )
    external_transaction_id = models.CharField("ExternalTransactionId", max_length=200)
    operation = models.ForeignKey(
        Operation,
        verbose_name="operation",
        null=True,
        on_delete=models.SET_NULL,
        related_name="receipts",
    )
    status = models.PositiveSmallIntegerField("status code")
    body = models.JSONField("answer", default=dict)
    # A hash of the call's RecordID and values: the same id sent with another record is
    # refused, not answered with the first record (empty on receipts from before).
    request_fingerprint = models.CharField("request fingerprint", max_length=64, blank=True)
    created_at = models.DateTimeField("created", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "Execute() receipt"
        ordering = ("-created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("account", "external_transaction_id"),
                name="surface_receipt_unique_transaction",
            ),
        )

    def __str__(self) -> str:
        return f"{self.external_transaction_id} ({self.status})"
