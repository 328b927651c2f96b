"""Why a run was not started or changed: the front door's domain errors.

They carry no HTTP: the API layer (apps/executions/api/answers.py) gives each its status,
the admin shows its message, the schedule logs it.
"""

from typing import Any


class Refused(Exception):
    """A run was refused; `message` says what to do about it, `details` add facts."""

    code = "refused"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details


class NotAuthenticated(Refused):
    code = "not-authenticated"

    def __init__(self):
        super().__init__(
            "Authentication credentials were not provided: send Authorization: Bearer <API key>."
        )


class NotFound(Refused):
    code = "not-found"


class AmbiguousFlow(Refused):
    code = "ambiguous-flow"


class MethodNotAllowed(Refused):
    code = "method-not-allowed"


class PrivilegeMissing(Refused):
    code = "missing-privilege"

    def __init__(self, privilege):
        super().__init__(
            f"Your account lacks the privilege '{privilege.value}'. Ask an administrator to "
            "grant it through a role.",
            privilege=privilege.value,
        )
        self.privilege = privilege


class RoleRequired(Refused):
    code = "role-required"


class KeyRestricted(Refused):
    code = "key-restricted"


class FlowDisabled(Refused):
    code = "flow-disabled"


class FlowIsTemplate(Refused):
    """A template (Axway's formula) never answers calls: its instances do."""

    code = "flow-is-template"


class AmbiguousInstance(Refused):
    """Several instances of a template answer one path: the caller names one."""

    code = "instance-required"


class InvalidInput(Refused):
    code = "invalid-input"


class InvalidTimeout(Refused):
    code = "invalid-timeout"


class InvalidIdempotencyKey(Refused):
    code = "invalid-idempotency-key"


class IdempotencyKeyReused(Refused):
    code = "idempotency-key-reused"


class ConcurrencyLimit(Refused):
    code = "concurrency-limit"


class BrokerUnavailable(Refused):
    code = "broker-unavailable"


class TooManyWaiting(Refused):
    """Every web thread that may wait for a free slot of a flow is waiting already."""

    code = "too-many-waiting"


class NotRetriable(Refused):
    code = "not-retriable"


class SecretFieldsMissing(Refused):
    """A re-run needs values that were redacted when the first run was stored."""

    code = "secret-fields-missing"


class AlreadyFinished(Refused):
    code = "job-finished"
