from django.urls import path, re_path

from apps.flowtests.api import views

JOB = r"(?P<pk>[0-9a-fA-F-]{36})"

urlpatterns = [
    re_path(rf"^jobs/{JOB}/saveAsTest$", views.SaveAsTestView.as_view(), name="job-save-as-test"),
    re_path(
        rf"^jobs/{JOB}/rerunForTest$", views.RerunForTestView.as_view(), name="job-rerun-for-test"
    ),
    path("flows/<int:pk>/tests", views.FlowTestsView.as_view(), name="flow-tests"),
    path("flows/<int:pk>/tests/run", views.RunFlowTestsView.as_view(), name="flow-tests-run"),
    path("flows/<int:pk>/tests/<str:test_id>", views.FlowTestView.as_view(), name="flow-test"),
]
