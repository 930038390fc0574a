"""Schemas for the API views drf-spectacular cannot read (plain APIViews building their own bodies).

Said here, beside the other schema extensions, rather than in each view module: these views
answer dicts built by services, and the shapes below are what those services return. When a
view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from costing.serializers import CostQuerySerializer, CostRowSerializer
from mig.serializers import DismissRequestSerializer
from scaling.serializers import ScaleActionSerializer, ScaleRequestSerializer


def _page_of(name: str, row, **extra) -> serializers.Serializer:
    return inline_serializer(name=name, fields={
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": row,
        **extra,
    })


def _replaced(view_class, **methods):
    return extend_schema_view(**methods)(type(view_class.__name__, (view_class,), {"__doc__": view_class.__doc__}))


class CostViewSchema(OpenApiViewExtension):
    target_class = "costing.api.CostView"

    def view_replacement(self):
        return _replaced(self.target_class, get=extend_schema(
            parameters=[CostQuerySerializer, OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
            responses=_page_of("CostPage", CostRowSerializer(many=True), group_by=serializers.CharField(),
                               start=serializers.DateTimeField(), end=serializers.DateTimeField(),
                               currency=serializers.CharField()),
        ))


DryRunBody = inline_serializer(name="ScaleDryRun", fields={
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
})


class DeploymentScaleViewSchema(OpenApiViewExtension):
    target_class = "scaling.api.DeploymentScaleView"

    def view_replacement(self):
        return _replaced(self.target_class, post=extend_schema(
            request=ScaleRequestSerializer,
            parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                                         description="repeat a request safely: the same key answers the same action")],
            responses={202: ScaleActionSerializer, 200: OpenApiResponse(DryRunBody, description="dry_run: true")},
        ))


Finding = inline_serializer(name="Finding", many=True, fields={
    "id": serializers.CharField(), "cluster": serializers.CharField(), "namespace": serializers.CharField(),
    "deployment": serializers.IntegerField(), "deployment_name": serializers.CharField(),
    "kind": serializers.CharField(), "severity": serializers.CharField(), "message": serializers.CharField(),
    "evidence": serializers.JSONField(), "dismissed": serializers.JSONField(required=False),
})


class FindingsViewSchema(OpenApiViewExtension):
    target_class = "mig.api.FindingsView"

    def view_replacement(self):
        return _replaced(self.target_class, get=extend_schema(
            parameters=[OpenApiParameter("kind", str), OpenApiParameter("cluster", str),
                        OpenApiParameter("dismissed", bool)],
            responses=inline_serializer(name="FindingList", fields={
                "count": serializers.IntegerField(), "results": Finding}),
        ))


class FindingDismissViewSchema(OpenApiViewExtension):
    target_class = "mig.api.FindingDismissView"

    def view_replacement(self):
        return _replaced(self.target_class, post=extend_schema(
            request=DismissRequestSerializer,
            responses={201: inline_serializer(name="FindingDismissal", fields={
                "id": serializers.CharField(), "kind": serializers.CharField(), "by": serializers.CharField(),
                "reason": serializers.CharField(), "at": serializers.DateTimeField()})},
        ))


class DeploymentManifestsViewSchema(OpenApiViewExtension):
    target_class = "mig.api.DeploymentManifestsView"

    def view_replacement(self):
        return _replaced(self.target_class, get=extend_schema(
            parameters=[OpenApiParameter("autoscaler", str, enum=["keda", "hpa"])],
            responses={(200, "application/yaml"): OpenApiResponse(
                {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
                description="A YAML stream, one document per Kubernetes object.")},
        ))


DeploymentSlo = inline_serializer(name="DeploymentSlo", fields={
    "ttft_p95_seconds": serializers.FloatField(), "attainment": serializers.FloatField()})
DeploymentSloPatch = inline_serializer(name="DeploymentSloPatch", fields={
    "ttft_p95_seconds": serializers.FloatField(required=False, allow_null=True),
    "attainment": serializers.FloatField(required=False),
    "reason": serializers.CharField(required=False)})


class DeploymentSloViewSchema(OpenApiViewExtension):
    target_class = "scaling.alerts.api.DeploymentSloView"

    def view_replacement(self):
        return _replaced(self.target_class, get=extend_schema(responses=DeploymentSlo),
                         patch=extend_schema(request=DeploymentSloPatch, responses=DeploymentSlo))


class DeploymentTimelineViewSchema(OpenApiViewExtension):
    target_class = "scaling.api_timeline.DeploymentTimelineView"

    def view_replacement(self):
        row = inline_serializer(name="TimelineRow", many=True, fields={
            "at": serializers.DateTimeField(), "kind": serializers.CharField(), "object": serializers.CharField(),
            "message": serializers.CharField(), "source": serializers.CharField()})
        return _replaced(self.target_class, get=extend_schema(
            parameters=[OpenApiParameter("start", OpenApiTypes.DATETIME),
                        OpenApiParameter("end", OpenApiTypes.DATETIME),
                        OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
            responses=_page_of("TimelinePage", row),
        ))


class AuditViewSchema(OpenApiViewExtension):
    target_class = "accounts.api.AuditView"

    def view_replacement(self):
        from accounts.serializers import AuditRowSerializer  # H15a's, landing while this is written

        return _replaced(self.target_class, get=extend_schema(
            parameters=[OpenApiParameter("kind", str, many=True), OpenApiParameter("actor", str, many=True),
                        OpenApiParameter("object", str), OpenApiParameter("since", OpenApiTypes.DATETIME),
                        OpenApiParameter("until", OpenApiTypes.DATETIME),
                        OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
            responses=_page_of("AuditPage", AuditRowSerializer(many=True)),
        ))


class ApiTokenViewSetSchema(OpenApiViewExtension):
    """Its queryset is the caller's own tokens; the schema generator has no caller."""

    target_class = "accounts.api.ApiTokenViewSet"

    def view_replacement(self):
        from accounts.models import ApiToken

        base = self.target_class

        class Described(base):
            def get_queryset(self):
                if getattr(self, "swagger_fake_view", False):
                    return ApiToken.objects.none()
                return super().get_queryset()

        Described.__name__ = base.__name__
        Described.__doc__ = base.__doc__
        return Described


