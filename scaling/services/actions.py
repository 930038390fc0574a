"""Asking for a scale: validate, refuse with an audit row, or record a pending action and enqueue it.

The write itself happens later, in `scaling.services.execution` (a Celery task, or inline in
`manage.py scaling_tick`), against what the cluster holds then.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from core.errors import ApplicationError
from costing.selectors import deployment_cost_per_hour
from fleet.models import ModelDeployment
from scaling import decisions
from scaling.capacity import CapacityFit
from scaling.models import ScaleAction
from scaling.services import audited
from scaling.services.actors import Actor
from scaling.services.capacity import deployment_capacity_fit
from scaling.services.cluster import db_view, quota_headroom
from scaling.services.stack import stack_inputs

logger = logging.getLogger(__name__)

MANUAL_SOURCES = (ScaleAction.Source.UI, ScaleAction.Source.API)


@dataclass
class DryRunPreview:
    """What a dry run answers: the write it would make, and its cost and quota effect.

    `replicas_after` and its cost are what runs once the write lands. While a KEDA ScaledObject
    stays paused (`pinned_replicas`), that is the pinned count whatever the floor says; the
    `*_when_unpinned` values are what the floor brings once the pin is removed, and the quota
    entries count that (a request is held to the quota it will need then)."""

    replicas_before: int
    replicas_after: int
    cost_per_hour_usd_before: Decimal | None
    cost_per_hour_usd_after: Decimal | None
    quota: list[dict] = field(default_factory=list)
    pinned_replicas: int | None = None
    replicas_when_unpinned: int | None = None
    cost_per_hour_usd_when_unpinned: Decimal | None = None
    # Where the extra replicas would run and when they would be Ready (scaling/capacity.py).
    capacity: CapacityFit | None = None


def scale_action_dispatch(action_id: int) -> None:
    """Enqueue the write once the row is committed, so no worker reads an uncommitted row."""
    from scaling.tasks import apply_scale_action

    def send():
        ScaleAction.objects.filter(id=action_id, status=ScaleAction.Status.PENDING).update(dispatched_at=timezone.now())
        try:
            apply_scale_action.delay(action_id)
        except (OperationalError, OSError):
            # The caller was (or is about to be) told the action is accepted; answering 500 now would
            # invite a retry that creates a second action. The reconciler re-sends pending rows.
            logger.warning(
                "action %s: the broker is unreachable; the reconciler will send it again", action_id, exc_info=True
            )

    transaction.on_commit(send)


def scale_action_request(
    *,
    deployment: ModelDeployment,
    replicas: int,
    mode: str = decisions.FLOOR,
    reason: str,
    actor: Actor,
    source: str,
    ttl_minutes: int | None = None,
    raise_max: bool = False,
    dry_run: bool = False,
    audit_refused_dry_run: bool = False,
    idempotency_key: str | None = None,
    until: datetime | None = None,
    rule=None,
    now: datetime | None = None,
    dispatch: bool = True,
) -> ScaleAction:
    """Ask for `deployment` to run at least (`floor`) or exactly (`pin`) `replicas`.

    Autoscaled deployments get their autoscaler's floor or pin changed, never `spec.replicas`;
    others are scaled through `/scale`. Refusals raise ApplicationError (400 bad input, 409 policy:
    namespace not allow-listed, above the autoscaler's max without `raise_max`, two autoscalers,
    GPU quota) after storing a `rejected` action; nothing is written to the cluster then.

    Returns the `pending` action, enqueued for a worker once the transaction commits; with
    `ttl_minutes` the previous value comes back when it expires. The same `idempotency_key` from
    the same actor returns the first action (`action.replayed` is True; scaling/services/audited.py).

    `dry_run`: nothing is stored or written; returns an unsaved action whose `preview`
    (a DryRunPreview) holds the replica, cost and quota effect. With `audit_refused_dry_run` (the
    page's "are you sure?" step) a refusal is still stored `rejected`, as the request would be.

    For pre-scale rules and the tick: `until` ends the override at a window's end, `rule` is the
    rule that asked, `now` the clock, and `dispatch=False` leaves the action to be run inline
    instead of through the broker.
    """
    now = now or timezone.now()
    if source not in ScaleAction.Source.values:
        raise ValueError(f"unknown source {source!r}")
    key = audited.idempotency_key(idempotency_key)
    request = {
        "replicas": replicas,
        "mode": mode,
        "ttl_minutes": ttl_minutes,
        "raise_max": bool(raise_max),
        "dry_run": bool(dry_run),
    }
    if until is not None:
        request["until"] = until.isoformat()
    request = audited.json_safe(request)
    existing = None if dry_run else audited.earlier_action(actor, key)
    if existing is not None:
        return audited.replay(existing, request)

    base = dict(
        **actor.audit_fields(),
        source=source,
        operation=ScaleAction.Operation.SCALE,
        cluster_id=deployment.cluster_id,
        namespace=deployment.namespace,
        deployment=deployment,
        rule=rule,
        request=request,
        mode=mode if mode in decisions.MODES else "",
        reason=(reason or "").strip() or "(no reason given)",
        idempotency_key="" if dry_run else key,
        created_at=now,
    )

    def refuse(error: ApplicationError):
        if dry_run and not audit_refused_dry_run:
            return error
        return audited.audit_refusal(base=base, error=error, now=now)

    # The checks and the insert of the pending action are one transaction, the namespace's quota
    # rows locked (see `quota_headroom`): two requests at once cannot both take the last GPUs, as
    # the second one's check counts the first one's pending action. A dry run stores nothing and
    # locks nothing. Refusals are audited after the rollback, in a transaction of their own.
    try:
        with nullcontext() if dry_run else transaction.atomic():
            replicas, mode, reason, ttl_minutes = decisions.validate_request(
                replicas=replicas, mode=mode, reason=reason, ttl_minutes=ttl_minutes
            )
            if deployment.gone_at is not None:
                raise ApplicationError(f"{deployment} is gone from the cluster", status=409)
            view = db_view(deployment)
            base.update(target_kind=view.target.kind, target_name=view.target.name)
            notes = decisions.check_policy(
                namespace=deployment.namespace,
                namespace_writable=deployment.cluster.namespace_writable(deployment.namespace),
                target=view.target,
                replicas=replicas,
                raise_max=raise_max,
                mode=mode,
                current_replicas=deployment.replicas_desired,
                gpu_resource=deployment.gpu_resource,
                gpu_per_replica=deployment.gpu_per_replica,
                quotas=quota_headroom(deployment, lock=not dry_run),
            )
            if not view.target.autoscaled and raise_max:
                notes.append("raise_max ignored: no autoscaler")
            wants = decisions.contributions(view.target.kind, mode, replicas, raise_max)
            expires_at = until or (now + timedelta(minutes=ttl_minutes) if ttl_minutes else None)
            stack = stack_inputs(
                cluster_id=deployment.cluster_id,
                namespace=deployment.namespace,
                target_kind=view.target.kind,
                target_name=view.target.name,
                now=now,
            )
            plan = decisions.resolve(
                target_kind=view.target.kind,
                current=view.current,
                last_written=stack.last_written,
                last_baseline=stack.last_baseline,
                active=stack.active,
                wants=wants,
                time_boxed=expires_at is not None,
            )
            notes += decisions.pin_notes(target=view.target, wants=wants, after=plan.after)
            low = decisions.below_baseline(plan, wants) if expires_at is not None else None
            if low is not None and source in MANUAL_SOURCES:
                name, asked, base_value = low
                raise ApplicationError(
                    f"a time-boxed floor only raises: {asked} is below the current {name} {base_value}; "
                    "pin for a temporary exact count, or set it without a duration",
                    field="replicas",
                    status=409,
                    extra={"current": base_value, "requested": asked},
                )

            base.update(
                request=audited.json_safe({**request, "mode": mode, "ttl_minutes": ttl_minutes}),
                mode=mode,
                reason=reason,
                before=plan.before,
                after=plan.after,
                baseline=plan.baseline,
                fields=decisions.field_paths(view.target.kind, plan.write),
                notes=[*notes, *plan.notes],
                expires_at=expires_at,
            )
            if dry_run:
                action = ScaleAction(**base, status=ScaleAction.Status.PENDING)
                action.preview = _preview(deployment, view, plan)
                return action
            action = ScaleAction.objects.create(**base, status=ScaleAction.Status.PENDING)
    except ApplicationError as error:
        raise refuse(error)
    except IntegrityError as error:
        return audited.replay_race(error, actor=actor, key=key, request=base["request"])
    action.replayed = False
    if dispatch:
        scale_action_dispatch(action.pk)
    return action


def _preview(deployment: ModelDeployment, view, plan: decisions.Resolution) -> DryRunPreview:
    kind, scaler = view.target.kind, view.target.autoscaler
    before_replicas = deployment.replicas_desired
    after_replicas = decisions.replicas_after(kind, plan.after, before_replicas, scaler)
    pinned = decisions.pinned_after(kind, plan.after, scaler)
    when_unpinned = None
    if pinned is not None:
        when_unpinned = decisions.replicas_after(kind, {**plan.after, "paused_replicas": None}, before_replicas, scaler)
    per_replica = replica_cost_per_hour(deployment)
    quotas = []
    needed = decisions.gpus_needed(
        replicas=after_replicas if when_unpinned is None else max(after_replicas, when_unpinned),
        current_replicas=before_replicas,
        gpu_per_replica=deployment.gpu_per_replica,
    )
    for q in quota_headroom(deployment):
        quotas.append(
            {
                "quota": q.name,
                "resource": q.resource,
                "hard": q.hard,
                "used": q.used,
                "in_flight": q.in_flight,
                "needed": needed,
                "available_after": q.available - needed,
            }
        )
    return DryRunPreview(
        replicas_before=before_replicas,
        replicas_after=after_replicas,
        cost_per_hour_usd_before=decisions.cost_per_hour(per_replica, before_replicas),
        cost_per_hour_usd_after=decisions.cost_per_hour(per_replica, after_replicas),
        quota=quotas,
        pinned_replicas=pinned,
        replicas_when_unpinned=when_unpinned,
        cost_per_hour_usd_when_unpinned=(
            None if when_unpinned is None else decisions.cost_per_hour(per_replica, when_unpinned)
        ),
        capacity=deployment_capacity_fit(
            deployment=deployment,
            extra_replicas=(after_replicas if when_unpinned is None else max(after_replicas, when_unpinned))
            - before_replicas,
        ),
    )


def replica_cost_per_hour(deployment: ModelDeployment) -> Decimal | None:
    """$/hour of one replica (what its running pods cost, per ready replica); None when unknown."""
    try:
        total = deployment_cost_per_hour([deployment]).get(deployment.id)
    except Exception:  # noqa: BLE001 - a cost estimate must never break a scale request
        logger.exception("cost estimate for %s failed", deployment)
        return None
    if total is None or not deployment.replicas_ready:
        return None
    return Decimal(str(total)) / deployment.replicas_ready
