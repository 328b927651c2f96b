"""The flows of the OpenAPI catalog as its reader may call them.

`only_callable_flows` is a drf-spectacular postprocessing hook, registered after
`apps.flows.openapi.add_flow_operations`: a reader who may manage flows (or `manage.py
spectacular`, which has no reader) sees every API flow; any other reader sees the flows the
front door would let it call (`launch.may_call`: run_flows, the flow's roles, a key's
restriction; anonymous readers the flows that allow anonymous calls), and the generic
flow-calling endpoints only when at least one remains.
"""

from apps.accounts.models import ApiKey
from apps.accounts.permissions import may_manage
from apps.executions import launch
from apps.flows.models import Flow

FLOW_ID = "x-flowsite-flow-id"
GENERIC_TAG = "flows as APIs"  # the trigger, legacy trigger, resource and poll endpoints


def caller_of(request) -> launch.Caller:
    api_key = request.auth if isinstance(getattr(request, "auth", None), ApiKey) else None
    return launch.Caller(user=request.user, api_key=api_key)


def only_callable_flows(result, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: leave out the flows the reader may not call."""
    if request is None or may_manage(request):
        return result
    paths = result.get("paths", {})
    ids = {
        operation[FLOW_ID]
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict) and FLOW_ID in operation
    }
    caller = caller_of(request)
    flows = Flow.objects.filter(pk__in=ids).select_related("application")
    callable_ids = {flow.pk for flow in flows if launch.may_call(flow, flow.api_settings, caller)}

    def keep(operation) -> bool:
        if not isinstance(operation, dict):
            return True
        if FLOW_ID in operation:
            return operation[FLOW_ID] in callable_ids
        return bool(callable_ids) or GENERIC_TAG not in operation.get("tags", [])

    for path in list(paths):
        paths[path] = {method: op for method, op in paths[path].items() if keep(op)}
        if not any(isinstance(op, dict) for op in paths[path].values()):
            del paths[path]
    return result
