"""Scaling pages: the audit log, scale controls (an HTMX fragment), pre-scale rules, GPU quotas.

One view per resource answers with the full page, or with only the fragment when HTMX asks.
Views parse input, check the role, call one service or selector, and render.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.models import Role, role_at_least
from accounts.services import user_role
from core.charts.whatif import whatif_figure
from core.errors import ApplicationError
from core.htmx import filter_errors, filtered_rows, render_filtered, wants_fragment
from fleet.autoscalers import ReplicaOwnerKind
from fleet.models import ModelDeployment
from scaling import decisions, selectors, tasks
from scaling.filters import PrescaleRuleFilterSet
from scaling.forms import PrescaleRuleForm, QuotaForm, ScaleForm, WhatIfForm, add_service_error
from scaling.models import PrescaleRule, ScaleAction, WhatIfRun
from scaling.services import (
    Actor,
    override_end,
    prescale_rule_create,
    prescale_rule_delete,
    prescale_rule_problems,
    prescale_rule_update,
    quota_update,
    scale_action_request,
)
from scaling.services.cluster import deployment_owner
from scaling.whatif import max_hours, replays_history
from scaling.whatif_runs import run_result, whatif_run_start

PAGE_SIZE = 50


# --------------------------------------------------------------------------- audit


@require_GET
def audit(request):
    """Every change ScaleDeck made or refused, newest first, filtered like `GET /api/v1/actions/`."""
    filterset = selectors.action_filterset(request.GET)
    errors = filter_errors(filterset)
    rows = filterset.qs if not errors else selectors.action_queryset().none()
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "filter_errors": errors,
        "page": page,
        "query": query.urlencode(),
        "statuses": ScaleAction.Status.choices,
        "sources": ScaleAction.Source.choices,
    }
    template = "scaling/_audit_table.html" if wants_fragment(request) else "scaling/audit.html"
    return render_filtered(request, template, context)


@require_GET
def action_detail(request, action_id: int):
    """One action. Until it is finished the whole record (status, attempts, before/after) is polled
    as one fragment, so no part of the page can say "pending" while another says "succeeded"."""
    action = get_object_or_404(selectors.action_queryset().select_related("restore_action", "rule"), id=action_id)
    context = {
        "action": action,
        "restores": action.restores.all(),
        "can_end": action.is_override
        and action.status == ScaleAction.Status.SUCCEEDED
        and action.restore_action_id is None
        and action.expires_at > timezone.now()
        and role_at_least(user_role(request.user), Role.OPERATOR),
    }
    template = "scaling/_action_detail.html" if wants_fragment(request) else "scaling/action.html"
    return render(request, template, context)


@role_required(Role.OPERATOR)
@require_POST
def override_end_now(request, action_id: int):
    """End an active override now (audited; restores like an expiry). From the scale controls (HTMX)
    the controls answer with the restore's progress; from the action page, its page."""
    override = get_object_or_404(ScaleAction.objects.select_related("cluster", "deployment"), id=action_id)
    deployment = override.deployment
    try:
        restore = override_end(
            override=override,
            actor=Actor.of(request.user),
            source=ScaleAction.Source.UI,
            reason=request.POST.get("reason", "")[:2000],
        )
    except ApplicationError as error:
        if wants_fragment(request) and deployment is not None:
            return _controls(request, deployment, notice=error.message)
        messages.error(request, error.message)
        return redirect("scaling:action", action_id=override.pk)
    if wants_fragment(request) and deployment is not None:
        return _controls(request, deployment, action=restore)
    messages.success(request, f"Override #{override.pk} ends now: action #{restore.pk} restores the previous value.")
    return redirect("scaling:action", action_id=restore.pk)


@require_GET
def action_progress(request, action_id: int):
    """Fragment: one action's status, polled every second until it is finished."""
    action = get_object_or_404(selectors.action_queryset(), id=action_id)
    return render(request, "scaling/_action_progress.html", {"action": action})


# --------------------------------------------------------------------------- scale controls


def _scale_form(state, data=None) -> ScaleForm:
    """The scale form; "raise the max too" only where an autoscaler has a max to raise."""
    form = ScaleForm(
        data, initial=None if data is not None else {"replicas": state.floor or state.deployment.replicas_desired}
    )
    if state.target is None or state.target.autoscaler is None:
        del form.fields["raise_max"]
    return form


