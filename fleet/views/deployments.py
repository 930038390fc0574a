from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from fleet import selectors
from fleet.cold_start import deployment_cold_starts
from fleet.metrics import RANGES, parse_range
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
