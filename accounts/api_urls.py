"""Accounts API under /api/v1/: tokens/ and audit/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts import api

app_name = "accounts-api"

router = SimpleRouter()
router.register("tokens", api.ApiTokenViewSet, basename="token")

urlpatterns = [path("audit/", api.AuditView.as_view(), name="audit"), *router.urls]
