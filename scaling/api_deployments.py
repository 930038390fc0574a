"""`GET /api/v1/deployments/` and `/api/v1/deployments/{id}/`: what each deployment is (fleet), what
it costs now (costing) and, on the detail, why it runs this many replicas (scaling).

Served here, not by the fleet API, because it combines the three: fleet imports neither costing
nor scaling. Rows, filters and serializers are fleet's; metrics, costs and cold starts are read
once per page of rows, not per row.
"""

from __future__ import annotations

from django.utils import timezone

from costing import selectors as costing_selectors
from fleet import filters, serializers
from fleet import selectors as fleet_selectors
from fleet.api import FleetViewSet
from fleet.backends.base import DeploymentMetrics
from fleet.cold_start import deployment_cold_starts
from fleet.metrics import deployment_metrics
from scaling.services.why import deployment_scaling_why


class DeploymentViewSet(FleetViewSet):
    serializer_class = serializers.DeploymentSerializer
    filterset_class = filters.DeploymentFilterSet

    def get_queryset(self):
        return fleet_selectors.deployment_queryset(include_gone=True)  # the FilterSet hides gone rows

    def get_serializer_class(self):
        # Only the detail says why it runs this many replicas: a list would pay its queries per row.
        return serializers.DeploymentDetailSerializer if self.action == "retrieve" else super().get_serializer_class()

    def row_context(self, rows):
        now = timezone.now()
        context = {
            "metrics": deployment_metrics(rows),
            "costs": costing_selectors.deployment_cost_per_hour(rows),
            "cold_starts": deployment_cold_starts(rows, now=now),
        }
        if self.action == "retrieve":
            context["scaling"] = {
                d.id: deployment_scaling_why(
                    deployment=d, metrics=context["metrics"].get(d.id) or DeploymentMetrics(), now=now
                )[0]
                for d in rows
            }
        return context
