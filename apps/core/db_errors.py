"""What a database error says: a database that cannot be written or reached now (the
operator's to fix, the caller's to retry), and of those a lock waited for too long."""

import re

from django.db import DatabaseError, OperationalError

# OperationalErrors that are defects (a missing migration, bad SQL, a statement too large),
# not the database's state: a 500.
SCHEMA_ERROR = re.compile(
    r"no such (table|column|function)|syntax error|expression tree is too large"
    r"|too many sql variables",
    re.IGNORECASE,
)
# PostgreSQL's states of a database that cannot take writes now, whatever class of error
# the driver gives them: read-only (a replica after a failover), disk full, out of memory,
# too many connections, a lock or a statement waited too long.
UNAVAILABLE_STATES = frozenset({"25006", "53100", "53200", "53300", "55P03", "57014"})
# PostgreSQL's lock_not_available: lock_timeout (DB_LOCK_TIMEOUT_MS) passed.
LOCK_TIMEOUT_STATE = "55P03"


def database_unavailable(exception: BaseException) -> bool:
    """Whether an error says the database cannot be written or reached now (the operator's
    to fix, the caller's to retry), rather than a defect."""
    if not isinstance(exception, DatabaseError):
        return False
    if getattr(exception.__cause__, "sqlstate", None) in UNAVAILABLE_STATES:
        return True
    return isinstance(exception, OperationalError) and not SCHEMA_ERROR.search(str(exception))


def lock_timed_out(exception: BaseException) -> bool:
    """Whether the error is a write lock waited for its whole DB_LOCK_TIMEOUT_MS (another
    transaction, or another program, holds it): trying again at once waits as long again."""
    if not isinstance(exception, OperationalError):
        return False
    if getattr(exception.__cause__, "sqlstate", None) == LOCK_TIMEOUT_STATE:
        return True
    return "database is locked" in str(exception)
