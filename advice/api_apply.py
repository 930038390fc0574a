"""POST /api/v1/advice/{id}/apply/ {"candidate": label (default the recommended), "reason", "dry_run"}
(operator): 200 with the changes on a dry run; 202 with the policy action and the pre-scale rules."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from advice.apply import advice_apply, advice_apply_preview, application_json
from advice.models import AdviceRun
from scaling.models import ScaleAction
from scaling.serializers import ScaleActionSerializer
from scaling.services import Actor


class AdviceApplySerializer(serializers.Serializer):
    candidate = serializers.CharField(max_length=300, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    dry_run = serializers.BooleanField(default=False)


AdviceApplication = inline_serializer(
    name="AdviceApplication",
    fields={
        "dry_run": serializers.BooleanField(required=False),
        "candidate": serializers.CharField(),
        "autoscaler": serializers.DictField(),
        "diff": serializers.JSONField(),
        "patch": serializers.JSONField(),
        "warning": serializers.CharField(allow_null=True),
        "prescale_rules": serializers.JSONField(),
        "notes": serializers.ListField(child=serializers.CharField()),
        "action": ScaleActionSerializer(required=False),
        "prescale_rule_ids": serializers.ListField(child=serializers.IntegerField(), required=False),
    },
)


class AdviceApplyView(APIView):
    write_role = Role.OPERATOR
    throttle_scope = "scale"

    @extend_schema(
        request=AdviceApplySerializer,
        responses={
            200: OpenApiResponse(AdviceApplication, description="dry_run: true, nothing written"),
            202: OpenApiResponse(AdviceApplication, description="the pending policy action and the created rules"),
        },
    )
    def post(self, request, pk: int):
        run = get_object_or_404(AdviceRun.objects.select_related("deployment__cluster"), pk=pk)
        self.check_object_permissions(request, run.deployment)  # a token's scope (accounts/scope.py)
        body = AdviceApplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["dry_run"]:
            plan = advice_apply_preview(run=run, label=data.get("candidate"))
            return Response({"dry_run": True, **application_json(plan)}, status=status.HTTP_200_OK)
        plan = advice_apply(
            run=run,
            label=data.get("candidate"),
            reason=data["reason"],
            actor=Actor.of_request(request),
            user=request.user,
            source=ScaleAction.Source.API,
        )
        action = ScaleAction.objects.select_related("cluster").get(pk=plan.action.pk)
        return Response(
            {
                **application_json(plan),
                "action": ScaleActionSerializer(action).data,
                "prescale_rule_ids": [r.pk for r in plan.rules],
            },
            status=status.HTTP_202_ACCEPTED,
        )
