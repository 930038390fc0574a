"""The deployment page's "why this many replicas" panel (an HTMX fragment beside the scale controls).

Loaded after the page like the charts: it reads the current metric, which a slow metrics source
would otherwise hold the whole page for.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Role, role_at_least
from accounts.services import user_role
from fleet import selectors as fleet_selectors
from fleet.backends.base import DeploymentMetrics
from fleet.metrics import deployment_metrics
from scaling import windows
from scaling.models import PrescaleRule
from scaling.services.why import deployment_scaling_why

BINDING_WORDS = {
    "autoscaler": "the autoscaler's metric",
    "max": "the autoscaler's maximum",
    "min": "the autoscaler's minimum",
    "floor": "a floor override",
    "pin": "a pin",
    "paused": "a pause",
    "quota": "the namespace quota",
    "capacity": "free GPU capacity",
    "manual": "the Deployment's replicas, set by hand (no autoscaler)",
}


def _next_prescale(deployment, *, now):
    """(rule, instant) of the deployment's next enabled pre-scale firing, or None."""
    best = None
    for rule in PrescaleRule.objects.filter(deployment=deployment, enabled=True).order_by("id"):
        try:
            firings = windows.next_firings(rule.cron, rule.timezone, now, 1)
        except (windows.WindowError, ValueError):
            continue  # the rules list says what is wrong with it
        if firings and (best is None or firings[0] < best[1]):
            best = (rule, firings[0])
    return best


@require_GET
def deployment_why_fragment(request, deployment_id: int):
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(include_gone=True), id=deployment_id)
    now = timezone.now()
    metrics = deployment_metrics([deployment]).get(deployment.id) or DeploymentMetrics()
    why, overrides = deployment_scaling_why(deployment=deployment, metrics=metrics, now=now)
    return render(
        request,
        "scaling/_why.html",
        {
            "deployment": deployment,
            "why": why,
            "binding_words": BINDING_WORDS.get(why.binding, why.binding),
            "metrics_reason": metrics.unavailable_reason,
            "overrides": overrides,
            "next_prescale": _next_prescale(deployment, now=now),
            "can_operate": role_at_least(user_role(request.user), Role.OPERATOR),
            "writable": deployment.cluster.namespace_writable(deployment.namespace),
        },
    )
