"""URL map. Each app owns its pages (`<app>/urls.py`) and its API (`<app>/api_urls.py`, under /api/v1/)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

import core.openapi  # noqa: F401 - the schema extensions (bearer auth, error bodies, multi-value filters)
from accounts.login import LimitedLoginView
from core.api_root import ApiRootView

urlpatterns = [
    path("accounts/login/", LimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("fleet.api_urls")),
    path("api/v1/", include("scaling.api_urls")),
    path("api/v1/", include("scaling.alerts.api_urls")),
    path("api/v1/", include("costing.api_urls")),
    path("api/v1/", include("mig.api_urls")),
    path("api/v1/", include("advice.api_urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("audit.api_urls")),
    path("api/v1/", include("chatops.api_urls")),
    path("scaling/alerts/", include("scaling.alerts.urls")),
    path("chatops/", include("chatops.urls")),
    path("scaling/", include("scaling.urls")),
    path("costs/", include("costing.urls")),
    path("mig/", include("mig.urls")),
    path("advice/", include("advice.urls")),
    path("", include("accounts.urls")),
    path("", include("audit.urls")),
    path("", include("scaling.deployment_urls")),  # the deployment page's charts, at the page's own path
    path("", include("fleet.urls")),
]
