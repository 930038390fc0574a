"""Chat-bot API under /api/v1/: summary/."""

from django.urls import path

from chatops import api

app_name = "chatops-api"

urlpatterns = [
    path("summary/", api.SummaryView.as_view(), name="summary"),
]
