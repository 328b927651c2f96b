from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.flows.models import Application, Timestamped, url_name
from apps.records import locks

# Every record document carries these (Flowfinity's system fields); ExternalTransactionId
# is what Execute() callers send to make a call idempotent. No field may take these names.
SYSTEM_FIELDS = (
    "RecordID",
    "CreatedBy",
    "CreatedOn",
    "ModifiedBy",
    "ModifiedOn",
    "SubmissionId",
    "ExternalTransactionId",
)
# Names that answers put beside a record's values (Execute()'s processId, the records API's
# _recordTypeId): a field of that name would have its value overwritten in the answer.
ANSWER_NAMES = ("processId", "_recordTypeId")


def not_a_system_field(value: str) -> None:
    if value.casefold() in {name.casefold() for name in SYSTEM_FIELDS}:
        raise ValidationError(
            "%(value)s is a system field name; the system fields are: %(names)s.",
            params={"value": value, "names": ", ".join(SYSTEM_FIELDS)},
            code="system_field",
        )


def no_surrounding_spaces(value: str) -> None:
    if value != value.strip():
        raise ValidationError("A name cannot start or end with a space.", code="spaces")


def not_only_digits(value: str) -> None:
    # Database JSON paths read a key of digits as a list index.
    if value.isdigit():
        raise ValidationError("A field name cannot be only digits.", code="digits")


def new_field_name(value: str) -> None:
    """What a new or renamed field's name must also be, beyond its validators (a field that
    has such a name already keeps it: its table stays usable). Found by an outside probe:
    the databases' JSON paths take a key that reads as a number ("-1", "1_0", Arabic-Indic
    digits) for a list index and escape a quote or a backslash in a way SQLite does not
    read back (wrong Query() answers), and answers overwrite ANSWER_NAMES."""
    if value.casefold() in {name.casefold() for name in ANSWER_NAMES}:
        raise ValidationError(
            "%(value)s is a name Flowsite's answers use beside a record's values: %(names)s.",
            params={"value": value, "names": ", ".join(ANSWER_NAMES)},
            code="system_field",
        )
    try:
        int(value)
    except ValueError:
        pass
    else:
        raise ValidationError("A field name cannot read as a number.", code="digits")
    if '"' in value or "\\" in value:
        raise ValidationError(
            "A field name cannot contain a double quote or a backslash.", code="quotes"
        )


class RecordType(Timestamped):
    """A low-code data table of one application: its fields, and the records that hold
    values for them (Flowfinity's record type; `recordType` in the management API)."""

    application = models.ForeignKey(
        Application,
        verbose_name="application",
        on_delete=models.PROTECT,
        related_name="record_types",
        help_text="Operations and views of this application read and write the table.",
    )
    name = models.CharField(
        "name",
        max_length=100,
        validators=[url_name, no_surrounding_spaces],
        help_text="Unique within the application, e.g. Lead.",
    )
    description = models.TextField("description", blank=True)

    class Meta:
        verbose_name = "record type"
        ordering = ("application__name", "name")
        constraints = (
            models.UniqueConstraint(
                fields=("application", "name"), name="records_recordtype_unique_name"
            ),
        )

    def __str__(self) -> str:
        return self.name


