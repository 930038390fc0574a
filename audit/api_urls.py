"""The audit list under /api/v1/audit/."""

from django.urls import path

from audit import api, openapi  # noqa: F401 - openapi: schemas of the views spectacular cannot read

app_name = "audit-api"

urlpatterns = [path("audit/", api.AuditView.as_view(), name="list")]
