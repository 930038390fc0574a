"""Alerts API under /api/v1/: alerts/, receivers/, deployments/<id>/slo/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from scaling.alerts import api, openapi  # noqa: F401 - openapi: schemas of the views spectacular cannot read

app_name = "alerts-api"

router = SimpleRouter()
router.register("alerts", api.AlertViewSet, basename="alert")
router.register("receivers", api.ReceiverViewSet, basename="receiver")

urlpatterns = [
    path("deployments/<int:pk>/slo/", api.DeploymentSloView.as_view(), name="deployment-slo"),
    *router.urls,
]
