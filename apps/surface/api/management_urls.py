"""Mounted at /api/v1/ (flowsite/urls.py): the surface admin resources."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.surface.api import management

router = SimpleRouter(trailing_slash=False)
router.register("operations", management.OperationViewSet, basename="operation")
router.register("views", management.ViewViewSet, basename="view")

urlpatterns = [
    *router.urls,
    path("surface", management.SurfaceConfigurationView.as_view(), name="surface-configuration"),
]
