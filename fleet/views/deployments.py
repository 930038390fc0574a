from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.charts.deployment import deployment_panels
from costing import selectors as costing_selectors
from fleet import selectors
from fleet.backends.base import BackendError, DeploymentMetrics
from fleet.cold_start import deployment_cold_starts
from fleet.metrics import RANGES, deployment_metrics, deployment_series, parse_range, step_for_range
from fleet.slo import bucket_note


def _deployment(deployment_id: int):
    # Gone deployments keep their page: audit entries and cost reports link to them.
    return get_object_or_404(selectors.deployment_queryset(include_gone=True), id=deployment_id)


@require_GET
def deployment_detail(request, deployment_id: int):
    """Facts from the last sync, config lint, and slots for the lazily loaded charts and scale controls."""
    return deployment_page(request, _deployment(deployment_id))


def deployment_page(request, deployment, *, slo_error: str | None = None, status: int = 200):
    """The deployment page; with `slo_error`, as answered to a refused objective (scaling's
    `deployment_slo`), the error beside the form and the reason typed kept."""
    range_key, _, range_error = parse_range(request.GET.get("range"))
    cold_start = deployment_cold_starts([deployment], now=timezone.now())[deployment.id]
    context = {
        "deployment": deployment,
        "cluster": deployment.cluster,
        "owner": selectors.deployment_owner(deployment),
        "findings": selectors.deployment_findings(deployment, load_p95_seconds=cold_start.load_p95_seconds),
        "cold_start": cold_start,
        "pods": deployment.live_pods,
        "range_key": range_key,
        "range_error": range_error,
        "ranges": list(RANGES),
        "slo_note": bucket_note(deployment.slo_seconds),
        "slo_error": slo_error,
        "slo_reason": request.POST.get("reason", "") if slo_error else "",
        "slo_changes": deployment.slo_changes.all()[:3],
    }
    return render(request, "fleet/deployment.html", context, status=status)


@require_GET
def deployment_charts(request, deployment_id: int):
    """Fragment: current values, cost per 1M tokens and the charts. Loaded after the page (`hx-trigger="load"`)
    so a slow metrics source delays only this box, and shows "metrics unavailable: <reason>" when it fails."""
    deployment = _deployment(deployment_id)
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
            series, slo_seconds=deployment.slo_seconds, start=start, end=end, cost_per_replica_hour=per_replica,
            step_seconds=step_seconds,
        )
    context = {
        "deployment": deployment,
        "now": now,
        "slo_state": selectors.slo_state(now.ttft_p95_seconds, deployment.slo_seconds),
        "cost_per_hour": cost,
        "cost_per_million": costing_selectors.deployment_cost_per_million_tokens(deployment),
        "panels": panels,
        "series_error": series_error,
        "range_key": range_key,
        "range_error": range_error,
        "range_start": start,
        "range_end": end,
        "step_seconds": step_seconds,
    }
    return render(request, "fleet/_deployment_charts.html", context)
