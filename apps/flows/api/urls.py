from rest_framework.routers import SimpleRouter

from apps.flows.api import views

router = SimpleRouter(trailing_slash=False)
router.register("integrations", views.IntegrationViewSet, basename="integration")
router.register("connections", views.ConnectionViewSet, basename="connection")
router.register("exports", views.ExportViewSet, basename="export")
router.register("imports", views.ImportViewSet, basename="import")
router.register("scripts", views.ScriptViewSet, basename="script")
router.register("flows", views.FlowViewSet, basename="flow")

urlpatterns = router.urls
