"""MIG pages: the memory panel of a deployment, the plans list, a plan."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from fleet import selectors as fleet_selectors
from fleet.backends.base import DeploymentMetrics
from fleet.metrics import deployment_metrics
from mig import selectors


@require_GET
def deployment_memory(request, deployment_id: int):
    """Fragment of the deployment page, loaded after it: Prometheus (observed KV usage) may be slow."""
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(include_gone=True), id=deployment_id)
    metrics = deployment_metrics([deployment]).get(deployment.id) or DeploymentMetrics()
    inputs, need = selectors.deployment_memory_need(deployment, metrics)
    context = {"deployment": deployment, "inputs": inputs, "need": need, "metrics": metrics}
    return render(request, "mig/_deployment_memory.html", context)
