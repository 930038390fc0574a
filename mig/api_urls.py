"""MIG API under /api/v1/: mig-plans/, mig-applications/ (URL names `mig-api:<basename>-list|detail`),
and deployments/{id}/manifests/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from mig import api

app_name = "mig-api"

router = SimpleRouter()
router.register("mig-plans", api.MigPlanViewSet, basename="mig-plan")
router.register("mig-applications", api.MigApplicationViewSet, basename="mig-application")

urlpatterns = [
    *router.urls,
    path("deployments/<int:pk>/manifests/", api.DeploymentManifestsView.as_view(), name="deployment-manifests"),
]
