"""Advice pages under /advice/."""

from django.urls import path

from advice import views

app_name = "advice"

urlpatterns = [
    path("deployments/<int:deployment_id>/", views.advice_new, name="new"),
    path("<int:run_id>/", views.advice_run, name="run"),
    path("<int:run_id>/cancel/", views.advice_cancel, name="cancel"),
    path("<int:run_id>/apply/", views.advice_apply_page, name="apply"),
]
