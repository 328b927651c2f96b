from rest_framework.routers import SimpleRouter

from apps.records.api import views

router = SimpleRouter(trailing_slash=False)
router.register("recordTypes", views.RecordTypeViewSet, basename="recordtype")
router.register("records", views.RecordViewSet, basename="record")

urlpatterns = router.urls
