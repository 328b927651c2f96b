"""System checks that read the database (`manage.py check --database default`, and
`make run`'s `serve` at start): stored secrets that FLOWSITE_ENCRYPTION_KEY cannot decrypt,
said at start rather than by the first run that needs them."""

from django.core.checks import Warning
from django.db import DatabaseError

from apps.flows import selectors

MAX_NAMED = 5


def undecryptable_secrets(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    if not databases:  # as Django's own database checks: only when asked to read one
        return []
    try:
        connections, flows = selectors.undecryptable_secrets()
    except DatabaseError:  # not migrated yet, or no database: nothing stored to check
        return []
    warnings = []
    for noun, names, where in (
        ("connection", connections, "Connections"),
        ("flow", flows, "Flows (secretVariables)"),
    ):
        if names:
            named = ", ".join(f'"{name}"' for name in names[:MAX_NAMED])
            more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
            warnings.append(
                Warning(
                    f"The secrets of {len(names)} {noun}(s) ({named}{more}) cannot be "
                    "decrypted with FLOWSITE_ENCRYPTION_KEY: runs that use them fail.",
                    hint="Restore the key they were stored with (comma-separated after the "
                    f"new one, to rotate), or enter the secrets again in the admin's {where}.",
                    id="flowsite.W001" if noun == "connection" else "flowsite.W002",
                )
            )
    return warnings
