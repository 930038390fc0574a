from django.urls import path
from rest_framework.routers import SimpleRouter

from costing import api

router = SimpleRouter()
router.register("prices", api.PriceViewSet, basename="api-price")

urlpatterns = [
    path("costs/", api.CostView.as_view(), name="api-costs"),
    *router.urls,
]
