"""`GET /api/v1/nodes/` and `/api/v1/nodes/{id}/`: GPU nodes (fleet's rows, filters and serializer)
with what each costs per hour now (`hourly_cost_usd`, read once per page of rows).

Served by costing because it adds the price: fleet does not import costing."""

from __future__ import annotations

from costing import selectors
from fleet import filters, serializers
from fleet import selectors as fleet_selectors
from fleet.api import FleetViewSet


class NodeViewSet(FleetViewSet):
    serializer_class = serializers.NodeSerializer
    filterset_class = filters.NodeFilterSet

    def get_queryset(self):
        return fleet_selectors.node_queryset(include_gone=True)

    def row_context(self, rows):
        return {"costs": selectors.node_cost_per_hour(rows)}
