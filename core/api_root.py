"""`GET /api/v1/`: every endpoint of the API, so a bot author (or the browsable API) can start here."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

API_PREFIX = "api/v1/"


def _routes(patterns, prefix: str = "") -> list[str]:
    routes = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            routes.append(route)
    return routes


def api_endpoints() -> list[str]:
    """The API's paths as `/api/v1/deployments/{pk}/scale/`, each once, in URL order."""
    seen: dict[str, None] = {}
    for route in _routes(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX) or route == API_PREFIX:
            continue
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)  # a router's regex route: `(?P<pk>[^/.]+)`
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)  # `<int:pk>` -> `{pk}`
        path = "/" + path.replace("^", "").replace("$", "")
        if "format" in path and "{" in path and "format}" in path:
            continue  # DRF's `.json` suffix routes
        seen.setdefault(path, None)
    return list(seen)


class ApiRootView(APIView):
    """The endpoints of API v1 with links to its schema and documentation."""

    @extend_schema(
        responses=inline_serializer(
            name="ApiRoot",
            fields={
                "schema": serializers.CharField(),
                "docs": serializers.CharField(),
                "endpoints": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "schema": request.build_absolute_uri("/api/schema/"),
                "docs": request.build_absolute_uri("/api/docs/"),
                "endpoints": api_endpoints(),
            }
        )
