"""MIG API under /api/v1/: mig-plans/, mig-applications/ (URL names `mig-api:<basename>-list|detail`),
deployments/{id}/manifests/, findings/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from mig import api, openapi  # noqa: F401 - openapi: schemas of the views spectacular cannot read

app_name = "mig-api"

router = SimpleRouter()
router.register("mig-plans", api.MigPlanViewSet, basename="mig-plan")
router.register("mig-applications", api.MigApplicationViewSet, basename="mig-application")

urlpatterns = [
    *router.urls,
    path("deployments/<int:pk>/manifests/", api.DeploymentManifestsView.as_view(), name="deployment-manifests"),
    path("findings/", api.FindingsView.as_view(), name="findings"),
    path("findings/<str:finding_id>/dismiss/", api.FindingDismissView.as_view(), name="finding-dismiss"),
]
