"""Scaling's parts of fleet's deployment page served at the page's own paths (/deployments/<id>/...),
named `deployment:<part>`: they combine fleet's rows with costing's prices, which fleet does not import.
(Scaling's own fragments of that page, under /scaling/, are in `scaling/urls.py`.)"""

from django.urls import path

from scaling import chart_views

app_name = "deployment"

urlpatterns = [
    path("deployments/<int:deployment_id>/charts/", chart_views.deployment_charts, name="charts"),
]
