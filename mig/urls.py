"""MIG planning pages."""

from django.urls import path

from mig import views

app_name = "mig"
urlpatterns = [
    path("deployments/<int:deployment_id>/memory/", views.deployment_memory, name="deployment-memory"),
]
