"""Mounted at /api/rest/ (flowsite/urls.py): Flowfinity's Execute() and Query() URLs."""

from django.urls import path

from apps.surface.api import views

urlpatterns = [
    path(
        "execute/<str:application>/<str:operation>",
        views.ExecuteView.as_view(),
        name="surface-execute",
    ),
    path("query/<str:application>/<str:view>", views.QueryView.as_view(), name="surface-query"),
]
