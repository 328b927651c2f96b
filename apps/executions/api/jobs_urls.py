from rest_framework.routers import SimpleRouter

from apps.executions.api.jobs import JobViewSet

router = SimpleRouter(trailing_slash=False)
router.register("jobs", JobViewSet, basename="job")

urlpatterns = router.urls
