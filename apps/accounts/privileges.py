"""Flowsite's own privileges: Django permissions on the accounts app.

Check them only through `user.has_perm(Privilege.X.perm)` so roles, direct permissions
and superusers all count.
"""

from enum import StrEnum


class Privilege(StrEnum):
    USE_API_KEY = "use_api_key"
    RUN_FLOWS = "run_flows"
    MANAGE_FLOWS = "manage_flows"
    VIEW_EXECUTIONS = "view_executions"
    EXECUTE_OPERATIONS = "execute_operations"
    QUERY_VIEWS = "query_views"

    @property
    def perm(self) -> str:
        return f"accounts.{self.value}"


DESCRIPTIONS = {
    Privilege.USE_API_KEY: "Use API key (authenticate API calls with a key)",
    Privilege.RUN_FLOWS: "Run flows (trigger flow endpoints and runs)",
    Privilege.MANAGE_FLOWS: "Manage flows (create, change and delete flows and resources)",
    Privilege.VIEW_EXECUTIONS: "View executions (read any run, its steps and errors)",
    Privilege.EXECUTE_OPERATIONS: "Execute operations (call Execute() on the surface)",
    Privilege.QUERY_VIEWS: "Query views (call Query() on the surface)",
}

PERMISSIONS = tuple((privilege.value, DESCRIPTIONS[privilege]) for privilege in Privilege)
