"""MIG API under /api/v1/: mig-plans/ (URL names `mig-api:<basename>-list|detail`)."""

from rest_framework.routers import SimpleRouter

app_name = "mig-api"

router = SimpleRouter()

urlpatterns = router.urls
