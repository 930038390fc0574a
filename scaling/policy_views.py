"""Pages for autoscaler policy edits: the form on a deployment (preview the exact diff, then confirm),
and "revert" on a policy action's page. Same services as PATCH /api/v1/deployments/{id}/autoscaler/."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.models import Role
from core.errors import ApplicationError
from fleet import selectors as fleet_selectors
from scaling.models import ScaleAction
from scaling.services import Actor
from scaling.services.policy import autoscaler_policy_preview, autoscaler_policy_request, autoscaler_policy_revert

WHOLE = ("min_replicas", "max_replicas", "polling_interval_seconds", "cooldown_seconds")
LABELS = {
    "min_replicas": "Min replicas",
    "max_replicas": "Max replicas",
    "polling_interval_seconds": "Polling interval (s)",
    "cooldown_seconds": "Cooldown (s)",
    "threshold": "Threshold of trigger 1",
    "activation_threshold": "Activation threshold of trigger 1",
    "query": "Query of trigger 1 (PromQL)",
    "target_value": "Target of metric 1",
    "behavior": "Scaling behavior (JSON, autoscaling/v2 shape)",
}


def _changes(post) -> dict:
    """The edit from the form: blank fields are left as they are."""
    changes: dict = {}
    for name in WHOLE:
        raw = post.get(name, "").strip()
        if raw:
            if not raw.lstrip("-").isdigit():
                raise ApplicationError(f"{LABELS[name]} must be a whole number", field=name)
            changes[name] = int(raw)
    trigger = {k: post.get(k, "").strip() for k in ("threshold", "activation_threshold", "query")}
    if any(trigger.values()):
        changes["triggers"] = [{"index": 0, **{k: v for k, v in trigger.items() if v}}]
    target = post.get("target_value", "").strip()
    if target:
        changes["metrics"] = [{"index": 0, "target_value": int(target) if target.isdigit() else target}]
    behavior = post.get("behavior", "").strip()
    if behavior:
        try:
            changes["behavior"] = json.loads(behavior)
        except ValueError:
            raise ApplicationError(f"{LABELS['behavior']} is not valid JSON", field="behavior") from None
    return changes


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def autoscaler_policy_edit(request, deployment_id: int):
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(), id=deployment_id)
    context = {"deployment": deployment, "values": request.POST, "labels": LABELS}
    if request.method == "GET":
        return render(request, "scaling/policy_form.html", context)
    try:
        changes = _changes(request.POST)
        if request.POST.get("confirm") == "yes":
            action, _ = autoscaler_policy_request(
                deployment=deployment,
                changes=changes,
                reason=request.POST.get("reason", ""),
                actor=Actor.of(request.user),
                source=ScaleAction.Source.UI,
            )
            return redirect("scaling:action", action.pk)
        autoscaler, edit = autoscaler_policy_preview(deployment=deployment, changes=changes)
    except ApplicationError as exc:
        field = LABELS.get(exc.field or "", "")
        context["error"] = f"{field}: {exc.message}" if field and field not in exc.message else exc.message
        return render(request, "scaling/policy_form.html", context, status=exc.status)
    return render(request, "scaling/policy_form.html", {**context, "edit": edit, "autoscaler_name": autoscaler.name})


@role_required(Role.OPERATOR)
@require_POST
def autoscaler_policy_revert_page(request, action_id: int):
    original = get_object_or_404(ScaleAction.objects.select_related("deployment__cluster"), id=action_id)
    try:
        revert = autoscaler_policy_revert(
            action=original,
            reason=request.POST.get("reason", ""),
            actor=Actor.of(request.user),
            source=ScaleAction.Source.UI,
        )
    except ApplicationError as exc:
        messages.error(request, f"Not reverted: {exc.message}")
        return redirect("scaling:action", original.pk)
    return redirect("scaling:action", revert.pk)
