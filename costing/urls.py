from django.urls import path

from costing import views

app_name = "costing"
urlpatterns = [
    path("", views.costs, name="costs"),
    path(
        "deployments/<int:deployment_id>/per-million-tokens/",
        views.deployment_cost_per_million,
        name="deployment-cost-per-million",
    ),
]
