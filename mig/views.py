"""MIG pages: the memory panel of a deployment, the plans (list, make one), a plan."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.models import Role
from config.errors import ApplicationError
from fleet import selectors as fleet_selectors
from fleet.backends.base import DeploymentMetrics
from fleet.metrics import deployment_metrics
from fleet.models import NodePool
from mig import selectors
from mig.models import MigPlan
from mig.services import mig_plan_create
from scaling.services import Actor


@require_GET
def deployment_memory(request, deployment_id: int):
    """Fragment of the deployment page, loaded after it: Prometheus (observed KV usage) may be slow."""
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(include_gone=True), id=deployment_id)
    metrics = deployment_metrics([deployment]).get(deployment.id) or DeploymentMetrics()
    inputs, need = selectors.deployment_memory_need(deployment, metrics)
    context = {"deployment": deployment, "inputs": inputs, "need": need, "metrics": metrics}
    return render(request, "mig/_deployment_memory.html", context)


def _plans_page(request, *, error: str = "", status: int = 200):
    context = {
        "plans": MigPlan.objects.select_related("cluster", "node_pool")[:50],
        "pools": NodePool.objects.alive().select_related("cluster").order_by("cluster__name", "name"),
        "error": error,
        "chosen_pool": request.POST.get("node_pool", ""),
    }
    return render(request, "mig/plans.html", context, status=status)


@require_GET
def plans(request):
    return _plans_page(request)


@require_POST
@role_required(Role.OPERATOR)
def plan_create(request):
    """Plan a node pool (the form's `node_pool` is a pool id); errors inline on the list page."""
    raw = request.POST.get("node_pool", "")
    pool = NodePool.objects.alive().select_related("cluster").filter(id=int(raw)).first() if raw.isdigit() else None
    if pool is None:
        return _plans_page(request, error="Choose a node pool.", status=400)
    try:
        plan = mig_plan_create(cluster=pool.cluster, node_pool=pool, actor=Actor.of(request.user))
    except ApplicationError as exc:
        return _plans_page(request, error=exc.message, status=400)
    return redirect("mig:plan", plan_id=plan.id)


@require_GET
def plan_detail(request, plan_id: int):
    plan = get_object_or_404(MigPlan.objects.select_related("cluster", "node_pool"), id=plan_id)
    return render(request, "mig/plan.html", {"plan": plan, "cluster": plan.cluster})
