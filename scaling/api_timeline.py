"""GET /api/v1/deployments/{id}/timeline/?start=&end= (ISO 8601): the deployment's scaling story,
oldest first, paginated `{count, next, previous, results}` with rows {at, kind, object, message, source}."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework.views import APIView

from accounts.scope import request_token, scope_queryset
from core.filters import refuse_unknown_parameters
from core.pagination import StrictLimitOffsetPagination
from fleet.models import ModelDeployment
from scaling.timeline import deployment_timeline, timeline_range, timeline_row


class DeploymentTimelineView(APIView):
    pagination_class = StrictLimitOffsetPagination

    def get(self, request, pk: int):
        # Outside a token's scope the deployment does not exist: 404, as in every list (accounts/scope.py).
        deployment = get_object_or_404(
            scope_queryset(ModelDeployment.objects.select_related("cluster"), request_token(request)), pk=pk
        )
        refuse_unknown_parameters(request, ("start", "end"))
        start, end = timeline_range(
            start=request.query_params.get("start"), end=request.query_params.get("end"), now=timezone.now()
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            deployment_timeline(deployment=deployment, start=start, end=end), request, view=self
        )
        return paginator.get_paginated_response([timeline_row(row) for row in page])
