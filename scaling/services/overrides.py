"""Ending time-boxed overrides: a restore action per expired (or ended early) override, claimed once."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError
from core.validators import reason_problem
from scaling.models import ScaleAction
from scaling.services.actions import scale_action_dispatch
from scaling.services.actors import Actor

# A restore that failed (the cluster was unreachable past the task's retries, say) is tried again
# on a later tick: an override "for 2h" must end even if the API server was down at its expiry.
# Spaced out, and bounded, so a restore that can never succeed (the object was deleted) stops.
RESTORE_RETRY_AFTER = timedelta(minutes=5)
RESTORE_MAX_TRIES = 5


def _restore_reason(override: ScaleAction, tries: int) -> str:
    if override.rule_id:
        reason = f"pre-scale window of rule #{override.rule_id} ended (action #{override.pk})"
    else:
        reason = f"override #{override.pk} by {override.actor_label} expired"
    if tries:
        reason += f"; try {tries + 1} of {RESTORE_MAX_TRIES}: restore #{override.restore_action_id} failed"
    return reason


def _restore_row(override: ScaleAction, *, actor: Actor, source: str, reason: str, now: datetime) -> ScaleAction:
    """A pending restore of `override`: what it writes is decided when it runs, as for an expiry."""
    return ScaleAction.objects.create(
        **actor.audit_fields(),
        source=source,
        operation=ScaleAction.Operation.RESTORE,
        cluster_id=override.cluster_id,
        namespace=override.namespace,
        deployment_id=override.deployment_id,
        rule_id=override.rule_id,
        request={"restores": override.pk},
        mode=override.mode,
        target_kind=override.target_kind,
        target_name=override.target_name,
        reason=reason,
        created_at=now,
    )


def override_end(
    *, override: ScaleAction, actor: Actor, source: str, reason: str = "", now: datetime | None = None
) -> ScaleAction:
    """End an active time-boxed override now: the audited restore an expiry would make, started early.

    The override's `expires_at` becomes now and its `restore_action` the new row, in one conditional
    UPDATE, so an expiry tick, a second click or a bot racing it cannot restore it twice (the loser
    gets a 409). The restore then puts back what the override replaced, or the next-highest active
    floor, or leaves a value someone changed meanwhile, exactly as after an expiry. Returns the
    pending restore action, enqueued on commit.
    """
    now = now or timezone.now()
    if problem := reason_problem(reason or ""):
        raise ApplicationError(problem, field="reason")
    if not override.is_override or override.status != ScaleAction.Status.SUCCEEDED:
        raise ApplicationError(f"action #{override.pk} is not an active time-boxed override", status=409)
    if override.restored_at is not None or override.restore_action_id is not None or override.expires_at <= now:
        raise ApplicationError(f"override #{override.pk} has already ended", status=409)
    if not override.cluster.namespace_writable(override.namespace):
        raise ApplicationError(
            f"namespace {override.namespace} is not in this cluster's allow-list: ScaleDeck may not change it",
            status=409,
        )
    text = f"override #{override.pk} by {override.actor_label} ended early by {actor.label}"
    text += f" (it was to run until {override.expires_at:%Y-%m-%d %H:%M %Z})"
    if (reason or "").strip():
        text += f": {reason.strip()}"
    with transaction.atomic():
        restore = _restore_row(override, actor=actor, source=source, reason=text, now=now)
        claimed = ScaleAction.objects.filter(
            id=override.pk, restore_action__isnull=True, restored_at__isnull=True, expires_at__gt=now
        ).update(restore_action=restore, expires_at=now)
        if claimed != 1:
            raise ApplicationError(f"override #{override.pk} has already ended", status=409)  # rolls back the row
    scale_action_dispatch(restore.pk)
    return restore


def overrides_expire_due(*, now: datetime | None = None, dispatch: bool = True) -> list[int]:
    """Create a pending restore action for every override whose time is up. Returns their ids.

    Each override is claimed by pointing its `restore_action` at the new row with a conditional
    UPDATE; a tick that loses the race rolls its row back, so an override is restored once. A
    failed restore is tried again after RESTORE_RETRY_AFTER, up to RESTORE_MAX_TRIES in all.
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
        )
        .filter(
            Q(restore_action__isnull=True)
            | Q(
                restore_action__status=ScaleAction.Status.FAILED,
                restore_action__finished_at__lte=now - RESTORE_RETRY_AFTER,
            )
        )
        .order_by("expires_at", "id")
        .only(
            "id",
            "cluster_id",
            "namespace",
            "deployment_id",
            "target_kind",
            "target_name",
            "rule_id",
            "actor_label",
            "mode",
            "request",
            "restore_action",
        )
    )
    for override in due:
        tries = 0
        if override.restore_action_id is not None:
            tries = ScaleAction.objects.filter(
                operation=ScaleAction.Operation.RESTORE, request__restores=override.pk, status=ScaleAction.Status.FAILED
            ).count()
            if tries >= RESTORE_MAX_TRIES:
                continue  # given up: the audit shows every failed try
        with transaction.atomic():
            restore = _restore_row(
                override,
                actor=actor,
                source=ScaleAction.Source.EXPIRY,
                reason=_restore_reason(override, tries),
                now=now,
            )
            claimed = ScaleAction.objects.filter(
                id=override.pk, restore_action=override.restore_action_id, restored_at__isnull=True
            ).update(restore_action=restore)
            if claimed != 1:
                transaction.set_rollback(True)  # another tick restores this one
                continue
        started.append(restore.pk)
        if dispatch:
            scale_action_dispatch(restore.pk)
    return started
