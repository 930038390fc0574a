"""Fleet API under /api/v1/: clusters/ (URL names `fleet-api:cluster-list|detail`).

deployments/ is served by scaling's API (`scaling.api_deployments`) and nodes/ by costing's
(`costing.api_nodes`): each adds what it knows (why, $/hour) to fleet's rows."""

from rest_framework.routers import SimpleRouter

from fleet import api

app_name = "fleet-api"

router = SimpleRouter()
router.register("clusters", api.ClusterViewSet, basename="cluster")

urlpatterns = router.urls
