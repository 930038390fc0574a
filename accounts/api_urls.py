"""Accounts API under /api/v1/: tokens/."""

from rest_framework.routers import SimpleRouter

from accounts import api, openapi  # noqa: F401 - openapi: schemas of the views spectacular cannot read

app_name = "accounts-api"

router = SimpleRouter()
router.register("tokens", api.ApiTokenViewSet, basename="token")

urlpatterns = router.urls
