"""The deployment page's objective form: an operator sets (or resets) a deployment's TTFT p95
objective, with a reason for the audit. The page itself is fleet's; the form posts here because
changing an objective is a write, and roles are scaling's and accounts' business, not fleet's."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.models import Role
from core.errors import ApplicationError
from fleet import selectors as fleet_selectors
from fleet.services import deployment_slo_set
from fleet.views.deployments import deployment_page


@require_POST
@role_required(Role.OPERATOR)
def deployment_slo(request, deployment_id: int):
    """Set (or, empty, reset to the default) the TTFT p95 objective; errors inline on the page (400)."""
    # Gone deployments keep their page, and their form.
    deployment = get_object_or_404(fleet_selectors.deployment_queryset(include_gone=True), id=deployment_id)
    raw = request.POST.get("ttft_slo_seconds", "").strip()
    try:
        seconds = float(raw) if raw else None
    except ValueError:
        return deployment_page(request, deployment, slo_error=f"{raw[:20]!r} is not a number of seconds", status=400)
    try:
        deployment_slo_set(
            deployment=deployment, seconds=seconds, reason=request.POST.get("reason", ""), actor_user=request.user
        )
    except ApplicationError as exc:
        return deployment_page(request, deployment, slo_error=exc.message, status=400)
    return redirect("fleet:deployment", deployment_id=deployment.id)
