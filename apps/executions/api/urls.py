from django.urls import path

from apps.executions.api import views

urlpatterns = [
    path(
        "1/action/<str:application>/<str:flow>/trigger",
        views.TriggerView.as_view(),
        name="flow-trigger",
    ),
    path(
        "1/action/<str:flow>/trigger", views.LegacyTriggerView.as_view(), name="flow-trigger-legacy"
    ),
    path(
        "1/action/<str:application>/<str:flow>/poll/<uuid:process_id>",
        views.PollView.as_view(),
        name="flow-poll",
    ),
    path("resources/<path:path>", views.ResourceView.as_view(), name="flow-resource"),
]
