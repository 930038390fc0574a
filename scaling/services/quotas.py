"""Changing a namespace's GPU quota (a ResourceQuota's hard limits), audited like any write."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError
from fleet.models import NamespaceQuota
from scaling import decisions
from scaling.models import ScaleAction
from scaling.services import audited
from scaling.services.actions import scale_action_dispatch
from scaling.services.actors import Actor


def quota_update(
    *,
    quota: NamespaceQuota,
    hard: dict,
    reason: str,
    actor: Actor,
    source: str,
    force: bool = False,
    idempotency_key: str | None = None,
) -> ScaleAction:
    """Set GPU hard limits (`requests.nvidia.com/gpu`, `requests.nvidia.com/mig-*`) on a quota.

    Keys not given are left as they are. Lowering a limit below what the namespace uses now is
    refused (409) unless `force`. Returns the pending action, enqueued on commit; refusals are
    stored `rejected` and raise ApplicationError.
    """
    now = timezone.now()
    key = audited.idempotency_key(idempotency_key)
    request = audited.json_safe({"hard": hard, "force": bool(force)})
    existing = audited.earlier_action(actor, key)
    if existing is not None:
        return audited.replay(existing, request)
    base = dict(
        **actor.audit_fields(),
        source=source,
        operation=ScaleAction.Operation.QUOTA,
        cluster_id=quota.cluster_id,
        namespace=quota.namespace,
        quota=quota,
        request=request,
        target_kind=ScaleAction.TargetKind.QUOTA,
        target_name=quota.name,
        reason=(reason or "").strip() or "(no reason given)",
        idempotency_key=key,
        created_at=now,
    )
    try:
        if not (reason or "").strip():
            raise ApplicationError("a reason is required: it goes in the audit log", field="reason")
        if quota.gone_at is not None:
            raise ApplicationError(f"quota {quota} is gone from the cluster", status=409)
        if not quota.cluster.namespace_writable(quota.namespace):
            raise ApplicationError(
                f"namespace {quota.namespace} is not in this cluster's allow-list: ScaleDeck may not change it",
                status=409,
                extra={"namespace": quota.namespace},
            )
        before, after, notes = decisions.plan_quota_change(
            current_hard=quota.hard or {}, used=quota.used or {}, requested=hard, force=force
        )
    except ApplicationError as error:
        raise audited.audit_refusal(base=base, error=error, now=now)
    base.update(
        before={"hard": before},
        after={"hard": after},
        fields=["spec.hard"],
        notes=notes,
    )
    try:
        with transaction.atomic():
            action = ScaleAction.objects.create(**base, status=ScaleAction.Status.PENDING)
    except IntegrityError as error:
        return audited.replay_race(error, actor=actor, key=key, request=request)
    action.replayed = False
    scale_action_dispatch(action.pk)
    return action
