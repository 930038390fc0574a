"""Advice API: POST traces/ (multipart `file`) keeps a trace; POST advice/ {deployment, trace, hours,
rate_multiplier, spike, slo_seconds, attainment} starts a search (202 with its id); GET advice/ and
advice/{id}/ show status, progress (0-1) and, when done, the result; POST advice/{id}/cancel/.
Any role may ask for advice: it changes nothing on a cluster."""

from __future__ import annotations

from django.db import transaction
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Role
from accounts.scope import scope_require
from advice import services, tasks
from advice.models import AdviceRun, TraceUpload
from fleet.models import ModelDeployment


class SpikeSerializer(serializers.Serializer):
    multiplier = serializers.FloatField()
    start_seconds = serializers.IntegerField(required=False, default=3600)
    ramp_seconds = serializers.IntegerField(required=False, default=600)
    duration_seconds = serializers.IntegerField(required=False, default=1800)


class AdviceRequestSerializer(serializers.Serializer):
    deployment = serializers.PrimaryKeyRelatedField(queryset=ModelDeployment.objects.select_related("cluster"))
    trace = serializers.PrimaryKeyRelatedField(
        queryset=TraceUpload.objects.all(), allow_null=True, required=False, default=None
    )
    hours = serializers.FloatField(allow_null=True, required=False, default=None)
    rate_multiplier = serializers.FloatField(required=False, default=1.0)
    spike = SpikeSerializer(allow_null=True, required=False, default=None)
    slo_seconds = serializers.FloatField(allow_null=True, required=False, default=None)
    attainment = serializers.FloatField(required=False, default=0.99)

    def to_internal_value(self, data):
        unknown = set(data) - set(self.fields) if hasattr(data, "keys") else set()
        if unknown:
            raise serializers.ValidationError({k: ["unknown field"] for k in sorted(unknown)})
        return super().to_internal_value(data)


class AdviceRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdviceRun
        fields = [
            "id",
            "deployment",
            "trace",
            "hours",
            "rate_multiplier",
            "spike",
            "slo_seconds",
            "attainment",
            "status",
            "progress",
            "error",
            "result",
            "created_at",
            "finished_at",
        ]


class TraceUploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = TraceUpload
        fields = ["id", "name", "size_bytes", "requests", "seconds", "bad_rows", "created_at"]


class AdviceViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = AdviceRunSerializer
    queryset = AdviceRun.objects.all()
    write_role = Role.VIEWER

    def create(self, request, *args, **kwargs):
        body = AdviceRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scope_require(request, data["deployment"])  # a deployment outside the token's scope: 403
        run = services.advice_start(
            user=request.user,
            deployment=data["deployment"],
            trace=data["trace"],
            hours=data["hours"],
            rate_multiplier=data["rate_multiplier"],
            spike=data["spike"],
            slo=data["slo_seconds"],
            attainment=data["attainment"],
            enqueue=lambda run_id: transaction.on_commit(lambda: tasks.advice_run.delay(run_id)),
        )
        return Response({"id": run.id, "status": run.status}, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = services.advice_cancel(run=self.get_object(), user=request.user)
        return Response(AdviceRunSerializer(run).data)


class TraceUploadViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TraceUploadSerializer
    queryset = TraceUpload.objects.order_by("-created_at", "-id")
    write_role = Role.VIEWER

    def create(self, request, *args, **kwargs):
        upload = request.FILES.get("file")
        if upload is None:
            return Response(
                {"file": ['attach the trace as the multipart field "file"']}, status=status.HTTP_400_BAD_REQUEST
            )
        trace = services.trace_upload_create(user=request.user, upload=upload)
        return Response(TraceUploadSerializer(trace).data, status=status.HTTP_201_CREATED)
