"""Schemas of the MIG API's views drf-spectacular cannot read (plain APIViews building their own bodies).

Loaded by mig/api_urls.py; when a view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from core.openapi import schema_replaced
from mig.serializers import DismissRequestSerializer

Finding = inline_serializer(
    name="Finding",
    many=True,
    fields={
        "id": serializers.CharField(),
        "cluster": serializers.CharField(),
        "namespace": serializers.CharField(),
        "deployment": serializers.IntegerField(),
        "deployment_name": serializers.CharField(),
        "kind": serializers.CharField(),
        "severity": serializers.CharField(),
        "message": serializers.CharField(),
        "evidence": serializers.JSONField(),
        "dismissed": serializers.JSONField(required=False),
    },
)


class FindingsViewSchema(OpenApiViewExtension):
    target_class = "mig.api.FindingsView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            get=extend_schema(
                parameters=[
                    OpenApiParameter("kind", str),
                    OpenApiParameter("cluster", str),
                    OpenApiParameter("dismissed", bool),
                ],
                responses=inline_serializer(
                    name="FindingList", fields={"count": serializers.IntegerField(), "results": Finding}
                ),
            ),
        )


class FindingDismissViewSchema(OpenApiViewExtension):
    target_class = "mig.api.FindingDismissView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            post=extend_schema(
                request=DismissRequestSerializer,
                responses={
                    201: inline_serializer(
                        name="FindingDismissal",
                        fields={
                            "id": serializers.CharField(),
                            "kind": serializers.CharField(),
                            "by": serializers.CharField(),
                            "reason": serializers.CharField(),
                            "at": serializers.DateTimeField(),
                        },
                    )
                },
            ),
        )


class DeploymentManifestsViewSchema(OpenApiViewExtension):
    target_class = "mig.api.DeploymentManifestsView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            get=extend_schema(
                parameters=[OpenApiParameter("autoscaler", str, enum=["keda", "hpa"])],
                responses={
                    (200, "application/yaml"): OpenApiResponse(
                        {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
                        description="A YAML stream, one document per Kubernetes object.",
                    )
                },
            ),
        )
