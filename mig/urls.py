"""MIG planning pages."""

from django.urls import path

from mig import views

app_name = "mig"
urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("plans/new/", views.plan_create, name="plan-create"),
    path("plans/<int:plan_id>/", views.plan_detail, name="plan"),
    path("deployments/<int:deployment_id>/memory/", views.deployment_memory, name="deployment-memory"),
]
