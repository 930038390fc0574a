"""Fleet pages. Fragments live beside their page: `<page>/<fragment>/`, named `<page>-<fragment>`."""

from django.urls import path

from fleet import views

app_name = "fleet"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment"),
    path("nodes/", views.nodes, name="nodes"),
    path("nodes/gpu-utilization/", views.nodes_gpu_utilization, name="nodes-gpu-utilization"),
]
