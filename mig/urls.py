"""MIG planning pages."""

from django.urls import path

from mig import views

app_name = "mig"
urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("plans/new/", views.plan_create, name="plan-create"),
    path("plans/<int:plan_id>/", views.plan_detail, name="plan"),
    path("plans/<int:plan_id>/apply/", views.plan_apply, name="plan-apply"),
    path("applications/<int:application_id>/", views.application_detail, name="application"),
    path("applications/<int:application_id>/stop/", views.application_stop, name="application-stop"),
    path("applications/<int:application_id>/resume/", views.application_resume, name="application-resume"),
    path("doctor/", views.doctor_page, name="doctor"),
    path("doctor/dismiss/", views.finding_dismiss_view, name="doctor-dismiss"),
    path("deployments/<int:deployment_id>/memory/", views.deployment_memory, name="deployment-memory"),
]
