"""REST front doors: alerts (read; acknowledge and silence for operators), receivers (admin),
and a deployment's SLO (operators). Refusals are ApplicationErrors -> 400 with the field."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from fleet.models import ModelDeployment
from scaling.alerts.filters import AlertFilterSet, ReceiverFilterSet
from scaling.alerts.models import Alert, Receiver
from scaling.alerts.receivers import receiver_create, receiver_delete, receiver_update
from scaling.alerts.services import alert_acknowledge, alert_silence, deployment_slo, deployment_slo_update
from scaling.services.actors import Actor


class AlertSerializer(serializers.ModelSerializer):
    deployment = serializers.SerializerMethodField()
    node = serializers.CharField(source="node_name")
    cluster = serializers.CharField(source="cluster.name")

    class Meta:
        model = Alert
        fields = ["id", "rule", "severity", "state", "deployment", "node", "cluster", "started_at", "ended_at",
                  "summary", "acknowledged_at", "acknowledged_by"]  # fmt: skip

    def get_deployment(self, alert: Alert) -> str | None:
        d = alert.deployment
        return f"{d.namespace}/{d.name}" if d else None


class ReceiverSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Receiver
        fields = ["id", "name", "kind", "url", "url_file", "severities", "namespaces", "events"]

    def get_url(self, receiver: Receiver) -> str:
        return receiver.url_hint  # write-only: never the whole URL


def _body(request, allowed: set[str]) -> dict:
    data = request.data
    if not isinstance(data, dict):
        raise ValidationError({"detail": "send a JSON object"})
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    return dict(data)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """GET alerts/ filtered like the alerts page (`?state=firing`, `?severity=page`, `?namespace=`, ...);
    POST {id}/acknowledge/, {id}/silence/ (operator)."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet
    write_role = Role.OPERATOR
    queryset = Alert.objects.select_related("deployment", "cluster")

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        alert = self.get_object()
        data = _body(request, {"reason"})
        alert_acknowledge(alert=alert, actor=Actor.of_request(request), reason=data.get("reason", ""))
        alert.refresh_from_db()
        return Response(AlertSerializer(alert).data)

    @action(detail=True, methods=["post"])
    def silence(self, request, pk=None):
        alert = self.get_object()
        data = _body(request, {"minutes", "reason"})
        silence = alert_silence(alert=alert, actor=Actor.of_request(request), minutes=data.get("minutes"),
                                reason=data.get("reason", ""))  # fmt: skip
        return Response({"alert": alert.id, "until": silence.until, "reason": silence.reason},
                        status=status.HTTP_201_CREATED)  # fmt: skip


class ReceiverViewSet(viewsets.ModelViewSet):
    """Admins only, reads included: a receiver's filters say who gets paged."""

    serializer_class = ReceiverSerializer
    filterset_class = ReceiverFilterSet  # the receivers page's filters
    queryset = Receiver.objects.all()
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    http_method_names = ["get", "post", "patch", "delete"]
    FIELDS = {"name", "kind", "url", "url_file", "severities", "namespaces", "events"}

    def create(self, request, *args, **kwargs):
        receiver = receiver_create(data=_body(request, self.FIELDS), actor=Actor.of_request(request))
        return Response(ReceiverSerializer(receiver).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        receiver = receiver_update(
            receiver=self.get_object(), data=_body(request, self.FIELDS), actor=Actor.of_request(request)
        )
        return Response(ReceiverSerializer(receiver).data)

    def destroy(self, request, *args, **kwargs):
        receiver_delete(receiver=self.get_object(), actor=Actor.of_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeploymentSloView(APIView):
    """GET: the SLO and its error budget; PATCH {ttft_p95_seconds, attainment, reason} (operators)."""

    write_role = Role.OPERATOR

    def get(self, request, pk: int):
        return Response(deployment_slo(deployment=get_object_or_404(ModelDeployment, pk=pk)))

    def patch(self, request, pk: int):
        deployment = get_object_or_404(ModelDeployment, pk=pk)
        data = _body(request, {"ttft_p95_seconds", "attainment", "reason"})
        slo = deployment_slo_update(
            deployment=deployment, actor=Actor.of_request(request), reason=data.get("reason", ""),
            ttft_p95_seconds=data.get("ttft_p95_seconds", ...), attainment=data.get("attainment", ...),
        )  # fmt: skip
        return Response(slo)
