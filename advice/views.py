"""Advice pages: start a search for a deployment, and a run's page (progress bar, cancel, result chart)."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.models import Role
from advice import services, tasks
from advice.apply import advice_apply, advice_apply_preview
from advice.charts import pareto_front
from advice.models import AdviceRun
from core.charts.advice import advice_figure
from core.errors import ApplicationError
from fleet import selectors as fleet_selectors
from scaling.models import ScaleAction
from scaling.services import Actor


def _number(request, name: str, default: float | None) -> float | None:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApplicationError(f"{name.replace('_', ' ')} must be a number, not {raw[:40]!r}", field=name) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ApplicationError(f"{name.replace('_', ' ')} must be a finite number", field=name)
    return value


@require_http_methods(["GET", "POST"])
def advice_new(request, deployment_id: int):
    """The form: a trace (optional), hours, rate multiplier, spike, objective. Any role."""
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(), id=deployment_id)
    error, status = "", 200
    if request.method == "POST":
        try:
            trace = None
            if request.FILES.get("trace"):
                trace = services.trace_upload_create(user=request.user, upload=request.FILES["trace"])
            spike = _number(request, "spike", None)
            run = services.advice_start(
                user=request.user,
                deployment=deployment,
                trace=trace,
                hours=_number(request, "hours", None),
                rate_multiplier=_number(request, "rate_multiplier", 1.0),
                spike={"multiplier": spike} if spike is not None else None,
                slo=_number(request, "slo_seconds", None),
                attainment=_number(request, "attainment", 0.99),
                enqueue=lambda run_id: transaction.on_commit(lambda: tasks.advice_run.delay(run_id)),
            )
            return redirect("advice:run", run.id)
        except ApplicationError as exc:
            error, status = exc.message, 400
    return render(request, "advice/new.html", {"deployment": deployment, "error": error}, status=status)


def _run_context(run: AdviceRun) -> dict:
    context = {"run": run, "figure": None}
    if run.status == AdviceRun.Status.DONE and run.result:
        front = pareto_front(run.result["candidates"])
        context["figure"] = advice_figure(run.result, front)
        context["front"] = {c["label"] for c in front}
        context["progress_percent"] = 100
    else:
        context["progress_percent"] = round(run.progress * 100)
    return context


@require_GET
def advice_run(request, run_id: int):
    run = get_object_or_404(AdviceRun.objects.select_related("deployment__cluster", "trace"), id=run_id)
    template = "advice/_run.html" if request.headers.get("HX-Request") else "advice/run.html"
    return render(request, template, _run_context(run))


@require_POST
def advice_cancel(request, run_id: int):
    run = get_object_or_404(AdviceRun, id=run_id)
    try:
        services.advice_cancel(run=run, user=request.user)
    except ApplicationError as exc:
        return render(request, "advice/run.html", {**_run_context(run), "error": exc.message}, status=exc.status)
    return redirect("advice:run", run.id)


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def advice_apply_page(request, run_id: int):
    """ "Apply this policy": the exact changes (the dry run) first, then, confirmed, the audited actions."""
    run = get_object_or_404(AdviceRun.objects.select_related("deployment__cluster"), id=run_id)
    label = request.POST.get("candidate") or request.GET.get("candidate") or None
    try:
        if request.method == "POST":
            plan = advice_apply(
                run=run,
                label=label,
                reason=request.POST.get("reason", ""),
                actor=Actor.of(request.user),
                user=request.user,
                source=ScaleAction.Source.UI,
            )
            return redirect("scaling:action", plan.action.pk)
        plan = advice_apply_preview(run=run, label=label)
    except ApplicationError as exc:
        return render(request, "advice/apply.html", {"run": run, "plan": None, "error": exc.message}, status=exc.status)
    return render(request, "advice/apply.html", {"run": run, "plan": plan})
