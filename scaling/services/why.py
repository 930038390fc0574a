"""The facts behind "why this many replicas" for one deployment (the detail page and API only).

A fixed number of queries: the autoscaler rows, the active overrides, the quota headroom, the
capacity fit of one more replica (scaling/services/capacity.py, the dry run's reader) and the
last rescale event. The decision itself is scaling/why.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.errors import ApplicationError
from fleet.backends.base import MIG_RESOURCE_PREFIX, DeploymentMetrics
from fleet.models import EventKind, ModelDeployment, ScalingEvent
from scaling import decisions
from scaling.selectors import ActiveOverride, scale_state
from scaling.services.capacity import deployment_capacity_fit
from scaling.services.cluster import quota_headroom
from scaling.why import ScalingFacts, ScalingWhy, metric_target, scaling_why

# The HPA's default scale-down stabilization window (KEDA keeps it): replicas go down no sooner.
STABILIZATION = timedelta(minutes=5)


def _floor_and_pin(overrides: list[ActiveOverride]) -> tuple[int | None, int | None]:
    floor = pin = None
    for o in overrides:
        replicas = (o.action.request or {}).get("replicas")
        if not isinstance(replicas, int):
            continue
        if o.action.mode == decisions.PIN:
            pin = replicas
        else:
            floor = max(floor or 0, replicas)
    return floor, pin


def deployment_scaling_why(
    *, deployment: ModelDeployment, metrics: DeploymentMetrics, now: datetime
) -> tuple[ScalingWhy, list[ActiveOverride]]:
    """The decision and the active overrides it counted."""
    state = scale_state(deployment, now=now)
    scaler = state.target.autoscaler if state.target is not None else None
    summary = scaler.metric if scaler else ""
    target = metric_target(summary)
    floor, pin = _floor_and_pin(state.overrides)
    headroom = [q for q in quota_headroom(deployment) if q.resource == decisions.quota_key(deployment.gpu_resource)]
    tightest = min(headroom, key=lambda q: q.available) if headroom else None
    fit = None
    if deployment.gpu_resource and deployment.gpu_per_replica:
        try:
            fit = deployment_capacity_fit(deployment=deployment, extra_replicas=1)
        except ApplicationError:
            fit = None
    last_rescale = (
        ScalingEvent.objects.filter(deployment=deployment, kind=EventKind.DESIRED_CHANGED, at__gt=now - STABILIZATION)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    paused = scaler is not None and scaler.paused
    facts = ScalingFacts(
        metric=summary,
        metric_value=getattr(metrics, target.attribute) if target.attribute else None,
        target_value=target.target_value,
        metric_summed=target.summed,
        desired=deployment.replicas_desired,
        ready=deployment.replicas_ready,
        min_replicas=scaler.min_replicas if scaler else None,
        max_replicas=scaler.max_replicas if scaler else None,
        floor=floor,
        pinned=pin if pin is not None else state.pinned,
        paused=paused,
        conflict=state.conflict,
        gpu_per_replica=deployment.gpu_per_replica or 0,
        gpu_resource=deployment.gpu_resource,
        quota_name=tightest.name if tightest else "",
        quota_left=tightest.available if tightest else None,
        fits_now=None if fit is None else fit.fit_now >= 1,
        device=_device(deployment.gpu_resource),
        pool=fit.pool if fit else None,
        pool_limit_allows=fit.pool_limit_allows if fit else None,
        pool_offers=bool(fit and (fit.fit_now >= 1 or fit.pool)),
        stabilizing_until=(last_rescale + STABILIZATION).strftime("%H:%M UTC") if last_rescale else "",
        pending_replicas=max(deployment.replicas_desired - deployment.replicas_ready, 0),
    )
    return scaling_why(facts), state.overrides


def _device(resource: str) -> str:
    if resource.startswith(MIG_RESOURCE_PREFIX):
        return f"MIG {resource.removeprefix(MIG_RESOURCE_PREFIX)} slice"
    return "GPU"
