"""Fleet API under /api/v1/: clusters/, deployments/, nodes/ (URL names `fleet-api:<basename>-list|detail`)."""

from rest_framework.routers import SimpleRouter

from fleet import api

app_name = "fleet-api"

router = SimpleRouter()
router.register("clusters", api.ClusterViewSet, basename="cluster")
router.register("deployments", api.DeploymentViewSet, basename="deployment")
router.register("nodes", api.NodeViewSet, basename="node")

urlpatterns = router.urls
