"""REST API for bots and scripts: the same services as the pages.

POST deployments/{id}/scale/ (operator), actions/ (read), prescale-rules/ (operator writes),
quotas/ (admin writes). Refusals come back as 400 (bad input, with field errors) or 409 (policy,
with the numbers), through `config.api_errors`.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from fleet.models import ModelDeployment, NamespaceQuota
from scaling import serializers
from scaling.filters import PrescaleRuleFilterSet, ScaleActionFilterSet
from scaling.models import PrescaleRule, ScaleAction
from scaling.services import (
    Actor,
    override_end,
    prescale_rule_create,
    prescale_rule_delete,
    prescale_rule_update,
    quota_update,
    scale_action_request,
)


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not key.strip() or len(key) > 200):
        raise ValidationError({"Idempotency-Key": ["must be 1 to 200 characters"]})
    return key


class DeploymentScaleView(APIView):
    """POST {"replicas", "reason", "mode", "ttl_minutes", "raise_max", "dry_run"}: 202 with the action,
    or 200 with what would be written and its cost for a dry run."""

    write_role = Role.OPERATOR
    throttle_scope = "scale"  # SCALEDECK_THROTTLE_SCALE (accounts/throttles.py)

    def post(self, request, pk: int):
        deployment = get_object_or_404(ModelDeployment.objects.select_related("cluster"), pk=pk)
        self.check_object_permissions(request, deployment)  # a token's scope (accounts/scope.py)
        body = serializers.ScaleRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        action = scale_action_request(
            deployment=deployment,
            replicas=data["replicas"],
            mode=data["mode"],
            reason=data["reason"],
            actor=Actor.of_request(request),
            source=ScaleAction.Source.API,
            ttl_minutes=data["ttl_minutes"],
            raise_max=data["raise_max"],
            dry_run=data["dry_run"],
            idempotency_key=_idempotency_key(request),
        )
        if data["dry_run"]:
            return Response(serializers.dry_run_body(action), status=status.HTTP_200_OK)
        headers = {"Idempotent-Replayed": "true"} if getattr(action, "replayed", False) else {}
        action = ScaleAction.objects.select_related("cluster").get(pk=action.pk)
        return Response(
            serializers.ScaleActionSerializer(action).data, status=status.HTTP_202_ACCEPTED, headers=headers
        )


class ScaleActionViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log, newest first; filter by cluster (name), namespace, deployment (id), actor, status, source.

    POST {id}/end/ {"reason"} (operator) ends an active time-boxed override now: 202 with the restore."""

    serializer_class = serializers.ScaleActionSerializer
    filterset_class = ScaleActionFilterSet
    queryset = ScaleAction.objects.select_related("cluster").order_by("-created_at", "-id")
    write_role = Role.OPERATOR

    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        body = serializers.OverrideEndSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        restore = override_end(
            override=self.get_object(),
            actor=Actor.of_request(request),
            source=ScaleAction.Source.API,
            reason=body.validated_data["reason"],
        )
        restore = ScaleAction.objects.select_related("cluster").get(pk=restore.pk)
        return Response(serializers.ScaleActionSerializer(restore).data, status=status.HTTP_202_ACCEPTED)


class PrescaleRuleViewSet(viewsets.ModelViewSet):
    serializer_class = serializers.PrescaleRuleSerializer
    filterset_class = PrescaleRuleFilterSet  # the rules page's filters
    write_role = Role.OPERATOR
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = PrescaleRule.objects.select_related("deployment").order_by("id")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_object_permissions(self.request, data["deployment"])  # a token's scope
        serializer.instance = prescale_rule_create(
            deployment=data["deployment"],
            cron=data["cron"],
            timezone_name=data.get("timezone", "UTC"),
            min_replicas=data["min_replicas"],
            duration_minutes=data["duration_minutes"],
            enabled=data.get("enabled", True),
            created_by=self.request.user,
            actor=Actor.of_request(self.request),
        )

    def perform_update(self, serializer):
        if "deployment" in serializer.validated_data:
            self.check_object_permissions(self.request, serializer.validated_data["deployment"])
        serializer.instance = prescale_rule_update(
            rule=serializer.instance, actor=Actor.of_request(self.request), **serializer.validated_data
        )

    def perform_destroy(self, instance):
        prescale_rule_delete(rule=instance, actor=Actor.of_request(self.request))


class QuotaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Namespace GPU quotas; PATCH {"hard": {...}, "reason", "force"} answers 202 with the action (admin)."""

    serializer_class = serializers.QuotaSerializer
    write_role = Role.ADMIN
    queryset = NamespaceQuota.objects.alive().select_related("cluster")

    def partial_update(self, request, pk=None):
        quota = self.get_object()
        body = serializers.QuotaPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        action = quota_update(
            quota=quota,
            hard=body.validated_data["hard"],
            reason=body.validated_data["reason"],
            force=body.validated_data["force"],
            actor=Actor.of_request(request),
            source=ScaleAction.Source.API,
            idempotency_key=_idempotency_key(request),
        )
        action = ScaleAction.objects.select_related("cluster").get(pk=action.pk)
        return Response(serializers.ScaleActionSerializer(action).data, status=status.HTTP_202_ACCEPTED)
