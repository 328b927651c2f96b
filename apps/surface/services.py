"""Writes of the integration surface: its configuration, and Execute() — a record change
and the operation's flow in one transaction, at most once per ExternalTransactionId."""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from apps.accounts.models import User
from apps.core.digests import canonical_digest
from apps.executions import launch
from apps.executions.models import Execution
from apps.flows.api_settings import DEFAULT_TIMEOUT_MS
from apps.records import services as records
from apps.records.models import Record
from apps.records.selectors import record_document
from apps.surface.models import ExecuteReceipt, Operation, SurfaceConfiguration

Action = Operation.Action
RECEIPT_WAIT_SECONDS = 30.0


def not_integration_accounts(accounts: Iterable[User]) -> list[str]:
    """Usernames of the accounts that are not of the integration type."""
    return [account.get_username() for account in accounts if not account.is_integration]


@transaction.atomic
def configure_surface(
    *,
    execute: bool | None = None,
    query: bool | None = None,
    integration_accounts: Iterable[User] | None = None,
) -> SurfaceConfiguration:
    """Change the surface configuration; what is not given stays as it is. Only accounts
    of the integration type can be chosen (ValidationError otherwise)."""
    configuration = SurfaceConfiguration.load()
    if execute is not None:
        configuration.execute = execute
    if query is not None:
        configuration.query = query
    configuration.full_clean()
    if integration_accounts is not None:
        accounts = list(integration_accounts)
        if regular := not_integration_accounts(accounts):
            raise ValidationError(
                {
                    "integration_accounts": "Only integration accounts can call the surface; "
                    f"these are not: {', '.join(regular)}."
                }
            )
        configuration.integration_accounts.set(accounts)
    configuration.save()
    return configuration


# --- Execute() ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What Execute() answers: a status code and the record document (and processId)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


class RecordNotFound(LookupError):
    def __init__(self, record_id: int, operation: Operation):
        self.record_id = record_id
        super().__init__(f"Record {record_id} of {operation.record_type} does not exist.")


class OperationGone(LookupError):
    """The operation, or its record type, was deleted while the call ran (or just before,
    while another process still remembered it): the write failed its foreign key."""

    def __init__(self, operation: Operation):
        super().__init__(
            f"Operation {operation.name!r} of application {operation.application.name!r}, "
            "or its record type, was deleted while the call ran; nothing was written."
        )


class FlowFailed(Exception):
    """The operation's flow did not succeed: the record change was rolled back."""

    def __init__(self, run: launch.OperationRun):
        self.run = run
        self.execution = execution = run.execution
        reason = execution.error or f"it ended {execution.status}"
        if not execution.error and execution.num_error:
            reason = f"{execution.num_error} record error(s)"
        super().__init__(reason)

    @property
    def status_code(self) -> int:
        code = self.execution.status_code or 0
        return code if 400 <= code <= 599 else 422


class TransactionIdReused(Exception):
    """The ExternalTransactionId was used by this account for another operation."""

    def __init__(self, receipt: ExecuteReceipt):
        self.receipt = receipt
        name = receipt.operation.name if receipt.operation else "a deleted operation"
        super().__init__(
            f"ExternalTransactionId {receipt.external_transaction_id!r} was already used for "
            f"{name!r}; use a new one for each transaction."
        )


class TransactionIdReusedForAnother(Exception):
    """The ExternalTransactionId was used by this account with another record."""

    def __init__(self, receipt: ExecuteReceipt):
        self.receipt = receipt
        super().__init__(
            f"ExternalTransactionId {receipt.external_transaction_id!r} was already used with "
            "a different RecordID or different values; use a new one for each transaction "
            "(the same one only to send the same call again)."
        )


def fingerprint(record_id: int | None, data: Mapping[str, Any]) -> str:
    """The call as far as it matters to a repeat: its RecordID and values."""
    values = {k: v for k, v in data.items() if k not in ("ExternalTransactionId", "RecordID")}
    return canonical_digest([record_id, values])


def _receipt(user: User, key: str) -> ExecuteReceipt | None:
    return (
        ExecuteReceipt.objects.select_related("operation")
        .filter(account=user, external_transaction_id=key)
        .first()
    )


def _replay(receipt: ExecuteReceipt, operation: Operation, called: str) -> Answer:
    if receipt.operation_id != operation.pk:
        raise TransactionIdReused(receipt)
    if receipt.request_fingerprint and receipt.request_fingerprint != called:
        # It answered 201 with the first record: the second was never written (a probe).
        raise TransactionIdReusedForAnother(receipt)
    return Answer(receipt.status, receipt.body, replayed=True)


