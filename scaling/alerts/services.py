"""Services operators call: the SLO of a deployment, acknowledging and silencing alerts.

Each change is in the one audit (accounts/audit.py): attainment targets as `slo`, silences and
acknowledgements as `silence` (the TTFT objective is audited by `deployment_slo_set` itself).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditKind
from core.errors import ApplicationError
from core.validators import reason_problem
from fleet.models import ModelDeployment
from fleet.services import deployment_slo_set
from scaling.alerts.models import DEFAULT_ATTAINMENT, Alert, AlertNote, AlertSilence, AttainmentChange, SloTarget
from scaling.services.actors import Actor

MIN_ATTAINMENT, MAX_ATTAINMENT = 0.5, 0.9999
MAX_SILENCE_MINUTES = 14 * 24 * 60


def _reason(reason: str) -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise ApplicationError("a reason is required: it goes in the audit log", field="reason")
    if problem := reason_problem(reason):
        raise ApplicationError(problem, field="reason")
    return reason


def _fraction_ok(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            and MIN_ATTAINMENT <= value <= MAX_ATTAINMENT)  # fmt: skip


def deployment_slo_update(
    *, deployment: ModelDeployment, actor: Actor, reason: str, ttft_p95_seconds=..., attainment=...
) -> dict:
    """Change the TTFT objective and/or the attainment target (both audited). `...` leaves one
    as it is. Everything is checked before anything is written."""
    reason = _reason(reason)
    if attainment is not ... and not _fraction_ok(attainment):
        raise ApplicationError(
            f"the attainment target is a fraction between {MIN_ATTAINMENT:g} and {MAX_ATTAINMENT:g} (0.99 is 99 %)",
            field="attainment",
        )
    if (
        ttft_p95_seconds is not ...
        and ttft_p95_seconds is not None
        and (isinstance(ttft_p95_seconds, bool) or not isinstance(ttft_p95_seconds, int | float))
    ):
        raise ApplicationError("the TTFT objective is a number of seconds", field="ttft_p95_seconds")
    with transaction.atomic():
        if ttft_p95_seconds is not ...:
            try:
                deployment_slo_set(deployment=deployment, seconds=ttft_p95_seconds, reason=reason,
                                   actor_user=actor.user)  # fmt: skip
            except ApplicationError as exc:
                raise ApplicationError(exc.message, field="ttft_p95_seconds") from exc
        if attainment is not ...:
            target, _ = SloTarget.objects.select_for_update().get_or_create(deployment=deployment)
            if target.attainment != attainment:
                AttainmentChange.objects.create(
                    deployment=deployment, actor_user=actor.user if getattr(actor.user, "pk", None) else None,
                    actor_label=actor.label, before=target.attainment, after=float(attainment), reason=reason,
                )  # fmt: skip
                audit_record(actor=actor, kind=AuditKind.SLO, object=_deployment_label(deployment),
                             object_id=deployment.pk, before={"attainment": target.attainment},
                             after={"attainment": float(attainment)}, reason=reason)  # fmt: skip
                target.attainment = float(attainment)
                target.save(update_fields=["attainment"])
    deployment.refresh_from_db(fields=["ttft_slo_seconds"])
    return deployment_slo(deployment=deployment)


def deployment_slo(*, deployment: ModelDeployment) -> dict:
    """The objective, the attainment target (a fraction of minutes), and what the last evaluation
    measured: the fraction of minutes with requests within the objective over the window
    (`attained`), the error budget left (a fraction, negative when overspent) and the last
    hour's burn rate (a multiple of the sustainable rate)."""
    target = SloTarget.objects.filter(deployment=deployment).first()
    return {
        "ttft_p95_seconds": deployment.slo_seconds,
        "attainment": target.attainment if target else DEFAULT_ATTAINMENT,
        "window_days": 30,
        "attained": target.attained if target else None,
        "budget_remaining": target.budget_remaining if target else None,
        "burn_rate_1h": target.burn_rate_1h if target else None,
        "evaluated_at": target.evaluated_at if target else None,
    }


def _deployment_label(deployment: ModelDeployment) -> str:
    return f"{deployment.cluster.name}/{deployment.namespace}/{deployment.name}"


def _alert_label(alert: Alert) -> str:
    """The alert as the audit names it: its number, rule and subject."""
    subject = _deployment_label(alert.deployment) if alert.deployment_id else f"node {alert.node_name}"
    return f"alert #{alert.pk} {alert.rule} on {subject}"


def alert_acknowledge(*, alert: Alert, actor: Actor, reason: str = "", now: datetime | None = None) -> AlertNote:
    now = now or timezone.now()
    reason = (reason or "").strip()
    if problem := reason_problem(reason):
        raise ApplicationError(problem, field="reason")
    with transaction.atomic():
        Alert.objects.filter(id=alert.id).update(acknowledged_at=now, acknowledged_by=actor.label)
        audit_record(actor=actor, kind=AuditKind.SILENCE, object=_alert_label(alert), object_id=alert.pk,
                     before={"acknowledged": alert.acknowledged_at is not None},
                     after={"acknowledged": True}, reason=reason)  # fmt: skip
        return AlertNote.objects.create(alert=alert, kind=AlertNote.Kind.ACKNOWLEDGED, actor_label=actor.label,
                                        actor_user=actor.user if getattr(actor.user, "pk", None) else None,
                                        reason=reason, at=now)  # fmt: skip


def alert_silence(*, alert: Alert, actor: Actor, minutes, reason: str, now: datetime | None = None) -> AlertSilence:
    """No notifications for this rule and subject for `minutes` (a new firing included)."""
    now = now or timezone.now()
    reason = _reason(reason)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_SILENCE_MINUTES:
        raise ApplicationError(f"a silence lasts 1 to {MAX_SILENCE_MINUTES:,} minutes (14 days)", field="minutes")
    until = now + timedelta(minutes=minutes)
    with transaction.atomic():
        silence = AlertSilence.objects.create(fingerprint=alert.fingerprint, until=until, reason=reason,
                                              actor_label=actor.label, created_at=now)  # fmt: skip
        audit_record(actor=actor, kind=AuditKind.SILENCE, object=_alert_label(alert), object_id=alert.pk,
                     before=None, after={"notifications silenced until": f"{until:%Y-%m-%d %H:%M} UTC",
                                         "minutes": minutes}, reason=reason)  # fmt: skip
        AlertNote.objects.create(alert=alert, kind=AlertNote.Kind.SILENCED, actor_label=actor.label,
                                 actor_user=actor.user if getattr(actor.user, "pk", None) else None,
                                 reason=reason, until=until, at=now)  # fmt: skip
    return silence
