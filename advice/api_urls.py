"""Advice API under /api/v1/: advice/, advice/{id}/cancel/, traces/."""

from rest_framework.routers import SimpleRouter

from advice import api

app_name = "advice-api"

router = SimpleRouter()
router.register("advice", api.AdviceViewSet, basename="advice")
router.register("traces", api.TraceUploadViewSet, basename="trace")

urlpatterns = router.urls
