"""Reads for the scaling pages and API: deployment scale state, overrides, rules, quotas."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet

from core.errors import ApplicationError
from fleet.autoscalers import ReplicaOwner, ReplicaOwnerKind, replica_owner
from fleet.models import Autoscaler, ModelDeployment, NamespaceQuota
from scaling import decisions, windows
from scaling.filters import ScaleActionFilterSet
from scaling.models import PrescaleRule, ScaleAction
from scaling.services.cluster import deployment_owner


def action_queryset() -> QuerySet[ScaleAction]:
    return ScaleAction.objects.select_related("cluster", "deployment").order_by("-created_at", "-id")


def action_filterset(params) -> ScaleActionFilterSet:
    return ScaleActionFilterSet(params, queryset=action_queryset())


@dataclass(frozen=True)
class ActiveOverride:
    action: ScaleAction
    label: str  # "floor 6", "pin 3"
    by: str  # "alice", "rule #3"
    until: datetime
    seconds_left: int

    @property
    def time_left(self) -> str:
        minutes = (self.seconds_left + 59) // 60
        if minutes < 60:
            return f"{minutes} min"
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _override_label(action: ScaleAction) -> str:
    replicas = (action.request or {}).get("replicas")
    text = f"{action.mode or 'floor'} {replicas}"
    if (action.request or {}).get("raise_max"):
        text += " (max raised)"
    return text


def active_overrides(deployments: Sequence[ModelDeployment], *, now: datetime) -> dict[int, list[ActiveOverride]]:
    """Active time-boxed overrides per deployment id, soonest to end first. One query."""
    result: dict[int, list[ActiveOverride]] = defaultdict(list)
    ids = [d.id for d in deployments]
    if not ids:
        return result
    rows = ScaleAction.objects.active_overrides(now=now).filter(deployment_id__in=ids).order_by("expires_at", "id")
    for action in rows:
        by = f"rule #{action.rule_id}" if action.rule_id else action.actor_label
        result[action.deployment_id].append(
            ActiveOverride(
                action=action,
                label=_override_label(action),
                by=by,
                until=action.expires_at,
                seconds_left=max(int((action.expires_at - now).total_seconds()), 0),
            )
        )
    return result


_TARGET_LABELS = {
    ReplicaOwnerKind.SCALEDOBJECT: "KEDA ScaledObject",
    ReplicaOwnerKind.HPA: "HPA",
    ReplicaOwnerKind.DEPLOYMENT: "Deployment",
}


@dataclass
class ScaleState:
    """What the scale controls show for one deployment."""

    deployment: ModelDeployment
    target: ReplicaOwner | None  # None in conflict
    conflict: str = ""
    floor: int | None = None  # the autoscaler's min, or the Deployment's replicas
    ceiling: int | None = None
    pinned: int | None = None
    overrides: list[ActiveOverride] = field(default_factory=list)
    recent: list[ScaleAction] = field(default_factory=list)
    writable: bool = True
    # An HPA whose min equals its max because a floor raised the max to the same value: it holds
    # that count like a pin, but it is a floor, and ends as one (the max comes back with it).
    floor_at_max: ScaleAction | None = None

    @property
    def target_label(self) -> str:
        if self.target is None:
            return ""
        return _TARGET_LABELS[self.target.kind]


def scale_state(deployment: ModelDeployment, *, now: datetime) -> ScaleState:
    try:
        target = decisions.scale_target(deployment.name, deployment_owner(deployment))
    except ApplicationError as exc:
        state = ScaleState(deployment=deployment, target=None, conflict=exc.message)
    else:
        state = ScaleState(deployment=deployment, target=target)
        scaler = target.autoscaler
        if scaler is None:
            state.floor = deployment.replicas_desired
        else:
            state.floor, state.ceiling = scaler.min_replicas, scaler.max_replicas
            if target.kind == ReplicaOwnerKind.SCALEDOBJECT:
                state.pinned = scaler.paused_replicas
            elif scaler.min_replicas == scaler.max_replicas:
                state.floor_at_max = _floor_that_raised_the_max(deployment, scaler.min_replicas)
                if state.floor_at_max is None:
                    state.pinned = scaler.min_replicas
    state.writable = deployment.cluster.namespace_writable(deployment.namespace)
    state.overrides = active_overrides([deployment], now=now).get(deployment.id, [])
    state.recent = list(action_queryset().filter(deployment=deployment)[:5])
    return state


def _floor_that_raised_the_max(deployment: ModelDeployment, replicas: int) -> ScaleAction | None:
    """The last write to the deployment's HPA, when it was a floor that left min = max = `replicas`."""
    last = (
        ScaleAction.objects.filter(
            deployment=deployment, target_kind=ScaleAction.TargetKind.HPA, status=ScaleAction.Status.SUCCEEDED
        )
        .exclude(operation=ScaleAction.Operation.QUOTA)
        .order_by("-finished_at", "-id")
        .first()
    )
    after = (last.after or {}) if last else {}
    if last and last.mode == decisions.FLOOR and after.get("min_replicas") == after.get("max_replicas") == replicas:
        return last
    return None


