"""Read-only REST API of the fleet: clusters, deployments (with live metrics and $/hour), nodes.

Lists are paginated `{"count", "next", "previous", "results"}` and filtered by the same
FilterSets as the pages. Metrics and costs are read once per page of rows, not per row.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import viewsets

from fleet import filters, selectors, serializers
from fleet.backends.base import DeploymentMetrics
from fleet.cold_start import deployment_cold_starts
from fleet.metrics import deployment_metrics


class FleetViewSet(viewsets.ReadOnlyModelViewSet):

    def row_context(self, rows: list) -> dict:
        """Extra serializer context computed once for the rows being answered."""
        return {}

    def get_serializer(self, instance=None, *args, **kwargs):
        if instance is not None:
            rows = list(instance) if kwargs.get("many") else [instance]
            kwargs["context"] = {**self.get_serializer_context(), **self.row_context(rows)}
        return super().get_serializer(instance, *args, **kwargs)


class ClusterViewSet(FleetViewSet):
    serializer_class = serializers.ClusterSerializer
    filterset_class = filters.ClusterFilterSet

    def get_queryset(self):
        return selectors.cluster_queryset()


class DeploymentViewSet(FleetViewSet):
    serializer_class = serializers.DeploymentSerializer
    filterset_class = filters.DeploymentFilterSet

    def get_queryset(self):
        return selectors.deployment_queryset(include_gone=True)  # the FilterSet hides gone rows

    def get_serializer_class(self):
        # Only the detail says why it runs this many replicas: a list would pay its queries per row.
        return serializers.DeploymentDetailSerializer if self.action == "retrieve" else super().get_serializer_class()

    def row_context(self, rows):
        context = {"metrics": deployment_metrics(rows), "costs": selectors.deployment_costs(rows),
                   "cold_starts": deployment_cold_starts(rows, now=timezone.now())}
        if self.action == "retrieve":
            from scaling.services.why import deployment_scaling_why

            now = timezone.now()
            context["scaling"] = {
                d.id: deployment_scaling_why(deployment=d, metrics=context["metrics"].get(d.id) or DeploymentMetrics(),
                                             now=now)[0]
                for d in rows
            }
        return context


class NodeViewSet(FleetViewSet):
    serializer_class = serializers.NodeSerializer
    filterset_class = filters.NodeFilterSet

    def get_queryset(self):
        return selectors.node_queryset(include_gone=True)

    def row_context(self, rows):
        return {"costs": selectors.node_costs(rows)}
