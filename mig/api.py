"""MIG plan API: POST mig-plans/ {cluster, node_pool} (operators) plans a pool and stores the plan
(201); GET mig-plans/ and mig-plans/{id}/ read them."""

from __future__ import annotations

from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.models import Role
from mig import serializers
from mig.models import MigPlan
from mig.services import mig_plan_create
from scaling.services import Actor


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
