"""Advice API under /api/v1/: advice/, advice/{id}/cancel/, traces/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from advice import api, api_apply

app_name = "advice-api"

router = SimpleRouter()
router.register("advice", api.AdviceViewSet, basename="advice")
router.register("traces", api.TraceUploadViewSet, basename="trace")

urlpatterns = [
    path("advice/<int:pk>/apply/", api_apply.AdviceApplyView.as_view(), name="advice-apply"),
    *router.urls,
]