def _controls(request, deployment, *, form=None, confirm=None, action=None, notice="", status=200):
    """Render the controls. A refused form is answered 200 to HTMX (which swaps only 2xx answers in
    place, so the inline errors show) and with its real status (400/409) to a plain form post.

    While `action` runs, its progress box re-fetches these whole controls every second, so the
    floor, the overrides, the recent list and the box always come from one read."""
    can_operate = role_at_least(user_role(request.user), Role.OPERATOR)
    state = selectors.scale_state(deployment, now=timezone.now())
    if form is None and can_operate:
        form = _scale_form(state)
    context = {
        "deployment": deployment,
        "state": state,
        "form": form,
        "confirm": confirm,
        "action": action,
        "notice": notice,
        "can_operate": can_operate,
    }
    if wants_fragment(request):
        return render(request, "scaling/_controls.html", context, status=403 if status == 403 else 200)
    return render(request, "scaling/controls.html", context, status=status)


@require_http_methods(["GET", "POST"])
def deployment_controls(request, deployment_id: int):
    """Fragment on the deployment page: the autoscaler's floor/pin, active overrides, and the scale form.

    POST (operator): a scale to zero, or to more than double, first answers with a confirmation
    step; then the action is requested and its progress shown in place.
    """
    deployment = get_object_or_404(ModelDeployment.objects.select_related("cluster"), id=deployment_id)
    if request.method == "GET":
        # `?action=N`: the poll of an action shown in these controls (see _controls).
        action_id = request.GET.get("action", "")
        action = (
            selectors.action_queryset().filter(deployment=deployment, id=int(action_id)).first()
            if action_id.isdigit()
            else None
        )
        return _controls(request, deployment, action=action)
    if not role_at_least(user_role(request.user), Role.OPERATOR):
        return _controls(request, deployment, status=403)
    form = _scale_form(selectors.scale_state(deployment, now=timezone.now()), request.POST)
    if not form.is_valid():
        return _controls(request, deployment, form=form, status=400)
    data = form.cleaned_data
    kwargs = dict(
        deployment=deployment,
        replicas=data["replicas"],
        mode=data["mode"],
        reason=data["reason"],
        actor=Actor.of(request.user),
        source=ScaleAction.Source.UI,
        ttl_minutes=form.ttl_minutes,
        raise_max=data.get("raise_max", False),
    )
    warning = decisions.needs_confirmation(current_replicas=deployment.replicas_desired, replicas=data["replicas"])
    try:
        if warning and not data["confirmed"]:
            # Refused anyway: the refused attempt is audited like any other.
            preview = scale_action_request(**kwargs, dry_run=True, audit_refused_dry_run=True)
            return _controls(request, deployment, form=form, confirm={"warning": warning, "preview": preview})
        action = scale_action_request(**kwargs)
    except ApplicationError as error:
        add_service_error(form, error, ScaleForm.FIELD_MAP)
        return _controls(request, deployment, form=form, status=error.status)
    return _controls(request, deployment, action=action)


# --------------------------------------------------------------------------- what-if


def _whatif_initial(deployment) -> str:
    """Starting candidates: today's autoscaler, the same with a higher floor, and a fixed size."""
    autoscaler = deployment_owner(deployment).autoscaler  # None without one, or in conflict
    if autoscaler is None:
        n = max(1, deployment.replicas_desired)
        return f"none min={n}\nkeda min=1 max={max(4, 2 * n)} target=5"
    low, high = autoscaler.min_replicas, max(1, autoscaler.max_replicas)
    kind = "keda" if autoscaler.kind == ReplicaOwnerKind.SCALEDOBJECT else "hpa"  # the what-if policy words
    raised = min(high, max(low + 2, 2 * low))
    return f"{kind} min={max(low, kind == 'hpa')} max={high}\n{kind} min={raised} max={high}\nnone min={high}"


