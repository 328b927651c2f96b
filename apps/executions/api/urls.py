import uuid

from django.conf import settings
from django.urls import path, register_converter

from apps.executions.api import views


class ProcessId:
    """A run's process id in either case: GUIDs are often upper-cased (.NET clients), and
    /api/v1/jobs/<id> takes both (Django's uuid converter only lower case)."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(ProcessId, "process_id")


class PhixFlowInstance:
    """The instance segment of PhixFlow's URLs as printed (`/phixflow/api/1/…`): it matches
    only FLOWSITE_PHIXFLOW_INSTANCE, read per request, and nothing when that is empty."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        if not settings.FLOWSITE_PHIXFLOW_INSTANCE or value != settings.FLOWSITE_PHIXFLOW_INSTANCE:
            raise ValueError(value)
        return value

    def to_url(self, value: str) -> str:
        return value


# PhixFlow's URLs: under /api/ and, as PhixFlow prints them, under /<instance>/api/.
action_patterns = [
    path(
        "1/action/<str:application>/<str:flow>/trigger",
        views.TriggerView.as_view(),
        name="flow-trigger",
    ),
    path(
        "1/action/<str:flow>/trigger", views.LegacyTriggerView.as_view(), name="flow-trigger-legacy"
    ),
    path(
        "1/action/<str:application>/<str:flow>/poll/<process_id:process_id>",
        views.PollView.as_view(),
        name="flow-poll",
    ),
]

urlpatterns = [
    *action_patterns,
    path("resources/<path:path>", views.ResourceView.as_view(), name="flow-resource"),
]