@dataclass(frozen=True)
class RuleRow:
    rule: PrescaleRule
    next_firings: list[tuple[datetime, datetime]]  # (local, utc)
    window: windows.Window | None  # open now
    floor_now: int | None
    overrides: list[ActiveOverride]
    error: str = ""


@dataclass(frozen=True)
class FiringPreview:
    """The next firings of a cron in a zone, as (local, utc) pairs, or why there are none."""

    firings: list[tuple[datetime, datetime]]
    problems: dict[str, str]  # field -> one sentence


def firing_preview(cron: str, timezone_name: str, *, now: datetime, count: int = 5) -> FiringPreview:
    """What a rule with this cron and zone would do next: the rule form previews it while typing."""
    problems = windows.cron_and_zone_problems(cron, timezone_name)
    if problems:
        return FiringPreview(firings=[], problems=problems)
    try:
        ats = windows.next_firings(cron, timezone_name, now, count)
    except (windows.WindowError, ValueError) as exc:
        return FiringPreview(firings=[], problems={"cron": str(exc)})
    return FiringPreview(firings=[(windows.local(at, timezone_name), at) for at in ats], problems={})


def rule_rows(rules: Iterable[PrescaleRule], *, now: datetime) -> list[RuleRow]:
    rules = list(rules)
    overrides = active_overrides([r.deployment for r in rules], now=now)
    floors = _current_floors([r.deployment for r in rules])
    rows = []
    for rule in rules:
        preview = firing_preview(rule.cron, rule.timezone, now=now)
        firings, error = preview.firings, " ".join(preview.problems.values())
        try:
            window = windows.open_window(rule.cron, rule.timezone, rule.duration_minutes, now) if not error else None
        except (windows.WindowError, ValueError) as exc:
            window, error = None, str(exc)
        rows.append(
            RuleRow(
                rule=rule,
                next_firings=firings,
                window=window,
                floor_now=floors.get(rule.deployment_id),
                overrides=overrides.get(rule.deployment_id, []),
                error=error,
            )
        )
    return rows


def _current_floors(deployments: Sequence[ModelDeployment]) -> dict[int, int]:
    """The floor each deployment has now (its replicas' owner's min, else its replicas), in one query."""
    live = defaultdict(list)
    for a in Autoscaler.objects.alive().filter(deployment_id__in=[d.id for d in deployments]):
        live[a.deployment_id].append(a.facts())
    floors = {}
    for d in deployments:
        scaler = replica_owner(d.name, live[d.id]).autoscaler
        floors[d.id] = scaler.min_replicas if scaler else d.replicas_desired
    return floors


def rule_queryset() -> QuerySet[PrescaleRule]:
    return PrescaleRule.objects.select_related("deployment__cluster", "created_by").order_by(
        "deployment__cluster__name", "deployment__namespace", "deployment__name", "id"
    )


@dataclass(frozen=True)
class QuotaLine:
    resource: str
    hard: int | None
    used: int

    @property
    def percent(self) -> int | None:
        if not self.hard:
            return None
        return min(int(round(100 * self.used / self.hard)), 999)

    @property
    def state(self) -> str:
        pct = self.percent
        if pct is None:
            return ""
        return "breach" if pct >= 100 else "near" if pct >= 80 else "ok"


def quota_lines(quota: NamespaceQuota) -> list[QuotaLine]:
    keys = sorted(set(quota.hard or {}) | set(quota.used or {}))
    return [
        QuotaLine(resource=k, hard=(quota.hard or {}).get(k), used=int((quota.used or {}).get(k, 0) or 0)) for k in keys
    ]


def quota_queryset() -> QuerySet[NamespaceQuota]:
    return NamespaceQuota.objects.alive().select_related("cluster").order_by("cluster__name", "namespace", "name")
