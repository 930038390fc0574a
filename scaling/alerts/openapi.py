"""Schemas of the SLO API's view drf-spectacular cannot read (plain APIViews building their own bodies).

Loaded by scaling/alerts/api_urls.py; when a view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers

from core.openapi import schema_replaced

DeploymentSlo = inline_serializer(
    name="DeploymentSlo", fields={"ttft_p95_seconds": serializers.FloatField(), "attainment": serializers.FloatField()}
)
DeploymentSloPatch = inline_serializer(
    name="DeploymentSloPatch",
    fields={
        "ttft_p95_seconds": serializers.FloatField(required=False, allow_null=True),
        "attainment": serializers.FloatField(required=False),
        "reason": serializers.CharField(required=False),
    },
)


class DeploymentSloViewSchema(OpenApiViewExtension):
    target_class = "scaling.alerts.api.DeploymentSloView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            get=extend_schema(responses=DeploymentSlo),
            patch=extend_schema(request=DeploymentSloPatch, responses=DeploymentSlo),
        )
