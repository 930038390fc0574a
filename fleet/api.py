"""Read-only REST API of the fleet: clusters, and the base of every fleet-row viewset.

Lists are paginated `{"count", "next", "previous", "results"}` and filtered by the same
FilterSets as the pages. Deployments (with $/hour and why) are served by `scaling.api_deployments`
and nodes (with $/hour) by `costing.api_nodes`: they combine fleet's rows with those apps' answers.
"""

from __future__ import annotations

from rest_framework import viewsets

from fleet import filters, selectors, serializers


class FleetViewSet(viewsets.ReadOnlyModelViewSet):
    """A read-only viewset of fleet rows whose serializers read per-page answers from their context."""

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
