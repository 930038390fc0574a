"""The deployment page's charts fragment: current values, what the deployment costs, and its charts.

Fleet's page loads it (`hx-trigger="load"`) from the page's own path, /deployments/<id>/charts/
(`scaling.deployment_urls`), before its other boxes. It is served here because it combines fleet's
metrics with costing's prices (the cost tile, the cost panel at the current price per replica):
fleet imports no costing. What 1M tokens cost, a day of samples summed, is asked from costing
once this fragment is in (costing:deployment-cost-per-million): the charts do not wait for it.
"""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.charts.deployment import deployment_panels
from costing import selectors as costing_selectors
from fleet import selectors as fleet_selectors
from fleet.backends.base import BackendError, DeploymentMetrics
from fleet.metrics import deployment_metrics, deployment_series, parse_range, step_for_range


@require_GET
def deployment_charts(request, deployment_id: int):
    """Fragment: current values, cost now and the charts. Loaded after the page so a slow
    metrics source delays only this box, and shows "metrics unavailable: <reason>" when it fails."""
    # Gone deployments keep their page, and its charts.
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(include_gone=True), id=deployment_id)
    range_key, range_seconds, range_error = parse_range(request.GET.get("range"))
    now = deployment_metrics([deployment]).get(deployment.id) or DeploymentMetrics()
    cost = costing_selectors.deployment_cost_per_hour([deployment]).get(deployment.id)
    per_replica = cost / deployment.replicas_ready if cost is not None and deployment.replicas_ready else None
    end = timezone.now()
    start = end - timedelta(seconds=range_seconds)
    step_seconds = step_for_range(range_seconds)
    panels, series_error = None, None
    try:
        series = deployment_series(deployment, range_seconds, now=end)
    except BackendError as exc:
        series_error = str(exc) or "metrics source unavailable"
    else:
        panels = deployment_panels(
            series,
            slo_seconds=deployment.slo_seconds,
            start=start,
            end=end,
            cost_per_replica_hour=per_replica,
            step_seconds=step_seconds,
        )
    context = {
        "deployment": deployment,
        "now": now,
        "slo_state": fleet_selectors.slo_state(now.ttft_p95_seconds, deployment.slo_seconds),
        "cost_per_hour": cost,
        "panels": panels,
        "series_error": series_error,
        "range_key": range_key,
        "range_error": range_error,
        "range_start": start,
        "range_end": end,
        "step_seconds": step_seconds,
    }
    return render(request, "fleet/_deployment_charts.html", context)
