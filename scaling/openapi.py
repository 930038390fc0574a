"""Schemas of the scaling API's views drf-spectacular cannot read (plain APIViews building their own bodies).

Loaded by scaling/api_urls.py; when a view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from core.openapi import page_of, schema_replaced
from scaling.api_autoscaler import RevertSerializer
from scaling.serializers import ScaleActionSerializer, ScaleRequestSerializer

DryRunBody = inline_serializer(
    name="ScaleDryRun",
    fields={
        "dry_run": serializers.BooleanField(),
        "target": serializers.DictField(),
        "fields": serializers.ListField(child=serializers.CharField()),
        "before": serializers.DictField(),
        "after": serializers.DictField(),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "replicas": serializers.DictField(child=serializers.IntegerField(allow_null=True)),
        "cost_per_hour_usd": serializers.DictField(child=serializers.CharField(allow_null=True)),
        "quota": serializers.JSONField(allow_null=True),
        "pinned": serializers.JSONField(allow_null=True),
        "notes": serializers.ListField(child=serializers.JSONField()),
    },
)


class DeploymentScaleViewSchema(OpenApiViewExtension):
    target_class = "scaling.api.DeploymentScaleView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            post=extend_schema(
                request=ScaleRequestSerializer,
                parameters=[
                    OpenApiParameter(
                        "Idempotency-Key",
                        str,
                        OpenApiParameter.HEADER,
                        description="repeat a request safely: the same key answers the same action",
                    )
                ],
                responses={202: ScaleActionSerializer, 200: OpenApiResponse(DryRunBody, description="dry_run: true")},
            ),
        )


class DeploymentTimelineViewSchema(OpenApiViewExtension):
    target_class = "scaling.api_timeline.DeploymentTimelineView"

    def view_replacement(self):
        row = inline_serializer(
            name="TimelineRow",
            many=True,
            fields={
                "at": serializers.DateTimeField(),
                "kind": serializers.CharField(),
                "object": serializers.CharField(),
                "message": serializers.CharField(),
                "source": serializers.CharField(),
            },
        )
        return schema_replaced(
            self.target_class,
            get=extend_schema(
                parameters=[
                    OpenApiParameter("start", OpenApiTypes.DATETIME),
                    OpenApiParameter("end", OpenApiTypes.DATETIME),
                    OpenApiParameter("limit", int),
                    OpenApiParameter("offset", int),
                ],
                responses=page_of("TimelinePage", row),
            ),
        )


AutoscalerPolicyEdit = {
    "type": "object",
    "description": "The autoscaler fields to change, in ScaleDeck's words, plus `reason` and `dry_run`.",
    "properties": {"reason": {"type": "string", "maxLength": 500}, "dry_run": {"type": "boolean"}},
    "required": ["reason"],
    "additionalProperties": {},
}
AutoscalerPolicyDryRun = inline_serializer(
    name="AutoscalerPolicyDryRun",
    fields={
        "dry_run": serializers.BooleanField(),
        "autoscaler": serializers.DictField(),
        "diff": serializers.JSONField(),
        "patch": serializers.JSONField(),
        "warning": serializers.CharField(allow_null=True),
    },
)


class DeploymentAutoscalerViewSchema(OpenApiViewExtension):
    target_class = "scaling.api_autoscaler.DeploymentAutoscalerView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            patch=extend_schema(
                request={"application/json": AutoscalerPolicyEdit},
                responses={
                    200: OpenApiResponse(AutoscalerPolicyDryRun, description="dry_run: true"),
                    202: OpenApiResponse(
                        ScaleActionSerializer, description="the pending action, with diff and warning"
                    ),
                },
            ),
        )


class ActionRevertViewSchema(OpenApiViewExtension):
    target_class = "scaling.api_autoscaler.ActionRevertView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class, post=extend_schema(request=RevertSerializer, responses={202: ScaleActionSerializer})
        )
