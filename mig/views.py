"""MIG pages: the memory panel of a deployment, the plans (list, make one), a plan."""

from __future__ import annotations

from collections import Counter

from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.models import Role
from core.errors import ApplicationError
from core.htmx import wants_fragment
from fleet import selectors as fleet_selectors
from fleet.backends.base import DeploymentMetrics
from fleet.metrics import deployment_metrics
from fleet.models import ModelDeployment, NodePool
from mig import doctor, selectors
from mig.apply import mig_application_stop
from mig.doctor_selectors import finding_rows
from mig.models import MigApplication, MigPlan
from mig.services import finding_dismiss, mig_application_continue, mig_application_start, mig_plan_create
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
    return _plan_page(request, plan)


def _plan_page(request, plan: MigPlan, *, apply_error: str = "", status: int = 200):
    context = {
        "plan": plan,
        "cluster": plan.cluster,
        "apply_error": apply_error,
        "applications": plan.applications.order_by("-created_at", "-id")[:20],
    }
    return render(request, "mig/plan.html", context, status=status)


def _application(application_id: int) -> MigApplication:
    return get_object_or_404(MigApplication.objects.select_related("cluster", "node_pool", "plan"), id=application_id)


@require_POST
@role_required(Role.OPERATOR)
def plan_apply(request, plan_id: int):
    """Repartition one node of the plan; refusals (ready floor, pool busy, no reason) inline on the plan."""
    plan = get_object_or_404(MigPlan.objects.select_related("cluster", "node_pool"), id=plan_id)
    try:
        application = mig_application_start(
            plan=plan,
            node_name=request.POST.get("node", ""),
            reason=request.POST.get("reason", ""),
            actor=Actor.of(request.user),
        )
    except ApplicationError as exc:
        return _plan_page(request, plan, apply_error=exc.message, status=400 if exc.status == 400 else 409)
    return redirect("mig:application", application_id=application.id)


@require_GET
def application_detail(request, application_id: int):
    """The action's steps; the fragment alone for the HTMX poll while it is under way."""
    application = _application(application_id)
    template = "mig/_application_steps.html" if wants_fragment(request) else "mig/application.html"
    return render(
        request, template, {"application": application, "active": application.status in MigApplication.ACTIVE}
    )


@require_POST
@role_required(Role.OPERATOR)
def application_stop(request, application_id: int):
    mig_application_stop(application=_application(application_id), actor=Actor.of(request.user))
    return redirect("mig:application", application_id=application_id)


@require_POST
@role_required(Role.OPERATOR)
def application_resume(request, application_id: int):
    application = _application(application_id)
    try:
        mig_application_continue(application=application, actor=Actor.of(request.user))
    except ApplicationError as exc:
        return render(request, "mig/application.html", {"application": application, "error": exc.message}, status=409)
    return redirect("mig:application", application_id=application_id)


def _doctor_page(request, *, error: str = "", status: int = 200):
    kind = request.GET.get("kind") or None
    if kind not in (None, *doctor.KINDS):
        kind, error = None, error or f"{kind[:40]} is not a kind of finding; showing all"
    rows = finding_rows(kind=kind)
    counts = Counter(r.kind for r in (rows if kind is None else finding_rows()))
    context = {
        "rows": rows,
        "counts": [(k, counts.get(k, 0)) for k in doctor.KINDS],
        "kind": kind,
        "error": error,
        "dismissed": finding_rows(dismissed=True),
    }
    return render(request, "mig/doctor.html", context, status=status)


@require_GET
def doctor_page(request):
    """Every finding of every cluster, with counts per kind; `?kind=` narrows the table."""
    return _doctor_page(request)


@require_POST
@role_required(Role.OPERATOR)
def finding_dismiss_view(request):
    raw = request.POST.get("deployment", "")
    deployment = ModelDeployment.objects.filter(id=int(raw)).first() if raw.isdigit() else None
    if deployment is None:
        return _doctor_page(request, error="That deployment is gone.", status=400)
    try:
        finding_dismiss(
            deployment=deployment,
            kind=request.POST.get("kind", ""),
            reason=request.POST.get("reason", ""),
            actor=Actor.of(request.user),
        )
    except ApplicationError as exc:
        return _doctor_page(request, error=exc.message, status=exc.status)
    return redirect("mig:doctor")