AutoscalerPolicyEdit = {
    "type": "object",
    "description": "The autoscaler fields to change, in ScaleDeck's words, plus `reason` and `dry_run`.",
    "properties": {"reason": {"type": "string", "maxLength": 500}, "dry_run": {"type": "boolean"}},
    "required": ["reason"],
    "additionalProperties": {},
}
AutoscalerPolicyDryRun = inline_serializer(name="AutoscalerPolicyDryRun", fields={
    "dry_run": serializers.BooleanField(),
    "autoscaler": serializers.DictField(),
    "diff": serializers.JSONField(),
    "patch": serializers.JSONField(),
    "warning": serializers.CharField(allow_null=True),
})


class DeploymentAutoscalerViewSchema(OpenApiViewExtension):
    target_class = "scaling.api_autoscaler.DeploymentAutoscalerView"

    def view_replacement(self):
        return _replaced(self.target_class, patch=extend_schema(
            request={"application/json": AutoscalerPolicyEdit},
            responses={200: OpenApiResponse(AutoscalerPolicyDryRun, description="dry_run: true"),
                       202: OpenApiResponse(ScaleActionSerializer,
                                            description="the pending action, with diff and warning")},
        ))


class ActionRevertViewSchema(OpenApiViewExtension):
    target_class = "scaling.api_autoscaler.ActionRevertView"

    def view_replacement(self):
        from scaling.api_autoscaler import RevertSerializer  # H10's, landing while this is written

        return _replaced(self.target_class, post=extend_schema(request=RevertSerializer,
                                                               responses={202: ScaleActionSerializer}))
