"""Notifications of scale actions (succeeded, failed) and pre-scale firings, for receivers that
opted in (`events`: actions, prescale). Called by the scaling tasks once an action has ended or a
tick fired rules; one delivery per receiver and event, whichever worker calls (dedup keys)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from scaling.alerts.delivery import Notification, deliveries_create_many, link_base_url
from scaling.alerts.tasks import deliveries_enqueue
from scaling.models import PrescaleRule, ScaleAction
from scaling.services.prescale import Firing

ENDED = {ScaleAction.Status.SUCCEEDED: "action_succeeded", ScaleAction.Status.FAILED: "action_failed"}


def _action_body(action: ScaleAction, event: str, summary: str) -> dict:
    deployment = action.deployment
    return {
        "event": event,
        "action": {"id": action.id, "status": action.status, "operation": action.operation,
                   "replicas": action.request.get("replicas"), "mode": action.mode, "reason": action.reason,
                   "actor": action.actor_label, "error": action.error or None,
                   "finished_at": action.finished_at.isoformat() if action.finished_at else None},
        "deployment": f"{deployment.namespace}/{deployment.name}" if deployment else None,
        "cluster": action.cluster.name,
        "summary": summary,
        "url": f"{link_base_url()}/scaling/actions/{action.id}/",
    }  # fmt: skip


def action_notify(*, action_id: int) -> list[int]:
    """Queue (and send after commit) the end of a scale action; nothing for other states."""
    action = ScaleAction.objects.select_related("deployment", "cluster").filter(id=action_id).first()
    if action is None or action.status not in ENDED or action.operation == ScaleAction.Operation.QUOTA:
        return []
    event = ENDED[action.status]
    what = f"{action.namespace}/{action.deployment.name if action.deployment else action.target_name}"
    replicas = action.request.get("replicas")
    summary = (f"scaling {what} to {replicas} replicas {action.get_status_display()}"
               + (f": {action.error}" if action.error else ""))  # fmt: skip
    with transaction.atomic():
        ids = deliveries_create_many(
            [
                Notification(
                    event,
                    f"action:{action.id}:{action.status}",
                    _action_body(action, event, summary),
                    None,
                    action.namespace,
                )
            ]
        )
        deliveries_enqueue(ids)
    return ids


def prescale_notify(*, firings: Iterable[Firing]) -> list[int]:
    """Queue one `prescale_fired` per firing that made an action."""
    fired = [f for f in firings if f.action_id is not None and not f.error]
    if not fired:
        return []
    actions = ScaleAction.objects.select_related("deployment", "cluster").in_bulk([f.action_id for f in fired])
    rules = PrescaleRule.objects.in_bulk([f.rule_id for f in fired])
    queued = []
    for firing in fired:
        action, rule = actions.get(firing.action_id), rules.get(firing.rule_id)
        if action is None or rule is None:
            continue
        body = _action_body(action, "prescale_fired",
                            f"pre-scale rule #{rule.id} ({rule.cron}) raised the floor of {action.namespace}/"
                            f"{action.deployment.name if action.deployment else action.target_name} to "
                            f"{rule.min_replicas} replicas for {rule.duration_minutes} min")  # fmt: skip
        queued.append(Notification("prescale_fired", f"prescale:{rule.id}:{firing.at.isoformat()}", body, None,
                                   action.namespace))  # fmt: skip
    with transaction.atomic():
        ids = deliveries_create_many(queued)
        deliveries_enqueue(ids)
    return ids
