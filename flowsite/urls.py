from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from apps.core import views as core_views
from apps.executions.api.urls import PhixFlowInstance, action_patterns

register_converter(PhixFlowInstance, "phixflow_instance")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    # The catalog shows each reader what it may call (SERVE_PUBLIC off, and the hooks).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include("apps.accounts.api.urls")),
    path("api/v1/", include("apps.flowtests.api.urls")),
    path("api/v1/", include("apps.executions.api.jobs_urls")),
    path("api/v1/", include("apps.flows.api.urls")),
    path("api/v1/", include("apps.records.api.urls")),
    path("api/v1/", include("apps.surface.api.management_urls")),
    path("api/rest/", include("apps.surface.urls")),
    path("api/", include("apps.executions.api.urls")),
    # PhixFlow's URLs as it prints them: /phixflow/api/1/action/… (FLOWSITE_PHIXFLOW_INSTANCE).
    path(
        "<phixflow_instance:instance>/api/",
        include((action_patterns, "executions"), namespace="phixflow"),
    ),
]