def execute_operation(
    *,
    operation: Operation,
    user: User,
    record_id: int | None,
    data: Mapping[str, Any],
    external_transaction_id: str = "",
    client_ip: str | None = None,
) -> Answer:
    """Apply the operation to a record and run its flow with the record, in one
    transaction: when the flow fails, nothing is changed (FlowFailed).

    With an ExternalTransactionId, a receipt of the answer is inserted in that same
    transaction; of two concurrent calls with one id, the database lets one insert it and
    the other gets the stored answer, so the change is applied once. Only changes that
    were applied leave a receipt: a call refused as invalid can be corrected and sent
    again with the same id.
    """
    key = external_transaction_id
    called = fingerprint(record_id, data) if key else ""
    if key and (receipt := _receipt(user, key)):
        return _replay(receipt, operation, called)
    receipt = None
    try:
        with transaction.atomic():
            if key:
                # First, so that a concurrent twin waits here (PostgreSQL: on the unique
                # index until we commit; SQLite: for the write lock) before doing any work.
                receipt = ExecuteReceipt.objects.create(
                    account=user,
                    external_transaction_id=key,
                    operation=operation,
                    status=0,
                    request_fingerprint=called,
                )
            answer = _apply(operation, user, record_id, data, client_ip)
            if key:
                receipt.status, receipt.body = answer.status, answer.body
                receipt.save(update_fields=["status", "body"])
            return answer
    except IntegrityError:
        if not Operation.objects.filter(pk=operation.pk).exists():
            raise OperationGone(operation) from None
        if not key or receipt is not None:  # not a twin's receipt: a real conflict
            raise
        return _replay(_wait_for_receipt(user, key), operation, called)
    except FlowFailed as failed:
        # The run is kept, with its steps and errors; the record change it saw is undone.
        failed.run.record_after_rollback()
        raise


def _wait_for_receipt(user: User, key: str) -> ExecuteReceipt:
    """The twin's receipt: committed already when our insert failed on PostgreSQL; looked
    for a little longer in case a database answers before the winner's commit shows."""
    deadline = time.monotonic() + RECEIPT_WAIT_SECONDS
    while True:
        receipt = _receipt(user, key)
        if receipt is not None and receipt.status:
            return receipt
        if time.monotonic() > deadline:
            raise IntegrityError(f"ExternalTransactionId {key!r}: no receipt to answer with.")
        time.sleep(0.05)


def _apply(
    operation: Operation,
    user: User,
    record_id: int | None,
    data: Mapping[str, Any],
    client_ip: str | None,
) -> Answer:
    record_type = operation.record_type
    fields = list(record_type.fields.all())
    # With a flow to run, the record gets its submission id after the flow, as the last
    # write: the record type's counter stays locked from then until the commit, so other
    # writers of the record type do not wait for the flow (the flow sees the record's
    # previous SubmissionId, or null for a new record).
    stamp_now = operation.flow_id is None
    if operation.action == Action.CREATE:
        record = records.create_record(
            record_type=record_type, data=data, user=user, stamp=stamp_now
        )
        status = 201
    else:
        record = (
            _loaded(Record.objects).filter(record_type=record_type, pk=record_id).first()
            if record_id is not None
            else None
        )
        if record is None:
            raise RecordNotFound(record_id, operation)
        if operation.action == Action.UPDATE:
            record = records.update_record(record=record, data=data, user=user, stamp=stamp_now)
        status = 200
    document = record_document(record, fields)
    if operation.action == Action.DELETE:
        records.delete_record(record=record)
    if operation.flow_id is None:
        return Answer(status, document)
    execution = _run_flow(operation, user, document, client_ip)
    if operation.action != Action.DELETE:
        records.stamp(record)
        # The flow may have written the record it was given: answer it as committed.
        fresh = _loaded(Record.objects).filter(pk=record.pk).first()
        document = record_document(fresh or record, fields)
    return Answer(status, {**document, "processId": str(execution.pk)})


def _loaded(records: QuerySet) -> QuerySet:
    """Records with what their documents show (CreatedBy, ModifiedBy) read in one query."""
    return records.select_related("record_type", "created_by", "modified_by")


def _run_flow(
    operation: Operation, user: User, document: dict[str, Any], client_ip: str | None
) -> Execution:
    flow = operation.flow
    # The run's rows are invisible to other connections until the transaction commits, so
    # a heartbeat thread could only wait for locks we hold: keep the deadline below the
    # length that starts one (executions.services.execute).
    timeout_ms = min(
        DEFAULT_TIMEOUT_MS["sync"],
        settings.FLOWSITE_MAX_SYNC_TIMEOUT_MS,
        settings.FLOWSITE_STALE_EXECUTION_SECONDS * 500,
    )
    if connection.vendor == "sqlite":
        # The run holds SQLite's only write lock: end it well before other writers give
        # up waiting for it (the busy timeout).
        busy_ms = int(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5) * 1000)
        timeout_ms = min(timeout_ms, busy_ms // 2)
    run = launch.operation_run(
        flow,
        caller=launch.Caller(user=user, client_ip=client_ip),
        document=document,
        options={"operation": operation.name, "action": operation.action},
        timeout_ms=timeout_ms,
    )
    if not run.succeeded:
        raise FlowFailed(run)
    run.record()
    return run.execution