@require_http_methods(["GET", "POST"])
def whatif(request, deployment_id: int):
    """Try autoscaler policies on the deployment's traffic before applying one: on a copy of a
    simulated cluster's world, or on a real cluster's measured history in Prometheus.

    Any role may run it: nothing is changed. The simulation runs in a worker (scaling/whatif_runs.py),
    one at a time per user; the page shows the run's result, or polls for it while it runs.
    """
    deployment = get_object_or_404(ModelDeployment.objects.select_related("cluster"), id=deployment_id)
    run, status = None, 200
    if request.method == "GET":
        form = WhatIfForm(
            initial={"policies": _whatif_initial(deployment), "hours": 6}, max_hours=max_hours(deployment.cluster)
        )
        run_id = request.GET.get("run", "")
        if run_id.isdigit() and len(run_id) < 18:
            run = WhatIfRun.objects.filter(id=int(run_id), user=request.user, deployment=deployment).first()
    else:
        form = WhatIfForm(request.POST, max_hours=max_hours(deployment.cluster))
        if form.is_valid():
            data = form.cleaned_data
            lines = [line.strip() for line in request.POST.get("policies", "").splitlines() if line.strip()]
            try:
                run = whatif_run_start(
                    deployment=deployment,
                    policies=lines,
                    hours=data["hours"],
                    spike=data["spike"],
                    user=request.user,
                    enqueue=tasks.whatif_run.delay,
                )
            except ApplicationError as error:
                add_service_error(form, error, {"policy": "policies"})
                status = error.status
            else:
                run.refresh_from_db()  # a worker (or an eager test run) may have finished it already
        else:
            status = 400
    context = {
        "deployment": deployment,
        "form": form,
        "slo_seconds": deployment.slo_seconds,
        "history": replays_history(deployment.cluster),
        "max_hours": max_hours(deployment.cluster),
        **_whatif_run_context(run, deployment),
    }
    return render(request, "scaling/whatif.html", context, status=status)


def _whatif_run_context(run, deployment) -> dict:
    result = run_result(run) if run is not None and run.status == WhatIfRun.Status.DONE else None
    summaries = result.summaries if result else None
    at = summaries[0].series["at"] if summaries else []
    return {
        "run": run,
        "result": result,
        "summaries": summaries,
        "figure": whatif_figure([(s.policy.label, s.series) for s in summaries], deployment.slo_seconds)
        if summaries
        else None,
        "start": at[0] if at else None,
        "end": at[-1] if at else None,
    }


@require_GET
def whatif_run_status(request, deployment_id: int, run_id: int):
    """Fragment: a run's result once it has one; polled every second while it is queued or running."""
    run = get_object_or_404(
        WhatIfRun.objects.select_related("deployment__cluster"),
        id=run_id,
        user=request.user,
        deployment_id=deployment_id,
    )
    return render(request, "scaling/_whatif_results.html", _whatif_run_context(run, run.deployment))


# --------------------------------------------------------------------------- pre-scale rules


@require_GET
def rules(request):
    """Pre-scale rules filtered like `GET /api/v1/prescale-rules/`, each with its next firings."""
    now = timezone.now()
    filterset = PrescaleRuleFilterSet(request.GET, queryset=selectors.rule_queryset())
    rules_shown, errors = filtered_rows(filterset)
    context = {
        "rows": selectors.rule_rows(rules_shown, now=now),
        "filterset": filterset,
        "filter_errors": errors,
        "now": now,
        "can_operate": role_at_least(user_role(request.user), Role.OPERATOR),
    }
    return render_filtered(request, "scaling/rules.html", context)


def _rule_form_page(request, form, rule=None, status=200):
    data = form.data if form.is_bound else form.initial
    preview = selectors.firing_preview(
        str(data.get("cron") or ""), str(data.get("timezone") or "UTC"), now=timezone.now()
    )
    context = {"form": form, "rule": rule, "preview": preview if preview.firings else None}
    return render(request, "scaling/rule_form.html", context, status=status)


