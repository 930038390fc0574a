"""PATCH /api/v1/deployments/{id}/autoscaler/ and POST /api/v1/actions/{id}/revert/: autoscaler policy edits.

Thin: the body is the edit in ScaleDeck's words plus `reason` and `dry_run`; the fields are
checked by `scaling.autoscaler_policy` against the live object and the schema (400 naming the
field, nothing stored), and the write is a `policy` action for a worker (scaling/services/policy.py).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers as drf
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from fleet.models import ModelDeployment
from scaling.models import ScaleAction
from scaling.serializers import ScaleActionSerializer
from scaling.services import Actor
from scaling.services.policy import autoscaler_policy_preview, autoscaler_policy_request, autoscaler_policy_revert


class PolicyEditSerializer(drf.Serializer):
    reason = drf.CharField(max_length=500, trim_whitespace=True)
    dry_run = drf.BooleanField(default=False)


def edit_body(autoscaler, edit) -> dict:
    return {
        "autoscaler": {"kind": edit.kind, "name": autoscaler.name},
        "diff": edit.diff,
        "patch": edit.patch,
        "warning": edit.warning or None,
    }


class DeploymentAutoscalerView(APIView):
    """PATCH {fields to change, "reason", "dry_run"}: 200 with the diff and merge patch on a dry run,
    202 with the pending action otherwise."""

    write_role = Role.OPERATOR
    throttle_scope = "scale"

    def patch(self, request, pk: int):
        deployment = get_object_or_404(ModelDeployment.objects.select_related("cluster"), pk=pk)
        self.check_object_permissions(request, deployment)  # a token's scope (accounts/scope.py)
        if not isinstance(request.data, dict):
            raise drf.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        meta = PolicyEditSerializer(data=request.data)
        meta.is_valid(raise_exception=True)
        changes = {k: v for k, v in request.data.items() if k not in ("reason", "dry_run")}
        if meta.validated_data["dry_run"]:
            autoscaler, edit = autoscaler_policy_preview(deployment=deployment, changes=changes)
            return Response({"dry_run": True, **edit_body(autoscaler, edit)}, status=status.HTTP_200_OK)
        action, edit = autoscaler_policy_request(
            deployment=deployment,
            changes=changes,
            reason=meta.validated_data["reason"],
            actor=Actor.of_request(request),
            source=ScaleAction.Source.API,
        )
        action = ScaleAction.objects.select_related("cluster").get(pk=action.pk)
        body = ScaleActionSerializer(action).data
        body["diff"], body["warning"] = edit.diff, edit.warning or None
        return Response(body, status=status.HTTP_202_ACCEPTED)


class RevertSerializer(drf.Serializer):
    reason = drf.CharField(max_length=500, trim_whitespace=True)


class ActionRevertView(APIView):
    """POST {"reason"}: write back what a succeeded policy edit changed; 202 with the revert action."""

    write_role = Role.OPERATOR

    def post(self, request, pk: int):
        original = get_object_or_404(ScaleAction.objects.select_related("deployment", "deployment__cluster"), pk=pk)
        self.check_object_permissions(request, original)
        body = RevertSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revert = autoscaler_policy_revert(
            action=original,
            reason=body.validated_data["reason"],
            actor=Actor.of_request(request),
            source=ScaleAction.Source.API,
        )
        revert = ScaleAction.objects.select_related("cluster").get(pk=revert.pk)
        return Response(ScaleActionSerializer(revert).data, status=status.HTTP_202_ACCEPTED)
