from django.urls import path
from rest_framework.routers import SimpleRouter

from costing import api, api_nodes, openapi  # noqa: F401 - openapi: schemas of the views spectacular cannot read

router = SimpleRouter()
router.register("prices", api.PriceViewSet, basename="api-price")
router.register("nodes", api_nodes.NodeViewSet, basename="node")  # fleet's nodes with their $/hour

urlpatterns = [
    path("costs/", api.CostView.as_view(), name="api-costs"),
    *router.urls,
]
