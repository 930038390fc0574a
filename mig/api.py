"""MIG API: POST mig-plans/ {cluster, node_pool} (operators) plans a pool and stores the plan
(201); GET mig-plans/ and mig-plans/{id}/ read them; POST mig-plans/{id}/apply/ {node, reason}
(operators) starts repartitioning that node (202 with the action); GET mig-applications/ and
mig-applications/{id}/ show each action and its steps; POST mig-applications/{id}/stop/ and
/resume/ (operators)."""

from __future__ import annotations

from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Role
from mig import serializers
from mig.models import MigApplication, MigPlan
from mig.services import mig_application_continue, mig_application_start, mig_plan_create
from scaling.services import Actor
from scaling.services.mig_apply import mig_application_stop


class MigPlanViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.MigPlanSerializer
    queryset = MigPlan.objects.select_related("cluster", "node_pool").order_by("-created_at", "-id")
    write_role = Role.OPERATOR

    def create(self, request, *args, **kwargs):
        body = serializers.MigPlanRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = mig_plan_create(**body.validated_data, actor=Actor.of_request(request))
        plan = self.get_queryset().get(pk=plan.pk)
        return Response(serializers.MigPlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        plan = self.get_object()
        body = serializers.MigApplyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        application = mig_application_start(plan=plan, node_name=body.validated_data["node"],
                                            reason=body.validated_data["reason"], actor=Actor.of_request(request))
        application = _applications().get(pk=application.pk)
        return Response(serializers.MigApplicationSerializer(application).data, status=status.HTTP_202_ACCEPTED)


def _applications():
    return MigApplication.objects.select_related("cluster", "node_pool").order_by("-created_at", "-id")


class MigApplicationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.MigApplicationSerializer
    write_role = Role.OPERATOR

    def get_queryset(self):
        return _applications()

    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        application = self.get_object()
        mig_application_stop(application=application, actor=Actor.of_request(request))
        return Response(serializers.MigApplicationSerializer(_applications().get(pk=pk)).data)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        application = mig_application_continue(application=self.get_object(), actor=Actor.of_request(request))
        return Response(serializers.MigApplicationSerializer(_applications().get(pk=application.pk)).data,
                        status=status.HTTP_202_ACCEPTED)
