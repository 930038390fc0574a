"""Ending time-boxed overrides: a restore action per expired override, claimed once."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from scaling.models import ScaleAction
from scaling.services.actions import scale_action_dispatch
from scaling.services.actors import Actor


def _restore_reason(override: ScaleAction) -> str:
    if override.rule_id:
        return f"pre-scale window of rule #{override.rule_id} ended (action #{override.pk})"
    return f"override #{override.pk} by {override.actor_label} expired"


def overrides_expire_due(*, now: datetime | None = None, dispatch: bool = True) -> list[int]:
    """Create a pending restore action for every override whose time is up. Returns their ids.

    Each override is claimed by pointing its `restore_action` at the new row with a conditional
    UPDATE; a tick that loses the race rolls its row back, so an override is restored once.
    What the restore writes is decided when it runs (see `decisions.resolve`): the next-highest
    active floor or the baseline, or nothing when someone changed the value meanwhile.
    """
    now = now or timezone.now()
    actor = Actor.expiry()
    started: list[int] = []
    due = (
        ScaleAction.objects.filter(
            status=ScaleAction.Status.SUCCEEDED,
            operation=ScaleAction.Operation.SCALE,
            expires_at__lte=now,
            restored_at__isnull=True,
            restore_action__isnull=True,
        )
        .order_by("expires_at", "id")
        .only("id", "cluster_id", "namespace", "deployment_id", "target_kind", "target_name", "rule_id",
              "actor_label", "mode", "request")
    )
    for override in due:
        with transaction.atomic():
            restore = ScaleAction.objects.create(
                actor_label=actor.label,
                actor_key=actor.key,
                source=ScaleAction.Source.EXPIRY,
                operation=ScaleAction.Operation.RESTORE,
                cluster_id=override.cluster_id,
                namespace=override.namespace,
                deployment_id=override.deployment_id,
                rule_id=override.rule_id,
                request={"restores": override.pk},
                mode=override.mode,
                target_kind=override.target_kind,
                target_name=override.target_name,
                reason=_restore_reason(override),
                created_at=now,
            )
            claimed = ScaleAction.objects.filter(
                id=override.pk, restore_action__isnull=True, restored_at__isnull=True
            ).update(restore_action=restore)
            if claimed != 1:
                transaction.set_rollback(True)  # another tick restores this one
                continue
        started.append(restore.pk)
        if dispatch:
            scale_action_dispatch(restore.pk)
    return started
