"""Chat-bot API: `GET /api/v1/summary/`, so a bot's `/status` is one call. Viewer role."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scope import request_token, scope_queryset
from chatops.serializers import SummarySerializer
from chatops.summary import fleet_summary
from fleet.filters import ClusterFilterSet
from fleet.selectors import cluster_queryset


class SummaryView(APIView):
    """Per cluster: deployments in breach of their TTFT objective, pending pods, active overrides,
    the next pre-scale firings and spend per hour. `?name=` (the cluster filters) narrows it."""

    serializer_class = SummarySerializer

    def get(self, request: Request) -> Response:
        token = request_token(request)
        clusters = ClusterFilterSet(request.query_params, queryset=scope_queryset(cluster_queryset(), token))
        if not clusters.is_valid():
            return Response(clusters.errors, status=400)
        now = timezone.now()
        namespaces = token.namespaces if token is not None and token.scoped else ()
        body = {"generated_at": now, "clusters": fleet_summary(now=now, clusters=clusters.qs, namespaces=namespaces)}
        return Response(SummarySerializer(body).data)
