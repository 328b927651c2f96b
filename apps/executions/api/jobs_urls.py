from rest_framework.routers import SimpleRouter

from apps.executions.api.flow_runs import FlowRunsViewSet
from apps.executions.api.jobs import JobViewSet

router = SimpleRouter(trailing_slash=False)
router.register("jobs", JobViewSet, basename="job")
router.register("flows", FlowRunsViewSet, basename="flow-runs")

urlpatterns = router.urls
