"""Scaling API under /api/v1/: deployments/<id>/scale/, actions/, prescale-rules/, quotas/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from scaling import api, api_autoscaler, api_deployments, api_timeline, openapi  # noqa: F401 - openapi: schemas

app_name = "scaling-api"

router = SimpleRouter()
router.register("actions", api.ScaleActionViewSet, basename="action")
router.register("prescale-rules", api.PrescaleRuleViewSet, basename="prescale-rule")
router.register("quotas", api.QuotaViewSet, basename="quota")
# Fleet's deployments with their $/hour and, on the detail, why they run this many replicas.
router.register("deployments", api_deployments.DeploymentViewSet, basename="deployment")

urlpatterns = [
    path("deployments/<int:pk>/scale/", api.DeploymentScaleView.as_view(), name="deployment-scale"),
    path(
        "deployments/<int:pk>/autoscaler/",
        api_autoscaler.DeploymentAutoscalerView.as_view(),
        name="deployment-autoscaler",
    ),
    path("actions/<int:pk>/revert/", api_autoscaler.ActionRevertView.as_view(), name="action-revert"),
    path("deployments/<int:pk>/timeline/", api_timeline.DeploymentTimelineView.as_view(), name="deployment-timeline"),
    *router.urls,
]
