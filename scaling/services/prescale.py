"""Pre-scale rules: creating and editing them, and firing the due ones."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditKind
from core.errors import ApplicationError
from fleet.autoscalers import ReplicaOwnerKind
from fleet.models import ModelDeployment
from scaling import decisions, windows
from scaling.models import PrescaleRule, ScaleAction
from scaling.services.actions import scale_action_request
from scaling.services.actors import Actor
from scaling.services.cluster import deployment_owner

logger = logging.getLogger(__name__)

MAX_DURATION_MINUTES = 7 * 24 * 60
# A firing whose action failed (the API server down past the task's retries, a 409 storm, a
# refusal) is tried again while its window is open: a floor meant for a peak is worth a few more
# tries. Spaced out, and bounded, so a firing that can never succeed stops filling the audit.
FIRING_RETRY_AFTER = timedelta(seconds=60)
FIRING_MAX_TRIES = 5


def prescale_rule_problems(
    *, deployment: ModelDeployment | None, cron: str, tz: str, min_replicas, duration_minutes
) -> dict[str, str]:
    """Every reason a rule cannot be saved, one sentence per field (empty when it can).

    All of them at once, so a form shows each field's error in one go and the API answers every
    field at fault. The sentences name what they speak of in words ("the floor"), since the page
    shows them under its labels and the API under its field names."""
    problems = windows.cron_and_zone_problems(cron, tz)
    floor_ok = not isinstance(min_replicas, bool) and isinstance(min_replicas, int) and min_replicas >= 0
    if not floor_ok:
        problems["min_replicas"] = "the floor must be a whole number of replicas, 0 or more"
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int) or duration_minutes <= 0:
        problems["duration_minutes"] = "the duration must be a whole number of minutes above 0"
    elif duration_minutes > MAX_DURATION_MINUTES:
        problems["duration_minutes"] = f"the duration must be at most {MAX_DURATION_MINUTES} minutes (7 days)"
    if deployment is None:
        return problems
    if deployment.gone_at is not None:
        problems["deployment"] = f"{deployment} is gone from the cluster"
        return problems
    if not deployment.cluster.namespace_writable(deployment.namespace):
        problems["deployment"] = (
            f"namespace {deployment.namespace} is not in the cluster's allow-list: the rule could never apply"
        )
        return problems
    try:
        target = decisions.scale_target(deployment.name, deployment_owner(deployment))
    except ApplicationError as exc:
        problems["deployment"] = exc.message
        return problems
    if not floor_ok:
        return problems
    if target.kind == ReplicaOwnerKind.HPA and min_replicas < 1:
        problems["min_replicas"] = (
            "the floor must be at least 1 for a deployment scaled by an HPA (its minReplicas cannot be 0)"
        )
    elif target.autoscaler is not None and min_replicas > target.autoscaler.max_replicas:
        problems["min_replicas"] = (
            f"the floor ({min_replicas}) is above the autoscaler's max ({target.autoscaler.max_replicas})"
        )
    return problems


def _validate(*, deployment: ModelDeployment, cron: str, tz: str, min_replicas, duration_minutes) -> str:
    """The cron, normalised; ApplicationError(400) naming the first field at fault, every other one
    in `extra` as `{field: [message]}` (the API's field-error shape)."""
    problems = prescale_rule_problems(
        deployment=deployment, cron=cron, tz=tz, min_replicas=min_replicas, duration_minutes=duration_minutes
    )
    if problems:
        field, message = next(iter(problems.items()))
        raise ApplicationError(
            message, field=field, extra={name: [text] for name, text in problems.items() if name != field}
        )
    return windows.validate_cron(cron)


def prescale_rule_create(
    *,
    deployment: ModelDeployment,
    cron: str,
    timezone_name: str,
    min_replicas: int,
    duration_minutes: int,
    enabled: bool = True,
    created_by=None,
    actor=None,
) -> PrescaleRule:
    cron = _validate(
        deployment=deployment, cron=cron, tz=timezone_name, min_replicas=min_replicas, duration_minutes=duration_minutes
    )
    with transaction.atomic():
        rule = PrescaleRule.objects.create(
            deployment=deployment,
            cron=cron,
            timezone=timezone_name,
            min_replicas=min_replicas,
            duration_minutes=duration_minutes,
            enabled=enabled,
            created_by=created_by,
        )
        _audit(rule, actor=actor or created_by, before=None, after=_rule_fields(rule), reason="rule created")
    return rule


def _rule_fields(rule: PrescaleRule) -> dict:
    d = rule.deployment
    return {
        "deployment": f"{d.cluster.name}/{d.namespace}/{d.name}",
        "cron": rule.cron,
        "timezone": rule.timezone,
        "min_replicas": rule.min_replicas,
        "duration_minutes": rule.duration_minutes,
        "enabled": rule.enabled,
    }


def _audit(rule: PrescaleRule, *, actor, before, after, reason: str) -> None:
    audit_record(
        actor=actor,
        kind=AuditKind.PRESCALE_RULE,
        object=f"pre-scale rule #{rule.pk}",
        object_id=rule.pk,
        before=before,
        after=after,
        reason=reason,
    )


def prescale_rule_update(*, rule: PrescaleRule, actor=None, **changes) -> PrescaleRule:
    """Change any of deployment, cron, timezone, min_replicas, duration_minutes, enabled.

    A firing already applied keeps its window: it ends when it was going to. `actor` is who
    changed it, for the audit (an enable or disable is an edit of `enabled`).
    """
    allowed = {"deployment", "cron", "timezone", "min_replicas", "duration_minutes", "enabled"}
    unknown = set(changes) - allowed
    if unknown:
        raise ApplicationError(f"unknown field {sorted(unknown)[0]}", field=sorted(unknown)[0])
    values = {f: getattr(rule, f) for f in allowed} | changes
    values["cron"] = _validate(
        deployment=values["deployment"],
        cron=values["cron"],
        tz=values["timezone"],
        min_replicas=values["min_replicas"],
        duration_minutes=values["duration_minutes"],
    )
    before = _rule_fields(rule)
    for name, value in values.items():
        setattr(rule, name, value)
    with transaction.atomic():
        rule.save()
        after = _rule_fields(rule)
        if after != before:
            reason = (
                ("rule enabled" if after["enabled"] else "rule disabled")
                if ({k for k in after if after[k] != before[k]} == {"enabled"})
                else "rule edited"
            )
            _audit(rule, actor=actor, before=before, after=after, reason=reason)
    return rule


def prescale_rule_delete(*, rule: PrescaleRule, actor=None) -> None:
    """Delete a rule; a window it opened still ends (and restores) on time."""
    with transaction.atomic():
        _audit(rule, actor=actor, before=_rule_fields(rule), after=None, reason="rule deleted")
        rule.delete()


@dataclass(frozen=True)
class Firing:
    rule_id: int
    at: datetime
    action_id: int | None
    error: str = ""
    attempt: int = 1
    missed: bool = False  # its window closed before any tick (see prescale_firings_missed)


def _firing_key(start: datetime, attempt: int = 1) -> str:
    """The idempotency key of one try of a firing: unique per rule, so two ticks make each try once."""
    key = f"firing:{start.isoformat()}"
    return key if attempt == 1 else f"{key}#try{attempt}"


def prescale_rules_fire_due(*, now: datetime | None = None, dispatch: bool = True) -> list[Firing]:
    """Apply every enabled rule whose latest firing's window is open and not yet claimed.

    A firing missed while the workers were down is applied late if its window is still open;
    each firing is claimed with a compare-and-set on `last_fired_at`, so two ticks (or beat and
    `manage.py scaling_tick`) apply it once. A firing whose action failed is tried again while its
    window is open (see `_retry_failed`).
    """
    now = now or timezone.now()
    fired: list[Firing] = []
    claimed_open: list[tuple[PrescaleRule, windows.Window]] = []
    rules = PrescaleRule.objects.filter(enabled=True).select_related("deployment__cluster")
    for rule in rules:
        try:
            window = windows.open_window(rule.cron, rule.timezone, rule.duration_minutes, now)
        except (windows.WindowError, ValueError) as exc:  # a rule edited in the admin past validation
            logger.warning("rule %s cannot be evaluated: %s", rule.pk, exc)
            continue
        if window is None:
            continue
        if rule.last_fired_at is not None and rule.last_fired_at >= window.start:
            if rule.last_fired_at == window.start:
                claimed_open.append((rule, window))
            continue
        try:
            firing = _claim_and_fire(rule, window, now=now, dispatch=dispatch)
        except Exception:  # noqa: BLE001 - one bad rule must not stop the others, nor the restores after it
            # Nothing was claimed (the claim rolled back with the error): the next tick tries again
            # while the window is open.
            logger.exception("rule %s: firing %s failed; the next tick tries again", rule.pk, window.start)
            continue
        if firing is not None:
            fired.append(firing)
    fired.extend(_retry_failed(claimed_open, now=now, dispatch=dispatch))
    return fired


def prescale_firings_missed(*, now: datetime | None = None) -> list[Firing]:
    """The firings whose whole window passed while no tick ran (workers down longer than the window).

    Nothing is applied for them (the floor was meant for a time that is over); each is claimed once
    with the same compare-and-set on `last_fired_at` as a firing, so two ticks count it once, and it
    is reported (`Firing.missed`) for the metrics and the tick's output. Only the latest firing of a
    rule is looked at, and a rule created after that firing began missed nothing.
    """
    now = now or timezone.now()
    missed: list[Firing] = []
    for rule in PrescaleRule.objects.filter(enabled=True):
        try:
            start = windows.latest_firing(rule.cron, rule.timezone, now)
        except (windows.WindowError, ValueError):
            continue  # prescale_rules_fire_due logs it
        if start is None or rule.created_at > start:
            continue
        if rule.last_fired_at is not None and rule.last_fired_at >= start:
            continue
        if windows.Window(start, start + timedelta(minutes=rule.duration_minutes)).contains(now):
            continue  # still open: prescale_rules_fire_due applies it late
        if rule.last_fired_at is None:
            unclaimed = PrescaleRule.objects.filter(id=rule.id, last_fired_at__isnull=True)
        else:
            unclaimed = PrescaleRule.objects.filter(id=rule.id, last_fired_at=rule.last_fired_at)
        if unclaimed.update(last_fired_at=start) == 1:
            logger.warning(
                "rule %s: the firing of %s was missed (its window closed before a tick ran)", rule.pk, start.isoformat()
            )
            missed.append(Firing(rule.pk, start, None, "missed: its window closed before a worker ran", missed=True))
    return missed


def _claim_and_fire(rule: PrescaleRule, window: windows.Window, *, now: datetime, dispatch: bool) -> Firing | None:
    """Claim the firing and store its action (pending, or refused and audited) in one transaction.

    A crash between a committed claim and the action would lose the firing for good (claimed, so
    never tried again, and no failed action for `_retry_failed` to see); here both commit or
    neither does. `scale_action_request` nests inside as a savepoint: a refusal rolls back only its own
    checks and audits the rejected action in a savepoint of its own, which commits with the claim;
    the enqueue waits for the outer commit (`on_commit`). Two ticks: the loser's UPDATE waits for
    the winner's row lock and then matches nothing, and walks away.
    """
    with transaction.atomic():
        if rule.last_fired_at is None:
            unclaimed = PrescaleRule.objects.filter(id=rule.id, last_fired_at__isnull=True)
        else:
            unclaimed = PrescaleRule.objects.filter(id=rule.id, last_fired_at=rule.last_fired_at)
        if unclaimed.update(last_fired_at=window.start) != 1:
            return None  # another tick fired it
        return _fire(rule, window, now=now, dispatch=dispatch)


def _retry_failed(claimed: list[tuple[PrescaleRule, windows.Window]], *, now: datetime, dispatch: bool) -> list[Firing]:
    """Try again the claimed firings, windows still open, whose every try so far failed.

    Each try is its own action in the audit, keyed `firing:<start>#try<n>`: two ticks deciding on
    the same retry make one action (the second finds the key taken), and a firing with any try
    not failed (pending, running, succeeded, or refused by policy) is left alone, so a floor is
    never applied twice. Retries come FIRING_RETRY_AFTER after the last failure, up to
    FIRING_MAX_TRIES tries in all.
    """
    if not claimed:
        return []
    tries = (
        ScaleAction.objects.filter(
            source=ScaleAction.Source.RULE,
            rule_id__in=[rule.pk for rule, _ in claimed],
            created_at__gte=min(window.start for _, window in claimed),
            idempotency_key__startswith="firing:",
        )
        .order_by("created_at", "id")
        .values("id", "rule_id", "idempotency_key", "status", "finished_at", "error")
    )
    by_rule: dict[int, list[dict]] = {}
    for row in tries:
        by_rule.setdefault(row["rule_id"], []).append(row)
    retried: list[Firing] = []
    for rule, window in claimed:
        key = _firing_key(window.start)
        mine = [
            r
            for r in by_rule.get(rule.pk, [])
            if r["idempotency_key"] == key or r["idempotency_key"].startswith(f"{key}#")
        ]
        if not mine or any(r["status"] != ScaleAction.Status.FAILED for r in mine):
            continue
        if len(mine) >= FIRING_MAX_TRIES:
            continue  # given up: the audit shows every failed try
        last = mine[-1]
        if last["finished_at"] is None or last["finished_at"] > now - FIRING_RETRY_AFTER:
            continue
        attempt = len(mine) + 1
        error = (last["error"] or "failed")[:200]
        retry = f"; try {attempt} of {FIRING_MAX_TRIES}: #{last['id']} failed: {error}"
        firing = _fire(rule, window, now=now, dispatch=dispatch, attempt=attempt, retry_note=retry)
        if firing is not None:
            retried.append(firing)
    return retried


def _fire(
    rule: PrescaleRule,
    window: windows.Window,
    *,
    now: datetime,
    dispatch: bool,
    attempt: int = 1,
    retry_note: str = "",
) -> Firing | None:
    """Request the firing's floor; None when another tick already made this try."""
    start_local = windows.local(window.start, rule.timezone)
    end_local = windows.local(window.end, rule.timezone)
    reason = (
        f"pre-scale rule #{rule.pk} ({rule.cron} {rule.timezone}): floor {rule.min_replicas} "
        f"{start_local:%Y-%m-%d %H:%M}-{end_local:%H:%M %Z}"
    )
    late = (now - window.start).total_seconds()
    if late > 60:
        reason += f" (applied {int(late // 60)} min late)"
    reason += retry_note
    try:
        action = scale_action_request(
            deployment=rule.deployment,
            replicas=rule.min_replicas,
            mode=decisions.FLOOR,
            reason=reason,
            actor=Actor.of_rule(rule),
            source=ScaleAction.Source.RULE,
            until=window.end,
            rule=rule,
            idempotency_key=_firing_key(window.start, attempt),
            now=now,
            dispatch=dispatch,
        )
    except ApplicationError as exc:  # refused and audited; the firing stays claimed
        if exc.extra.get("replayed"):
            return None
        return Firing(rule.pk, window.start, exc.extra.get("action_id"), exc.message, attempt)
    if getattr(action, "replayed", False):
        return None  # this try was made by another tick
    return Firing(rule.pk, window.start, action.pk, attempt=attempt)