class RecordField(models.Model):
    """One field of a record type. Records store its value under its name in `data`;
    the type names are the ones of the recordType document ("long text", "multi-choice")."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        LONG_TEXT = "long text", "Long text"
        NUMBER = "number", "Number"
        INTEGER = "integer", "Integer"
        BOOLEAN = "boolean", "Yes / no"
        DATE = "date", "Date"
        DATETIME = "datetime", "Date and time"
        CHOICE = "choice", "Choice"
        MULTI_CHOICE = "multi-choice", "Multiple choice"
        EMAIL = "email", "Email address"
        URL = "url", "URL"
        JSON = "json", "JSON"

    CHOICE_TYPES = (Type.CHOICE, Type.MULTI_CHOICE)

    record_type = models.ForeignKey(
        RecordType, verbose_name="record type", on_delete=models.CASCADE, related_name="fields"
    )
    name = models.CharField(
        "name",
        max_length=100,
        validators=[no_surrounding_spaces, not_only_digits, not_a_system_field],
        help_text="The key of the value in record documents, e.g. Company.",
    )
    type = models.CharField("type", max_length=16, choices=Type.choices, default=Type.TEXT)
    required = models.BooleanField(
        "required", default=False, help_text="Records cannot be saved without a value."
    )
    choices = models.JSONField(
        "choices",
        default=list,
        blank=True,
        help_text='Choice and multiple-choice fields: the allowed values, e.g. ["Hot", "Warm"].',
    )
    default = models.JSONField(
        "default",
        null=True,
        blank=True,
        help_text="Given to new records that have no value for the field.",
    )
    position = models.PositiveIntegerField(
        "position", default=0, help_text="Fields are shown in this order."
    )

    class Meta:
        verbose_name = "field"
        ordering = ("position", "pk")
        constraints = (
            models.UniqueConstraint(
                fields=("record_type", "name"), name="records_recordfield_unique_name"
            ),
        )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.records.validation import coerce_value

        errors = {}
        if self.type in self.CHOICE_TYPES:
            choices = self.choices
            if (
                not isinstance(choices, list)
                or not choices
                or not all(isinstance(choice, str) and choice.strip() for choice in choices)
            ):
                errors["choices"] = "List the allowed values, as a JSON list of text."
            elif len(set(choices)) != len(choices):
                errors["choices"] = "A value is listed twice."
        elif self.choices:
            errors["choices"] = "Only choice and multiple-choice fields have choices."
        if self.default is not None and "choices" not in errors:
            try:
                coerce_value(self, self.default)
            except ValueError as exc:
                errors["default"] = f"Not a value of this field: {exc}"
        if "choices" not in errors and (misfits := self._stored_misfits(coerce_value)):
            errors["type"] = (
                f"Records hold values of {self.name} that are not {self.get_type_display()} "
                f"values (RecordID {', '.join(map(str, misfits))}): change them first, or "
                "add a field of the new type."
            )  # the table was left with values its type does not allow (an outside probe)
        if errors:
            raise ValidationError(errors)

    def _stored_misfits(self, coerce_value, limit: int = 5) -> list[int]:
        """Records whose stored value of this field does not fit its changed type: the
        first `limit` RecordIDs."""
        if self.pk is None:
            return []
        saved = RecordField.objects.filter(pk=self.pk).values_list("type", "name").first()
        if saved is None or saved[0] == self.type:
            return []
        stored_name = saved[1]  # renamed in the same change: its values are still there
        locks.hold_for_retype(Record._meta.db_table)  # writes validated so far committed
        stored = (
            Record.objects.filter(record_type_id=self.record_type_id)
            .values_list("pk", "data")
            .iterator(chunk_size=2000)
        )
        misfits = []
        for pk, data in stored:
            value = data.get(stored_name) if isinstance(data, dict) else None
            if value is None:
                continue
            try:
                coerce_value(self, value)
            except ValueError:
                misfits.append(pk)
                if len(misfits) == limit:
                    break
        return misfits


class SubmissionCounter(models.Model):
    """The last submission id given to a record of one record type.

    Every create and update of a record takes the next id from this row, locked with
    SELECT … FOR UPDATE inside the transaction that writes the record, as its last write
    (see `services._next_submission_id` and `services.stamp`). The lock is held until that
    transaction commits, so the next writer can only read the counter once the previous one
    has committed: ids are
    handed out in commit order. A reader that asks for `SubmissionId > last seen` can never
    miss a row because a smaller id became visible after a larger one. (SQLite serialises
    writers anyway.) A separate row, not a column of RecordType, so that an admin saving a
    stale RecordType form cannot set the counter back, and so that the lock does not block
    other tables' foreign keys to the record type.
    """

    record_type = models.OneToOneField(
        RecordType,
        verbose_name="record type",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="submission_counter",
    )
    last_value = models.BigIntegerField("last submission id", default=0)

    class Meta:
        verbose_name = "submission counter"

    def __str__(self) -> str:
        return f"{self.record_type_id}: {self.last_value}"


class Record(models.Model):
    """One row of a data table: the values of its record type's fields, by field name.

    `submission_id` changes on every create and update and only grows (per record type):
    incremental sync reads `SubmissionId > last seen`. Write records through
    `apps.records.services`, which validate the data and allocate the id; a record's
    record type cannot be deleted while it has records (empty the table first), so a
    table's data is never lost by deleting its definition.
    """

    record_type = models.ForeignKey(
        RecordType, verbose_name="record type", on_delete=models.PROTECT, related_name="records"
    )
    data = models.JSONField(
        "values", default=dict, blank=True, help_text="The field values, by field name."
    )
    submission_id = models.BigIntegerField(
        "submission id",
        null=True,  # only inside the transaction that writes it (services.stamp)
        editable=False,
        help_text="Grows with every create and update of a record of this type.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="created by",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="modified by",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    modified_at = models.DateTimeField("modified", auto_now=True)

    class Meta:
        ordering = ("record_type_id", "pk")
        constraints = (
            models.UniqueConstraint(
                fields=("record_type", "submission_id"),
                name="records_record_unique_submission_id",
            ),
        )
        indexes = (
            models.Index(fields=("record_type", "id"), name="records_record_type_id"),
            models.Index(fields=("record_type", "created_at"), name="records_record_type_created"),
        )
        # On PostgreSQL, migration 0002 adds a GIN index (jsonb_path_ops) on `data` for the
        # `data @> {...}` equality filters of the selectors.

    def __str__(self) -> str:
        if self.record_type_id is None:
            return "New record"
        return f"{self.record_type} #{self.pk}" if self.pk else f"New {self.record_type}"