def _save_rule(request, form, rule=None):
    """Save the rule, or put every field's error on the form at once: the form's own checks, then
    what the service says of the fields that passed them (cron, zone, floor against the autoscaler)."""
    valid = form.is_valid()
    data = getattr(form, "cleaned_data", {})  # absent on an unbound form
    problems = prescale_rule_problems(
        deployment=data.get("deployment"),
        cron=data.get("cron") or "",
        tz=(data.get("timezone") or "").strip(),
        min_replicas=data.get("min_replicas"),
        duration_minutes=data.get("duration_minutes"),
    )
    for field, message in problems.items():
        if field not in form.errors:
            form.add_error(field if field in form.fields else None, message)
    if not valid or problems:
        return None
    fields = dict(
        deployment=data["deployment"],
        cron=data["cron"],
        min_replicas=data["min_replicas"],
        duration_minutes=data["duration_minutes"],
        enabled=data["enabled"],
    )
    try:
        if rule is None:
            rule = prescale_rule_create(**fields, timezone_name=data["timezone"].strip(), created_by=request.user)
        else:
            rule = prescale_rule_update(rule=rule, **fields, timezone=data["timezone"].strip(), actor=request.user)
    except ApplicationError as error:  # changed between the check and the save
        add_service_error(form, error, {"timezone_name": "timezone"})
        return None
    return rule


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def rule_create(request):
    form = PrescaleRuleForm(
        request.POST if request.method == "POST" else None, initial={"deployment": request.GET.get("deployment")}
    )
    if request.method == "POST" and (rule := _save_rule(request, form)):
        messages.success(request, f"Rule #{rule.pk} saved.")
        return redirect("scaling:rules")
    return _rule_form_page(request, form, status=400 if form.errors else 200)


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def rule_edit(request, rule_id: int):
    rule = get_object_or_404(PrescaleRule.objects.select_related("deployment"), id=rule_id)
    initial = {
        "deployment": rule.deployment,
        "cron": rule.cron,
        "timezone": rule.timezone,
        "min_replicas": rule.min_replicas,
        "duration_minutes": rule.duration_minutes,
        "enabled": rule.enabled,
    }
    form = PrescaleRuleForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and _save_rule(request, form, rule):
        messages.success(request, f"Rule #{rule.pk} saved.")
        return redirect("scaling:rules")
    return _rule_form_page(request, form, rule, status=400 if form.errors else 200)


@require_GET
def rule_preview(request):
    """Fragment: the next five firings of the cron and zone being typed, before anything is saved."""
    preview = selectors.firing_preview(
        request.GET.get("cron", "")[:100], request.GET.get("timezone", "UTC")[:64], now=timezone.now()
    )
    return render(request, "scaling/_rule_preview.html", {"preview": preview})


@require_GET
def deployment_rules(request, deployment_id: int):
    """Fragment on the deployment page: its pre-scale rules and when each fires next."""
    deployment = get_object_or_404(ModelDeployment, id=deployment_id)
    rows = selectors.rule_rows(selectors.rule_queryset().filter(deployment=deployment), now=timezone.now())
    return render(request, "scaling/_deployment_rules.html", {"deployment": deployment, "rows": rows})


@role_required(Role.OPERATOR)
@require_POST
def rule_delete(request, rule_id: int):
    rule = get_object_or_404(PrescaleRule, id=rule_id)
    prescale_rule_delete(rule=rule, actor=request.user)
    messages.success(request, f"Rule #{rule_id} deleted; a window it opened still ends on time.")
    return redirect("scaling:rules")


# --------------------------------------------------------------------------- quotas


@require_GET
def quotas(request):
    """Every namespace's GPU quota; one outside its cluster's allow-list says so instead of offering "edit"."""
    rows = [
        (q, selectors.quota_lines(q), q.cluster.namespace_writable(q.namespace)) for q in selectors.quota_queryset()
    ]
    context = {"rows": rows, "can_admin": role_at_least(user_role(request.user), Role.ADMIN)}
    return render(request, "scaling/quotas.html", context)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def quota_edit(request, quota_id: int):
    quota = get_object_or_404(selectors.quota_queryset(), id=quota_id)
    form = QuotaForm(request.POST if request.method == "POST" else None, quota=quota)
    if request.method == "POST" and form.is_valid():
        hard = form.changes(quota)
        if not hard:
            form.add_error(None, "nothing changed")
        else:
            try:
                action = quota_update(
                    quota=quota,
                    hard=hard,
                    reason=form.cleaned_data["reason"],
                    force=form.cleaned_data["force"],
                    actor=Actor.of(request.user),
                    source=ScaleAction.Source.UI,
                )
            except ApplicationError as error:
                add_service_error(form, error, {"hard": None})
            else:
                messages.success(request, f"Quota change requested: action #{action.pk}.")
                return redirect(reverse("scaling:action", args=[action.pk]))
    context = {
        "quota": quota,
        "form": form,
        "lines": selectors.quota_lines(quota),
        "writable": quota.cluster.namespace_writable(quota.namespace),
    }
    return render(request, "scaling/quota_form.html", context, status=400 if form.errors else 200)
